"""The two build-it-yourself exercises: ex09 (meta-train MAML on sinusoids) and ex10 (train a ProtoNet on Omniglot).

Graded as an instructor grades them (``mlcourse grade``'s default limits: 30 s per cell and per call): the
solutions score full marks and reach the stated targets, blank exercises score zero, a version whose loop calls
the engine's trainer scores zero on that question and is told why, and typical mistakes are named, by check()
in the notebook and by the grader.
"""
import os
import re

import nbformat
import numpy as np
import pytest

from mlcourse import build_maml, build_protonet, conv, nets, protonet, tasks, train
from mlcourse.data import omniglot
from mlcourse.grading import bank, codec, feedback, grader, mistakes, runner
from mlcourse.grading.questions import ex09, ex10

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = {"ex09": "ex09_build_maml.ipynb", "ex10": "ex10_build_protonet.ipynb"}
LIMITS = runner.Limits()   # the grader's defaults, as `mlcourse grade` uses them
HAVE_OMNIGLOT = not ex10.missing_splits()
needs_omniglot = pytest.mark.skipif(not HAVE_OMNIGLOT, reason="Omniglot's two small background splits are not on "
                                    "this machine (set MLCOURSE_OMNIGLOT; see `mlcourse data`)")


def _read(folder, a):
    return nbformat.read(os.path.join(ROOT, folder, NOTEBOOKS[a]), as_version=4)


def _replace_solution(nb, fn, body):
    """The notebook with the solution block of `def fn(` replaced by body (indented 4)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and f"def {fn}(" in cell.source:
            head, rest = cell.source.split(f"def {fn}(", 1)
            before, after = rest.split("### BEGIN SOLUTION", 1)
            _, tail = after.split("### END SOLUTION", 1)
            indented = "\n".join("    " + line if line else line for line in body.strip("\n").split("\n"))
            cell.source = f"{head}def {fn}({before.rstrip(' ')}{indented}{tail}"
            return nb
    raise AssertionError(f"no def {fn}( in the notebook")


ENGINE_META_TRAIN = """
import functools
from mlcourse import maml
batches = train.task_batches(tasks.Sinusoid(), meta_batch_size=meta_batch_size, k_support=k_shot, k_query=k_shot)
theta, _ = train.meta_train(theta, functools.partial(maml.maml_value_and_grad, alpha=alpha), batches,
                            rng=np.random.default_rng(seed), iterations=iterations, schedule=train.constant(beta),
                            progress=False)
return theta
"""
ENGINE_TRAIN_PROTONET = """
from mlcourse import protonet

def sample(rng):
    return protonet.Episode.from_sample(tasks.sample_episode(rng, images, n_way, k_shot, k_query))
theta, _ = train.meta_train(theta, lambda p, ep: (protonet_loss(p, ep.x_support, ep.y_support, ep.x_query, ep.y_query,
                                                                 n_way), grad(protonet_loss)(p, ep.x_support, ep.y_support,
                                                                 ep.x_query, ep.y_query, n_way)),
                            sample, rng=np.random.default_rng(seed), iterations=episodes,
                            schedule=train.constant(beta), progress=False)
return theta
"""
FOMAML_META_TRAIN = """
def first_order(p, xs, ys, xq, yq):   # theta' with the inner gradient detached: FOMAML's direction
    T = xs.shape[0]
    tiled = [(np.repeat(W[None], T, axis=0), np.repeat(b[None], T, axis=0)) for W, b in p]
    g = grad(lambda q: np.sum(nets.mse(nets.mlp_apply(q, xs), ys)))(tiled)
    prime = [(W - alpha * gW, b - alpha * gb) for (W, b), (gW, gb) in zip(tiled, g)]
    gq = grad(lambda q: np.mean(nets.mse(nets.mlp_apply(q, xq), yq)))(prime)
    return [(np.mean(gW, axis=0), np.mean(gb, axis=0)) for gW, gb in gq]
rng = np.random.default_rng(seed)
state = train.adam_init(theta)
for _ in range(iterations):
    b = tasks.Sinusoid().sample(rng, meta_batch_size, k_shot, k_shot)
    theta, state = train.adam_update(state, theta, first_order(theta, b.x_support, b.y_support, b.x_query, b.y_query), beta)
