"""Teacher signals: where the teacher's outputs come from (live, precomputed, or cached)."""

from distill.teachers.base import TeacherSignal
from distill.teachers.cache import cache_teacher
from distill.teachers.cached import CachedTeacher
from distill.teachers.ema import EMATeacher
from distill.teachers.ensemble import Ensemble, EnsembleTeacher
from distill.teachers.online import OnlineTeacher, as_teacher_signal
from distill.teachers.precomputed import PrecomputedTeacher
from distill.teachers.sampled import SampledTargets
from distill.teachers.store import CacheError, StaleCacheError
from distill.teachers.targets import TopKTargets

__all__ = [
    "CacheError",
    "CachedTeacher",
    "EMATeacher",
    "Ensemble",
    "EnsembleTeacher",
    "OnlineTeacher",
    "PrecomputedTeacher",
    "SampledTargets",
    "StaleCacheError",
    "TeacherSignal",
    "TopKTargets",
    "as_teacher_signal",
    "cache_teacher",
]
