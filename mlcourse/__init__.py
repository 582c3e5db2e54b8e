"""mlcourse: meta-learning, hands-on.

Four layers; each imports only from the layers below it (``tests/test_layers.py`` reads the imports):

1. the engine (this folder's modules and ``data/``; numpy, autograd and tqdm only): ``tasks``
   (task distributions, episodes), ``nets`` (functional models), ``tree`` (arithmetic on
   parameter containers), one module per algorithm (``maml`` with its exact ``fastpath``,
   ``reptile``, ``baseline``, ``metasgd``, ``anil``, ``protonet``, ``classification`` for MAML on
   N-way episodes), ``conv`` (the Conv-4 embedding), ``taskpool`` (fixed task pools for
   meta-overfitting), ``directions`` (MAML / FOMAML / Reptile compared), ``checks`` (finite
   differences and the lesson's closed forms), ``train`` (the one outer loop, checkpoints,
   meta-test), ``data`` (Omniglot, the one-shot benchmark, the evaluation protocol) and ``rl``
   (MAML for 2D point navigation);
2. ``experiments/``: the main jobs, the traces the notebooks show, the speed benchmark, and the
   shipped results with the commands that recompute them;
3. course machinery: ``viz/`` (figures and widgets) and ``grading/`` (the autograder);
4. ``cli`` (the ``mlcourse`` command) on top.

Importing the package also applies ``tune_allocator()`` (glibc's malloc keeps the engine's
~160 KB temporaries instead of mapping them anew, about 1.5x faster; see ``_runtime``).  Set
``MLCOURSE_TUNE_MALLOC=0`` in the environment before the import to leave malloc alone.
"""
from . import (anil, baseline, checks, classification, conv, directions, maml, metasgd, nets, protonet, reptile,
               taskpool, tasks, train, tree)
from ._runtime import tune_allocator, tune_allocator_on_import

tune_allocator_on_import()

__version__ = "0.1.0"
__all__ = ["tasks", "nets", "maml", "reptile", "baseline", "metasgd", "anil", "protonet", "classification", "conv",
           "taskpool", "directions", "checks", "train", "tree", "tune_allocator", "__version__"]