return theta
"""
QUERIES_AS_PROTOTYPES = """
z = embed(theta, np.concatenate([x_support, x_query]))
z_query = z[len(x_support):]
onehot = (y_query[:, None] == np.arange(n_way)[None, :]).astype(float)
c = np.dot(onehot.T, z_query) / np.sum(onehot, axis=0)[:, None]
logits = -np.sum((z_query[:, None, :] - c[None, :, :]) ** 2, axis=2)
top = np.max(logits, axis=1, keepdims=True)
log_softmax = logits - top - np.log(np.sum(np.exp(logits - top), axis=1, keepdims=True))
return -np.mean(log_softmax[np.arange(len(y_query)), y_query])
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Reports of the solutions, the blank exercises and the learner versions below, graded in one folder."""
    folder = tmp_path_factory.mktemp("submissions")
    cases = {
        "ex09_solution": _read("solutions", "ex09"),
        "ex10_solution": _read("solutions", "ex10"),
        "ex09_blank": _read("exercises", "ex09"),
        "ex10_blank": _read("exercises", "ex10"),
        "ex09_engine_trainer": _replace_solution(_read("solutions", "ex09"), "meta_train", ENGINE_META_TRAIN),
        "ex10_engine_trainer": _replace_solution(_read("solutions", "ex10"), "train_protonet", ENGINE_TRAIN_PROTONET),
        "ex09_first_order": _replace_solution(_read("solutions", "ex09"), "meta_train", FOMAML_META_TRAIN),
        "ex10_queries_as_prototypes": _replace_solution(_read("solutions", "ex10"), "protonet_loss",
                                                        QUERIES_AS_PROTOTYPES),
    }
    for name, nb in cases.items():
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    reports = grader.grade_path(str(folder), limits=LIMITS, workers=2)
    return {os.path.basename(r["submission"])[:-6]: r for r in reports}


def _q(report, qid):
    return next(q for q in report["questions"] if q["id"] == qid)


def _test(report, qid, words):
    return next(t for t in _q(report, qid)["tests"] if words in t["name"])


def test_solutions_score_full_marks_within_the_default_limits(graded):
    for a in ("ex09", "ex10"):
        r = graded[f"{a}_solution"]
        assert r["error"] is None and not r["notes"], (a, r["error"], r["notes"])
        assert r["score"] == r["max_score"] > 0, (a, [(q["id"], q["message"]) for q in r["questions"]])


def test_the_full_runs_reach_the_stated_targets(graded):
    msg = _test(graded["ex09_solution"], "q28", "reach the target")["message"]
    mse = float(re.search(r"after one inner step ([\d.]+)", msg).group(1))
    baseline = float(re.search(r"same loop gets ([\d.]+)", msg).group(1))
    assert mse <= ex09.TARGET_MSE - 0.2 and mse < baseline - 1.0, msg       # with margin
    msg = _test(graded["ex09_solution"], "q29", "fit the average task")["message"]
    assert float(re.search(r"no adaptation ([\d.]+)", msg).group(1)) <= ex09.TARGET_PRETRAIN_MSE - 0.2, msg
    if HAVE_OMNIGLOT:   # a hidden test: the report says "passed" only, so the margin is measured here
        t = _test(graded["ex10_solution"], "q31", "Omniglot")
        assert t["score"] == t["max_score"] and t["message"] == "passed", t
        test = next(t for t in bank.question("q31").tests if "Omniglot" in t.name)
        # the solution's loop follows the engine's (the short runs check it to 1e-6): score the engine's full run
        acc, _ = ex10.heldout_accuracy(ex10.ref_train_protonet(*codec.roundtrip(test.calls[0])))
        assert acc >= ex10.TARGET_ACCURACY + 0.03, acc


def test_blank_exercises_score_zero_without_a_crash(graded):
    for a in ("ex09", "ex10"):
        r = graded[f"{a}_blank"]
        assert r["error"] is None and r["score"] == 0 and r["max_score"] > 0
        assert {q["message"] for q in r["questions"]} == {"not answered yet: the function raises NotImplementedError"}


@pytest.mark.parametrize("a,qid,fn", [("ex09", "q28", "meta_train"), ("ex10", "q31", "train_protonet")])
def test_a_loop_that_calls_the_engines_trainer_scores_zero_and_is_told_why(graded, a, qid, fn):
    r = graded[f"{a}_engine_trainer"]
    q = _q(r, qid)
    assert q["score"] == 0, q
    why = f"{qid} asks you to write {fn} yourself; mlcourse.train.meta_train is not available while {qid} is graded"
    assert why in q["message"], q   # the question's message, which the learner reads first
    for t in q["tests"]:   # a hidden test shows only "failed" (the text of an exception raised in it is not shown)
        assert why in t["message"] if not t["hidden"] else t["message"] == "failed", t
    others = [x for x in r["questions"] if x["id"] != qid]
    assert all(x["score"] == x["max_score"] for x in others), others   # only that question loses its points


def test_the_grader_names_a_first_order_outer_loop(graded):
    q = _q(graded["ex09_first_order"], "q28")
    first = _test(graded["ex09_first_order"], "q28", "follow the loop")
    assert first["score"] == 0 and f"{mistakes.PREFIX} (a detached inner gradient (FOMAML))" in first["message"], first
    assert q["score"] < q["max_score"]


def test_the_grader_names_prototypes_built_from_the_queries(graded):
    r = graded["ex10_queries_as_prototypes"]
    for qid in ("q30", "q31"):
        t = _q(r, qid)["tests"][0]
        assert t["score"] == 0 and f"{mistakes.PREFIX} (prototypes from the queries)" in t["message"], t


# ---- check() in the notebook: typical mistakes and half-done work, named -----------------------------------

def _vectorised_maml_loss(sign=1.0, reduce=np.mean, swap=False):
    import autograd.numpy as anp
    from autograd import grad

    def maml_loss(theta, xs, ys, xq, yq, alpha):
        if swap:
            xs, ys, xq, yq = xq, yq, xs, ys
        T = xs.shape[0]
        tiled = [(anp.repeat(W[None], T, axis=0), anp.repeat(b[None], T, axis=0)) for W, b in theta]
        g = grad(lambda p: anp.sum(nets.mse(nets.mlp_apply(p, xs), ys)))(tiled)
        prime = [(W - sign * alpha * gW, b - sign * alpha * gb) for (W, b), (gW, gb) in zip(tiled, g)]
        return (anp.mean if reduce is np.mean else anp.sum)(nets.mse(nets.mlp_apply(prime, xq), yq))
    return maml_loss


@pytest.mark.parametrize("kw,name", [({"sign": -1.0}, "the inner step's sign"),
                                     ({"reduce": np.sum}, "a sum over tasks where the mean is meant"),
                                     ({"swap": True}, "support and query swapped")])
def test_check_names_maml_loss_mistakes(kw, name, capsys):
    feedback.check("q26", {"maml_loss": _vectorised_maml_loss(**kw)})
    out = capsys.readouterr().out
    assert "0/2 public tests passed" in out and f"{mistakes.PREFIX} ({name})" in out, out


def _fit(gradient_of):
    """A learner's loop; gradient_of(loss) -> gradient function (autograd.grad when right)."""
    from mlcourse import tasks

    def fit(loss, theta, seed, iterations, meta_batch_size, k_shot, beta, reuse=False):
        rng = np.random.default_rng(seed)
        g_fn, state, b = gradient_of(loss), train.adam_init(theta), None
        for _ in range(iterations):
            if b is None or not reuse:
                b = tasks.Sinusoid().sample(rng, meta_batch_size, k_shot, k_shot)
            theta, state = train.adam_update(state, theta, g_fn(theta, b.x_support, b.y_support, b.x_query,
                                                               b.y_query), beta)
        return theta
    return fit


