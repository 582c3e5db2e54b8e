"""Feedback that names the mistake: every common mistake of ex01-ex10, fed as an answer, is named.

Each question of ex01-ex10 lists at least three of the lesson's common mistakes (``questions/_common_mistakes.py``).
A mistaken answer is computed by the engine from a test's inputs and handed to ``check()`` as the learner's
output, and to ``mlcourse grade`` in a submission notebook whose functions return it; the printed feedback must
name that mistake and must not show the reference (for a hidden test: only the line naming the mistake).

ex09 and ex10 (build it yourself) train models in their graded calls.  Their tests of a whole run (a target to
reach) name no mistake (``whole_run``: each mistake would be a whole run of its own), so they are left out here;
every one of their mistakes goes through check() and the grader's judges, and only the first through
``mlcourse grade`` (the channel is the same for all of them, and each submission costs seconds of notebook run).
"""
import base64
import os
import pickle

import numpy as np
import pytest
from autograd import grad
from autograd.tracer import getval

from mlcourse import nets
from mlcourse.grading import assign, bank, codec, feedback, mistakes
from mlcourse.grading.matching import close, summarize
from mlcourse.grading.questions._common_mistakes import MISTAKES
from mlcourse.grading.spec import Outcome, by_reference

ASSIGNMENTS = ("ex01", "ex02", "ex03", "ex04", "ex05", "ex06", "ex07", "ex08")
BUILD = ("ex09", "ex10")   # build it yourself: graded calls that train (see above)
EX01_08 = [q.id for q in bank.QUESTIONS.values() if q.assignment in ASSIGNMENTS]
ALL = [q.id for q in bank.QUESTIONS.values() if q.assignment in ASSIGNMENTS + BUILD]
# every mistake that can be fed as a value: answer= mistakes, and matches= mistakes with an example
VALUE_MISTAKES = [(qid, m.name) for qid in ALL for m in MISTAKES.get(qid, ())
                  if m.answer is not None or m.example is not None]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _key(args):
    spec, arrays = codec.encode(tuple(args))
    return repr(spec) + "".join(np.asarray(arrays[k]).tobytes().hex() for k in sorted(arrays))


def _mistake(qid, name):
    return next(m for m in MISTAKES[qid] if m.name == name)


def _named(t):
    """Whether test t names mistakes (every test but the whole training runs of ex09 and ex10)."""
    return not getattr(t.judge, "whole_run", False)


def _wrong(m, args):
    """What a function with mistake m returns on args (as the grader would receive it), or None if it cannot."""
    try:
        return codec.roundtrip(m.wrong_answer(*codec.roundtrip(args)))
    except Exception:
        return None


def test_every_question_of_ex01_to_ex10_lists_at_least_three_mistakes_on_every_test():
    assert set(EX01_08) >= {"q1", "q7", "q12", "q13", "q16", "q20", "q22", "q23", "q24", "q25"}
    assert len(EX01_08) == 25 and len(ALL) == 31 and set(ALL) - set(EX01_08) == {f"q{i}" for i in range(26, 32)}
    for qid in ALL:
        q = bank.question(qid)
        assert len(MISTAKES[qid]) >= 3, qid
        assert q.hint, qid
        for t in q.tests:
            if _named(t):
                assert tuple(t.judge.mistakes) == tuple(MISTAKES[qid]), (qid, t.name)
            else:   # a whole training run: scored against its target only
                assert q.assignment in BUILD and not hasattr(t.judge, "mistakes"), (qid, t.name)
        names = [m.name for m in MISTAKES[qid]]
        assert len(set(names)) == len(names), qid
        for m in MISTAKES[qid]:
            assert mistakes.PREFIX not in m.says and "\n" not in m.says, (qid, m.name)
            # a mistake's words never hand over the answer of a derivation question
            assert not any(assign.normalise(f) in assign.normalise(m.says) for f in q.spoilers), (qid, m.name)


