"""Teacher signals: where the teacher's outputs come from (live module for now)."""

from distill.teachers.base import TeacherSignal
from distill.teachers.online import OnlineTeacher, as_teacher_signal

__all__ = ["OnlineTeacher", "TeacherSignal", "as_teacher_signal"]