def test_check_names_a_reused_batch_and_passes_a_right_loop(capsys):
    from autograd import grad
    maml_loss = _vectorised_maml_loss()
    fit = _fit(grad)

    def meta_train(theta, seed, iterations, meta_batch_size, k_shot, alpha, beta):
        return fit(lambda p, *b: maml_loss(p, *b, alpha), theta, seed, iterations, meta_batch_size, k_shot, beta,
                   reuse=True)
    feedback.check("q28", {"meta_train": meta_train})
    out = capsys.readouterr().out
    assert f"{mistakes.PREFIX} (one batch of tasks reused)" in out, out
    assert "does not reach the target" in out or "reaches the target" not in out


def test_check_on_half_done_work_says_what_is_missing(capsys):
    def meta_train(theta, seed, iterations, meta_batch_size, k_shot, alpha, beta):
        return theta   # the loop not written yet

    def train_protonet(theta, images, seed, episodes, n_way, k_shot, k_query, beta):
        return [(W * 1.0, g, b) for W, g, b in theta]   # a copy, never updated
    feedback.check("q28", {"meta_train": meta_train})
    out = capsys.readouterr().out
    assert "returned theta unchanged: the loop applied no update" in out, out
    feedback.check("q31", {"train_protonet": train_protonet})
    assert "expected values" in capsys.readouterr().out