def test_the_mistakes_the_course_names_for_protonets_and_rl_are_listed():
    named = {qid: {m.name for m in MISTAKES[qid]} for qid in EX01_08}
    for qid, name in [("q15", "prototypes from the queries"), ("q14", "the minus sign missing on the logits"),
                      ("q15", "the minus sign missing on the logits"), ("q14", "unsquared distances"),
                      ("q16", "a flipped kernel"), ("q16", "padding on one side only"), ("q16", "no padding ('valid')"),
                      ("q15", "a naive softmax"), ("q20", "returns-to-go off by one"),
                      ("q20", "undiscounted returns-to-go"), ("q21", "the REINFORCE loss with the wrong sign"),
                      ("q21", "divided by all N*T steps"), ("q4", "FOMAML's direction (the inner gradient detached)"),
                      ("q23", "a detached inner gradient (FOMAML)"), ("q24", "two meta-gradients subtracted")]:
        assert name in named[qid], (qid, name)
    # one name, one wording: ex09/ex10 name a mistake of ex01-ex08 with the catalogue's shared words for it
    from mlcourse.grading.questions import _common_mistakes as cm
    shared = {cm.SIGN, cm.AT_THETA, cm.QUERY_IN_INNER, cm.SWAPPED, cm.SUM_TASKS, cm.DETACHED, cm.PLUS, cm.UNSQUARED,
              cm.FROM_QUERIES, cm.SUM_QUERIES}
    build = [q.id for q in bank.QUESTIONS.values() if q.assignment in BUILD]
    earlier = {m.name for qid in EX01_08 for m in MISTAKES[qid]}
    for qid in build:
        for m in MISTAKES[qid]:
            assert m.name not in earlier or (m.name, m.says) in shared, (qid, m.name)
            assert len({x.says for q2 in build for x in MISTAKES[q2] if x.name == m.name}) == 1, m.name
    says = {m.says for qid in ALL for m in MISTAKES[qid] if m.name == "a sum over tasks where the mean is meant"}
    assert len(says) == 1
    assert {qid for qid in ALL for m in MISTAKES[qid] if m.name == "a sum over tasks where the mean is meant"} \
        >= {"q2", "q9", "q10", "q11", "q23", "q24", "q25", "q26", "q27"}
    assert {qid for qid in ALL for m in MISTAKES[qid] if m.name == "prototypes from the queries"} >= {"q15", "q30", "q31"}
    assert "a detached inner gradient (FOMAML)" in {m.name for m in MISTAKES["q28"]}
    # FOMAML is a stop-gradient on the inner gradient, never "theta' treated as a constant" (that gives 0)
    for qid in ALL:
        for m in MISTAKES[qid]:
            assert "theta' treated as a constant" not in m.says + m.name, (qid, m.name)


@pytest.mark.parametrize("qid,name", VALUE_MISTAKES)
def test_check_names_the_mistake_without_showing_the_answer(qid, name, capsys):
    q = bank.question(qid)
    m = _mistake(qid, name)
    public = [t for t in q.tests if not t.hidden and _named(t)]
    answers, distinct = {}, []
    for t in public:
        ref = t.judge.reference(*codec.roundtrip(t.calls[0]))
        wrong = _wrong(m, t.calls[0])
        answers[_key(t.calls[0])] = wrong
        if wrong is not None and close(wrong, ref)[0] < 1.0:
            distinct.append(t.name)

    def learner(*args):   # the learner's function, with this mistake (None for a whole training run)
        return answers.get(_key(args))
    feedback.check(qid, {q.function: learner})
    out = capsys.readouterr().out
    if not distinct:   # only a hidden test tells it from the answer (a naive softmax): check() passes it
        assert f"{len(public)}/{len(public)} public tests passed" in out, out
        assert any(_wrong(m, t.calls[0]) is not None
                   and bank.judge_test(t, [Outcome(value=_wrong(m, t.calls[0]))])[0] < t.points
                   for t in q.tests if t.hidden), f"{qid}: {name!r} passes every test"
        return
    named = 0
    for t in public:
        if t.name not in distinct:
            continue
        assert "\N{BALLOT X} " + t.name in out, (qid, t.name, out)
        block = out.split("\N{BALLOT X} " + t.name, 1)[1].split("\N{BALLOT X}", 1)[0]
        # two mistakes can give the same value on one input (then the first listed is named)
        first = next(x for x in MISTAKES[qid] if x.recognises(answers[_key(t.calls[0])], t.calls[0]))
        assert f"{mistakes.PREFIX} ({first.name}): {first.says}" in block, (qid, name, out)
        named += first is m
        ref = t.judge.reference(*codec.roundtrip(t.calls[0]))
        leaf = float(np.ravel(np.asarray(ref if not isinstance(ref, (list, tuple)) else codec.roundtrip(ref)[0]
                                         if not isinstance(ref[0], (list, tuple)) else ref[0][0]))[0])
        shown_anyway = t.describe_input(q.function) + summarize(answers[_key(t.calls[0])])
        if abs(leaf) > 1e-3 and f"{leaf:.4f}" not in shown_anyway:   # the learner's own numbers are shown
            assert f"{leaf:.4f}" not in block, (qid, t.name)
    assert named >= 1, f"{qid}: {name!r} is never the mistake named on a public test"


