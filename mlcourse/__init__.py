"""mlcourse: meta-learning, hands-on.

The engine (no Jupyter needed): ``tasks`` (task distributions), ``nets`` (functional models),
``maml`` (inner loop, exact meta-gradient, FOMAML), ``reptile``, ``baseline``, ``checks``
(finite differences and the lesson's closed forms), ``train`` (Adam outer loop, checkpoints,
evaluation).  Figures and widgets live in ``mlcourse.viz``; the autograder in ``mlcourse.grading``.
"""
from . import baseline, checks, maml, nets, reptile, tasks, train, tree
from ._runtime import tune_allocator

__version__ = "0.1.0"
__all__ = ["tasks", "nets", "maml", "reptile", "baseline", "checks", "train", "tree", "tune_allocator",
           "__version__"]