def test_check_names_a_protonet_loop_on_one_reused_episode(capsys):
    from autograd import grad
    from mlcourse import tasks
    ns = {"embed": ex10.embed}
    exec(compile(_solution_source("ex10", "protonet_loss"), "<protonet_loss>", "exec"), ns)

    def train_protonet(theta, images, seed, episodes, n_way, k_shot, k_query, beta):
        rng = np.random.default_rng(seed)
        ep = tasks.sample_episode(rng, images, n_way, k_shot, k_query)
        state = train.adam_init(theta)
        for _ in range(episodes):
            theta, state = train.adam_update(state, theta, grad(ns["protonet_loss"])(theta, *ep[:4], n_way), beta)
        return theta
    feedback.check("q31", {"train_protonet": train_protonet})
    out = capsys.readouterr().out
    assert f"{mistakes.PREFIX} (one episode reused)" in out, out


def _solution_source(a, fn):
    """The solution's definition of fn (its cell from `def fn(` on), for building learner versions."""
    for cell in _read("solutions", a).cells:
        if cell.cell_type == "code" and cell.source.startswith(f"def {fn}("):
            return "import autograd.numpy as np\n" + cell.source
    raise AssertionError(fn)


def test_every_question_names_at_least_three_mistakes_that_differ_from_the_answer():
    for qid in ("q26", "q27", "q28", "q29", "q30", "q31"):
        q = bank.question(qid)
        judged = [t for t in q.tests if hasattr(t.judge, "mistakes")]
        assert judged and all(len(t.judge.mistakes) >= 3 for t in judged), qid
        t = next(t for t in judged if not t.hidden)
        ref = t.judge.reference(*codec.roundtrip(t.calls[0]))
        for m in t.judge.mistakes:
            wrong = m.answer(*codec.roundtrip(t.calls[0]))
            assert t.judge([bank.Outcome(value=wrong)], t.calls)[0] == 0, (qid, m.name)   # fails the test
            assert m.recognises(wrong, t.calls[0]), (qid, m.name)
        assert t.judge([bank.Outcome(value=ref)], t.calls)[0] == 1, qid


# ---- the targets hold with margin across seeds (the engine's own loop: the reference the learner reproduces) --

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_meta_training_reaches_the_target_from_other_seeds(seed):
    theta0 = nets.mlp_init(np.random.default_rng(seed), list(ex09.SIZES))
    args = (seed, ex09.ITERATIONS, ex09.META_BATCH_SIZE, ex09.K_SHOT)
    mse_maml = ex09.query_mse(ex09.ref_meta_train(theta0, *args, ex09.ALPHA, ex09.BETA))
    mse_pre = ex09.query_mse(ex09.ref_pretrain(theta0, *args, ex09.BETA))
    assert mse_maml[1] <= ex09.TARGET_MSE - 0.1 and mse_pre[0] <= ex09.TARGET_PRETRAIN_MSE - 0.1
    assert mse_maml[1] < mse_pre[1] - 1.0


# ---- Omniglot missing -----------------------------------------------------------------------------------------

def test_without_omniglot_the_notebook_says_once_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(build_protonet, "missing_splits", lambda: ["images_background_small1", "images_background_small2"])
    assert build_protonet.exercise_data() is None
    out = capsys.readouterr().out
    command = ("mlcourse data omniglot --split images_background_small1 && "
               "mlcourse data omniglot --split images_background_small2")
    assert out.count(command) == 1 and out.count("Omniglot is not on this machine") == 1, out
    t = next(t for t in bank.question("q31").tests if "Omniglot" in t.name)
    frac, msg = t.judge([bank.Outcome(value=None)], t.calls)
    assert frac == 0 and command in msg