@pytest.mark.parametrize("qid,name", VALUE_MISTAKES)
def test_the_judge_names_the_mistake_for_the_grader_too(qid, name):
    """The grader calls the same judges (bank.judge_test) on the outputs it received, hidden tests included."""
    q = bank.question(qid)
    m = _mistake(qid, name)
    named = 0
    for t in q.tests:
        if not _named(t):
            continue
        wrong = _wrong(m, t.calls[0])
        if wrong is None or (m.answer is not None and not hasattr(t.judge, "reference")):
            continue   # a value mistake says nothing about a test of a ValueError
        pts, msg = bank.judge_test(t, [Outcome(value=wrong)])
        if pts == t.points:
            continue
        assert pts == 0.0
        first = next(x for x in MISTAKES[qid] if x.recognises(wrong, t.calls[0]))
        assert f"{mistakes.PREFIX} ({first.name})" in msg
        named += first is m
    assert named >= 1, (qid, name)


def test_a_right_answer_or_an_unknown_wrong_one_names_no_mistake():
    t = bank.question("q9").tests[0]
    ref = t.judge.reference(*codec.roundtrip(t.calls[0]))
    pts, msg = bank.judge_test(t, [Outcome(value=ref)])
    assert pts == t.points and mistakes.PREFIX not in msg
    pts, msg = bank.judge_test(t, [Outcome(value=ref * 1.3 + 0.2)])
    assert pts == 0 and "relative error" in msg and mistakes.PREFIX not in msg
    pts, msg = bank.judge_test(t, [Outcome(error="ValueError", message="bad")])
    assert pts == 0 and mistakes.PREFIX not in msg


def test_a_mistake_needs_one_way_to_be_recognised_and_one_that_fails_is_skipped():
    with pytest.raises(ValueError, match="exactly one of answer= or matches="):
        mistakes.Mistake("x", "y")
    with pytest.raises(TypeError, match="naming\\(\\) takes Mistake objects"):
        mistakes.naming(by_reference(lambda x: x), "sign")
    broken = mistakes.Mistake("broken", "never shown", answer=lambda x: 1 / 0)
    doubled = mistakes.Mistake("doubled", "twice the answer", answer=lambda x: 2 * x)
    judge = mistakes.naming(by_reference(lambda x: x + 1.0), broken, doubled)
    frac, msg = judge([Outcome(value=6.0)], ((3.0,),))
    assert frac == 0 and "(doubled): twice the answer" in msg and "never shown" not in msg
    assert judge.reference(3.0) == 4.0 and judge.mistakes == (broken, doubled)


# ---- q1, judged by properties: mistaken sample_episode functions ---------------------------------------

