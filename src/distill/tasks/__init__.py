"""Tasks: classification, causal language modelling, sentence embeddings (see ``base``).

Adding a task is one file with a :class:`Task` subclass and one registration here (lazily, so
that a task whose evaluation needs optional packages costs nothing until it is used).
"""

from distill.tasks import classification  # noqa: F401 - registers "classification"
from distill.tasks.base import TASKS, Task, resolve_task, task_of

TASKS.register_lazy("causal-lm", "distill.tasks.causal_lm:TASK", aliases=("causal_lm", "lm"))
TASKS.register_lazy("sentence-embedding", "distill.tasks.embedding:TASK",
                    aliases=("embedding",))

__all__ = ["TASKS", "Task", "resolve_task", "task_of"]