@needs_omniglot
def test_the_grader_reads_omniglot_from_the_data_folder_not_the_submission():
    t = next(t for t in bank.question("q31").tests if "Omniglot" in t.name)
    theta0, images = t.calls[0][0], t.calls[0][1]
    assert images.shape == (136, 20, ex10.IMAGE_SIZE, ex10.IMAGE_SIZE) and images.dtype == np.float32
    assert conv.num_params(theta0) == conv.num_params(conv.conv4_init(np.random.default_rng(0), ex10.CHANNELS,
                                                                      ex10.BLOCKS))
    assert len(omniglot.find_split("images_background_small2").name) > 0


def test_the_notebooks_settings_are_the_ones_the_grader_scores():
    """ex09's set-up cell states its settings; the full-run tests and the targets use the question file's."""
    setup = next(c.source for c in _read("solutions", "ex09").cells if c.cell_type == "code" and "SIZES =" in c.source)
    stated = dict(re.findall(r"^([A-Z_]+) = (.+?)\s*(?:#.*)?$", setup, re.M))
    for name in ("SIZES", "META_BATCH_SIZE", "K_SHOT", "ALPHA", "BETA", "ITERATIONS", "SEED"):
        assert np.array_equal(np.asarray(eval(stated[name])), np.asarray(getattr(ex09, name))), name
    assert ex09.full_meta_train_args()[1:] == (ex09.SEED, ex09.ITERATIONS, ex09.META_BATCH_SIZE, ex09.K_SHOT,
                                               ex09.ALPHA, ex09.BETA)


# ---- what the learner's notebooks may import, and the grader's inputs ----------------------------------------

def test_the_notebooks_read_their_settings_from_the_engine_never_from_the_question_bank():
    """The grading child cannot import mlcourse.grading.questions: the notebooks take settings and data elsewhere."""
    for folder in ("solutions", "exercises"):
        for a in NOTEBOOKS:
            code = "\n".join(c.source for c in _read(folder, a).cells if c.cell_type == "code")
            assert "mlcourse.grading.questions" not in code and "build_" in code, (folder, a)
    assert (ex09.SIZES, ex09.ALPHA, ex09.eval_tasks) == (build_maml.SIZES, build_maml.ALPHA, build_maml.eval_tasks)
    assert (ex10.EPISODES, ex10.TARGET_ACCURACY) == (build_protonet.EPISODES, build_protonet.TARGET_ACCURACY)


def test_the_notebooks_accuracy_is_the_engines_nearest_prototype_accuracy():
    """build_protonet scores without mlcourse.protonet (blocked while ex10 is graded), and agrees with it."""
    theta, images, _ = ex10._toy(7, 10, 8, 5, 1, 5)
    theta = conv.conv4_init(np.random.default_rng(3), channels=ex10.CHANNELS, blocks=ex10.BLOCKS)
    rng = np.random.default_rng(11)
    accs = []
    for _ in range(6):
        ep = protonet.Episode.from_sample(tasks.sample_episode(rng, images.astype(np.float32), 5, 1, 5))
        accs.append(build_protonet._accuracy(theta, ep))
        assert accs[-1] == protonet.accuracy(theta, ep, model=build_protonet.embed)
    assert len(set(accs)) > 1   # episodes of different difficulty: the comparison is not of constants


@needs_omniglot
def test_the_omniglot_inputs_are_packed_in_the_grader_within_the_codecs_bounds():
    """The lazy Omniglot call is read in the grader's process and crosses to the child as one packed file."""
    calls = runner._encode_calls(bank.assignment_questions("ex10"))
    i = next(i for i, t in enumerate(bank.question("q31").tests) if "Omniglot" in t.name)
    (call,) = [c for c in calls if c["id"] == f"q31.{i}.0"]
    assert len(call["data"]) < codec.MAX_BYTES + codec.MAX_HEADER
    args = codec.decode(*codec.unpack(call["data"]))
    assert args[1].shape == (136, 20, ex10.IMAGE_SIZE, ex10.IMAGE_SIZE) and args[1].dtype == np.float32
    assert args[2:] == (ex10.SEED, ex10.EPISODES, ex10.N_WAY, ex10.K_SHOT, ex10.K_QUERY, ex10.BETA)