def _episode(rng, classes, n_way, k_shot, k_query, relabel=True, distinct=True, per_class=True):
    if n_way > len(classes):
        raise ValueError("too few classes")
    chosen = rng.choice(len(classes), size=n_way, replace=False)
    xs, ys, xq, yq = [], [], [], []
    k_s = k_shot if per_class else max(1, k_shot // n_way)
    for label, c in enumerate(chosen):
        pool = np.asarray(classes[c])
        idx = rng.permutation(len(pool))
        s, q = (idx[:k_s], idx[k_s:k_s + k_query]) if distinct else (idx[:k_s], idx[:k_query])
        xs.append(pool[s])
        xq.append(pool[q])
        ys.append(np.full(len(s), label if relabel else c))
        yq.append(np.full(len(q), label if relabel else c))
    if not per_class:
        xs, ys = [np.concatenate(xs)[:k_shot]], [np.concatenate(ys)[:k_shot]]
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(xq), np.concatenate(yq), chosen


@pytest.mark.parametrize("flaw,name", [({"relabel": False}, "labels read globally"),
                                       ({"distinct": False}, "support and query share examples"),
                                       ({"per_class": False}, "K confused with the support size")])
def test_q1_names_the_episode_mistakes(flaw, name, capsys):
    def sample_episode(rng, classes, n_way=5, k_shot=1, k_query=5):
        return _episode(rng, classes, n_way, k_shot, k_query, **flaw)
    feedback.check("q1", {"sample_episode": sample_episode})
    out = capsys.readouterr().out
    says = next(m.says for m in MISTAKES["q1"] if m.name == name)
    assert f"{mistakes.PREFIX} ({name}): {says}" in out, out
    feedback.check("q1", {"sample_episode": lambda rng, classes, n, k, q: _episode(rng, classes, n, k, q)})
    out = capsys.readouterr().out
    assert "4/4 public tests passed" in out and mistakes.PREFIX not in out


# ---- the central one: a detached inner step passes q9 (the value) and fails q23 (the meta-gradient) ----

def _inner_update(theta, x_support, y_support, alpha, detach=False):
    def support_loss(p):
        return nets.mse(nets.mlp_apply(p, x_support), y_support)
    g = grad(support_loss)([(getval(W), getval(b)) for W, b in theta] if detach else theta)
    return [(W - alpha * gW, b - alpha * gb) for (W, b), (gW, gb) in zip(theta, g)]


def _maml_loss(detach):
    import autograd.numpy as anp

    def maml_loss(theta, x_support, y_support, x_query, y_query, alpha, inner_steps=1):
        losses = []
        for xs, ys, xq, yq in zip(x_support, y_support, x_query, y_query):
            theta_prime = theta
            for _ in range(inner_steps):
                theta_prime = _inner_update(theta_prime, xs, ys, alpha, detach)
            losses.append(nets.mse(nets.mlp_apply(theta_prime, xq), yq))
        return anp.mean(anp.array(losses))
    return maml_loss


def test_a_detached_inner_step_passes_q9_but_q23_names_it(capsys):
    detached = _maml_loss(detach=True)

    def maml_meta_gradient(theta, x_support, y_support, x_query, y_query, alpha, inner_steps=1):
        return grad(detached)(theta, x_support, y_support, x_query, y_query, alpha, inner_steps)
    ns = {"maml_loss": detached, "maml_meta_gradient": maml_meta_gradient}
    assert all(r.passed for r in feedback.run_tests("q9", ns, include_hidden=True))
    res = feedback.run_tests("q23", ns, include_hidden=True)
    assert not any(r.passed for r in res)
    assert all("(a detached inner gradient (FOMAML))" in r.message for r in res)
    # the same learner code without the detach passes everything
    exact = _maml_loss(detach=False)
    ns = {"maml_loss": exact,
          "maml_meta_gradient": lambda th, xs, ys, xq, yq, al, m=1: grad(exact)(th, xs, ys, xq, yq, al, m)}
    assert all(r.passed for r in feedback.run_tests("q23", ns, include_hidden=True))


def test_the_engine_linear_family_matches_the_weighted_closed_form():
    """q7's reference (the minimiser of the engine's MAML loss) is E[w a] / E[w], w = (1 - c)^2 mean(x_q^2)."""
    for t in bank.question("q7").tests:
        alpha, xs, xq, a = codec.roundtrip(t.calls[0])
        w = (1 - 2 * alpha * np.mean(xs ** 2, axis=1)) ** 2 * np.mean(xq ** 2, axis=1)
        assert abs(t.judge.reference(alpha, xs, xq, a) - np.sum(w * a) / np.sum(w)) < 1e-10
    t = bank.question("q7").tests[1]
    alpha, xs, xq, a = codec.roundtrip(t.calls[0])
    assert abs(t.judge.reference(alpha, xs, xq, a) - np.mean(a)) > 1e-3   # MAML is not averaging
    t = bank.question("q7").tests[0]
    assert abs(t.judge.reference(*codec.roundtrip(t.calls[0])) - np.mean(t.calls[0][3])) < 1e-12   # one shared c


def test_the_grader_names_the_detached_inner_step(tmp_path):
    """mlcourse grade on the ex04 solution with a detached inner gradient: q9 full marks, q23 none, and why."""
    import os

    import nbformat

    from mlcourse.grading import grader, runner
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    nb = nbformat.read(os.path.join(root, "solutions", "ex04_maml_fomaml.ipynb"), as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if c.source.startswith("def inner_update("))
    nb.cells[i].source = nb.cells[i].source.replace(
        "g = grad(lambda p: nets.mse(nets.mlp_apply(p, x_support), y_support))(theta)",
        "from autograd.tracer import getval\n"
        "    g = grad(lambda p: nets.mse(nets.mlp_apply(p, x_support), y_support))("
        "[(getval(W), getval(b)) for W, b in theta])")
    assert "getval" in nb.cells[i].source
    nbformat.write(nb, str(tmp_path / "ex04_detached.ipynb"))
    (report,) = grader.grade_path(str(tmp_path), limits=runner.Limits(cell_timeout=60, total_timeout=180))
    by_id = {q["id"]: q for q in report["questions"]}
    assert by_id["q9"]["score"] == by_id["q9"]["max_score"] > 0
    assert by_id["q23"]["score"] == 0
    assert "(a detached inner gradient (FOMAML))" in by_id["q23"]["message"]
    assert all("detached" in t["message"] for t in by_id["q23"]["tests"])


# ---- mlcourse grade: one submission per (assignment, k), every question carrying its k-th mistake ------------

_KEY_SOURCE = '''
import base64
import hashlib
import pickle

import numpy as np


def _key(a):
    """The same key for the same inputs, in the grader's child and in the test (arrays by value)."""
    if isinstance(a, (list, tuple)):
        return "(" + ",".join(_key(x) for x in a) + ")"
    if hasattr(a, "X") and hasattr(a, "y"):   # the loss function given by data
        return "loss" + _key(a.X) + _key(a.y)
    arr = np.asarray(a, dtype=float)
    return hashlib.sha1(repr(arr.shape).encode() + arr.tobytes()).hexdigest()
'''
_ns = {}
exec(_KEY_SOURCE, _ns)
_input_key = _ns["_key"]

# q1 is judged by properties: its mistakes are real sample_episode functions (the k-th flaw of _episode)
_Q1_FLAWS = ({"relabel": False}, {"distinct": False}, {"per_class": False})


def _submission(assignment, k):
    """(notebook, {qid: mistake}) for the k-th mistake of every question of assignment that has one."""
    import inspect

    import nbformat
    carried, cells = {}, [nbformat.v4.new_code_cell(_KEY_SOURCE)]
    for q in bank.assignment_questions(assignment):
        ms = MISTAKES[q.id]
        if k >= len(ms):
            continue
        carried[q.id] = ms[k]
        if q.id == "q1":
            cells.append(nbformat.v4.new_code_cell(
                inspect.getsource(_episode) + f"\n\ndef sample_episode(rng, classes, n_way=5, k_shot=1, k_query=5):\n"
                f"    return _episode(rng, classes, n_way, k_shot, k_query, **{_Q1_FLAWS[k]!r})\n"))
            continue
        answers = {_input_key(codec.roundtrip(args)): _wrong(ms[k], args) for t in q.tests if _named(t)
                   for args in t.calls}
        blob = base64.b64encode(pickle.dumps(answers)).decode()
        cells.append(nbformat.v4.new_code_cell(
            f"_ANSWERS_{q.id} = pickle.loads(base64.b64decode('{blob}'))\n\n\n"
            f"def {q.function}(*args):   # returns what a function with the mistake {ms[k].name!r} returns\n"
            f"    return _ANSWERS_{q.id}[_key(args)]\n"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["mlcourse"] = {"assignment": assignment}
    return nb, carried


GROUPS = [(a, k) for a in ASSIGNMENTS for k in range(max(len(MISTAKES[q.id]) for q in bank.assignment_questions(a)))]
GROUPS += [(a, 0) for a in BUILD]   # the first mistake of each question only (see the module's docstring)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every (assignment, k) submission graded once, two at a time: {(assignment, k): (report, carried)}."""
    import nbformat

    from mlcourse.grading import grader, runner
    folder = tmp_path_factory.mktemp("mistaken")
    carried = {}
    for a, k in GROUPS:
        nb, carried[(a, k)] = _submission(a, k)
        nbformat.write(nb, str(folder / f"{a}_mistake{k}.ipynb"))
    reports = grader.grade_path(str(folder), limits=runner.Limits(cell_timeout=60, total_timeout=300), workers=2)
    by_name = {r["submission"]: r for r in reports}
    return {(a, k): (by_name[f"{a}_mistake{k}.ipynb"], carried[(a, k)]) for a, k in GROUPS}


@pytest.mark.parametrize("assignment,k", GROUPS)
def test_the_grader_names_each_mistake_of_a_submission(graded, assignment, k):
    """Each question's k-th mistake, in a submission graded by mlcourse grade: every test it fails names a mistake
    (hidden tests too, in a line of its own that the report can show without the test), and this one at least once."""
    report, carried = graded[(assignment, k)]
    assert report["error"] is None, report["error"]
    by_id = {q["id"]: q for q in report["questions"]}
    for qid, m in carried.items():
        q = bank.question(qid)
        rq = by_id[qid]
        named = 0
        for t, rt in zip(q.tests, rq["tests"]):
            if not _named(t):   # a whole run (the submission's function has no answer for it): not a mistake test
                continue
            if qid == "q1":   # a property mistake: named on the tests it fails
                if rt["score"] < rt["max_score"] and t.judge is not None and "raises" not in t.name:
                    named += f"{mistakes.PREFIX} ({m.name})" in rt["message"]
                continue
            wrong = _wrong(m, t.calls[0])
            if wrong is None or rt["score"] >= rt["max_score"]:
                continue
            lines = [ln.strip() for ln in rt["message"].splitlines() if mistakes.PREFIX in ln]
            if m.answer is not None and not hasattr(t.judge, "reference"):
                continue
            first = next(x for x in MISTAKES[qid] if x.recognises(wrong, t.calls[0]))
            assert lines == [f"{mistakes.PREFIX} ({first.name}): {first.says}"], (qid, t.name, rt["message"])
            named += first is m
        assert named >= 1, (qid, m.name, rq)
        assert rq["score"] < rq["max_score"], (qid, m.name)


def test_the_catalogue_computes_each_mistake_from_the_right_computation():
    """With no mistake switched on, the catalogue's own computations give the reference on every test, so each
    mistaken answer differs from the answer by that one mistake only."""
    from mlcourse.grading.questions import _common_mistakes as cm
    right = {
        "q13": lambda zs, ys, n: cm._protos(zs, ys, n),
        "q14": lambda zq, c: cm._logits(zq, c),
        "q15": lambda zs, ys, zq, yq, n: cm._pn_loss(zs, ys, zq, yq, n),
        "q16": lambda x, W: cm._conv(x, W),
        "q17": lambda th, al, xs, ys: cm._msgd(th, al, xs, ys),
        "q18": lambda tr, te: cm._gap(tr, te),
        "q19": lambda W, b, phi, y, al: cm._anil(W, b, phi, y, al),
        "q20": lambda r, g: cm._rtg(r, g),
        "q21": lambda lp, a, m: cm._reinforce(lp, a, m),
        "q22": lambda o, r, m, g: cm._advantages(o, r, m, g),
    }
    for qid, fn in right.items():
        for t in bank.question(qid).tests:
            if not hasattr(t.judge, "reference"):
                continue
            args = codec.roundtrip(t.calls[0])
            assert close(codec.roundtrip(fn(*args)), t.judge.reference(*args))[0] == 1.0, (qid, t.name)
