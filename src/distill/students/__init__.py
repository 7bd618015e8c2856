"""Building students (and teachers): small CNNs and MLPs from a spec."""

from distill.students.builders import (
    ARCHITECTURES,
    build,
    build_cnn,
    build_mlp,
    register_architecture,
)

__all__ = ["ARCHITECTURES", "build", "build_cnn", "build_mlp", "register_architecture"]
