"""Data sets that are files rather than generated tasks: Omniglot (``mlcourse.data.omniglot``)."""
from . import omniglot

__all__ = ["omniglot"]
