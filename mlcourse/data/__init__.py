"""Data sets that are files rather than generated tasks: Omniglot (``mlcourse.data.omniglot``).

Part of the engine layer (numpy only; Pillow, imported when PNG images are decoded, is the one
documented exception).
"""
from . import omniglot

__all__ = ["omniglot"]
