"""Teacher signals: where the teacher's outputs come from (live, or precomputed once)."""

from distill.teachers.base import TeacherSignal
from distill.teachers.online import OnlineTeacher, as_teacher_signal
from distill.teachers.precomputed import PrecomputedTeacher

__all__ = ["OnlineTeacher", "PrecomputedTeacher", "TeacherSignal", "as_teacher_signal"]
