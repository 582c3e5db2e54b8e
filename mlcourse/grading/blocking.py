"""Engine functions a question asks the learner to write are unavailable while it is graded.

A question lists them in ``Question.forbids`` as dotted names ("mlcourse.maml.maml_loss").  While
the learner's function of that question is called (by the grader, and by ``check()`` in the
learner's notebook), each of those engine functions raises ``EngineBlocked``:

    q9 asks you to write maml_loss yourself; mlcourse.maml.maml_loss is not available while q9 is graded

The function object itself is switched (its code is swapped for one that raises, and restored
afterwards), so a name bound earlier (``from mlcourse.maml import maml_loss``) or an engine
function that calls it internally is blocked too.  Other questions use the engine freely.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import types

__all__ = ["EngineBlocked", "INNER_LOOP", "message", "resolve", "prepare", "problems", "blocked", "for_run",
           "block_for_run"]

_KEY = "_mlcourse_blocked_"


class EngineBlocked(RuntimeError):
    """Raised by an engine function the question being graded asks the learner to write."""


def message(qid, function, dotted):
    return f"{qid} asks you to write {function} yourself; {dotted} is not available while {qid} is graded"


def _stub(*args, _mlcourse_blocked_=(EngineBlocked, ""), **kwargs):
    raise _mlcourse_blocked_[0](_mlcourse_blocked_[1])


def resolve(dotted):
    """The function object named by a dotted engine name; ValueError saying what is wrong otherwise."""
    if not isinstance(dotted, str) or not dotted.startswith("mlcourse.") or dotted.startswith("mlcourse.grading"):
        raise ValueError(f"{dotted!r} is not the dotted name of an engine function (mlcourse.<module>.<function>).")
    parts = dotted.split(".")
    obj = None
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        break
    # a decorated function (autograd's primitive, functools.wraps): block the function it wraps
    inner = getattr(obj, "__wrapped__", None) or getattr(obj, "fun", None)
    if isinstance(obj, types.FunctionType) and obj.__closure__ and isinstance(inner, types.FunctionType):
        obj = inner
    if not isinstance(obj, types.FunctionType):
        raise ValueError(f"{dotted} does not name a Python function of the engine; fix the question's forbids.")
    if obj.__closure__:
        raise ValueError(f"{dotted} is a closure (a decorated function?); forbid the function it wraps instead.")
    return obj


def problems(questions):
    """Problems with the forbids of the given questions (for ``mlcourse validate``); [] when all resolve."""
    out = []
    for q in questions:
        forbids = getattr(q, "forbids", ())
        if not isinstance(forbids, tuple):
            out.append(f"{q.id}: forbids must be a tuple of dotted names, got {type(forbids).__name__}")
            continue
        if len(set(forbids)) != len(forbids):
            out.append(f"{q.id}: forbids lists a name twice")
        for dotted in forbids:
            try:
                resolve(dotted)
            except ValueError as e:
                out.append(f"{q.id}: {e}")
    return out


def prepare(qid, function, forbids):
    """Everything ``blocked`` needs, resolved now: [(function object, its blocking code, its kwdefaults)].

    The grading child prepares before any learner code runs, so rebinding a module's names (or this
    module's) in a cell changes nothing.
    """
    out = []
    for dotted in forbids:
        fn = resolve(dotted)
        code = _stub.__code__.replace(co_name=fn.__code__.co_name, co_qualname=fn.__code__.co_qualname)
        out.append((fn, code, {_KEY: (EngineBlocked, message(qid, function, dotted))}))
    return out


@contextlib.contextmanager
def blocked(qid, function, forbids):
    """Within the block, every engine function in `forbids` raises EngineBlocked naming qid.

    forbids: dotted names, or what ``prepare`` returned for the question.
    """
    prepared = [x for x in forbids if isinstance(x, tuple)] or prepare(qid, function, forbids)
    saved = []
    try:
        for fn, code, kwdefaults in prepared:
            saved.append((fn, fn.__code__, fn.__kwdefaults__))
            fn.__code__, fn.__kwdefaults__ = code, kwdefaults
        yield
    finally:
        for fn, code, kwdefaults in reversed(saved):
            fn.__code__, fn.__kwdefaults__ = code, kwdefaults


# The engine's inner loop (one SGD step on a support set, and every engine function that takes
# it), and its hand-derived fast paths: forbidden wherever a question asks for the inner loop.
INNER_LOOP = ("mlcourse.maml.inner_update", "mlcourse.maml.adapt", "mlcourse.maml._adapt_autograd",
              "mlcourse.fastpath.adapt", "mlcourse.fastpath._adapt_aug", "mlcourse.fastpath.support_grad",
              "mlcourse.metasgd.metasgd_step", "mlcourse.metasgd.inner_update", "mlcourse.metasgd.adapt",
              "mlcourse.metasgd._steps", "mlcourse.anil.adapt_head", "mlcourse.anil._head_path")


def for_run(questions):
    """[(dotted, qid, function)] for every engine function any of `questions` forbids (the first
    question naming it gives the message), as the grading child blocks them for a whole run."""
    out, seen = [], set()
    for q in questions:
        for dotted in getattr(q, "forbids", ()):
            if dotted not in seen:
                seen.add(dotted)
                out.append((dotted, q.id, q.function))
    return out


def block_for_run(entries):
    """Switch every function of ``for_run``'s list to raise EngineBlocked, for good (no way back).

    The grading child calls this before any learner code runs: cells, imports, the learner's
    functions and the encoding of what they return all find the engine's own versions blocked.
    The original code objects are not kept, so nothing in the process can switch them back.
    Returns the files that hold these functions (their modules' sources and byte code), which the
    child then may not read (so a fresh import of the module cannot bring them back either).
    """
    import importlib.util
    import sys
    files = set()
    for dotted, qid, function in entries:
        fn = resolve(dotted)
        fn.__code__ = _stub.__code__.replace(co_name=fn.__code__.co_name, co_qualname=fn.__code__.co_qualname)
        fn.__kwdefaults__ = {_KEY: (EngineBlocked, message(qid, function, dotted))}
        mod = sys.modules.get(fn.__module__)
        path = getattr(mod, "__file__", None)
        if path:
            files.add(os.path.realpath(path))
            try:
                files.add(os.path.realpath(importlib.util.cache_from_source(path)))
            except (NotImplementedError, ValueError):
                pass
    return sorted(files)
