"""The budget planner: which student, deployed how, meets a latency/size/retention budget.

``distill plan RECIPE --max-latency-ms X`` (or :func:`plan`) screens candidates by latency
before training any, spends training on the survivors by successive halving, measures the
finalists side by side with the teacher, and writes the Pareto frontier and the recommended
plan as a runnable recipe.
"""

from distill.plan.candidates import DEPLOY_KINDS, Candidate, candidates
from distill.plan.frontier import choose, pareto
from distill.plan.search import plan

__all__ = ["DEPLOY_KINDS", "Candidate", "candidates", "choose", "pareto", "plan"]
