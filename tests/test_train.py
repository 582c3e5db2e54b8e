"""mlcourse.train: the one outer loop, Adam as a pure function, schedules, checkpoints, meta-test."""
import copy
import functools

import numpy as np
import pytest
from tolerances import EXACT

from mlcourse import baseline, checks, maml, nets, reptile, tasks, train, tree

CONVERGED = 1e-3   # the toy least-squares method ends this close to its known optimum


def _sinusoid_run(seed, iters=30, value_and_grad=None, schedule=None, callback=None):
    rng = np.random.default_rng(seed)
    theta = nets.mlp_init(rng, [1, 10, 10, 1], dtype=np.float32)
    vg = value_and_grad or functools.partial(maml.maml_value_and_grad, alpha=0.01, inner_steps=1)
    batches = train.task_batches(tasks.Sinusoid(), meta_batch_size=5, k_support=5, k_query=5, dtype=np.float32)
    return train.meta_train(theta, vg, batches, rng=rng, iterations=iters, schedule=schedule or train.constant(1e-3),
                            log_every=5, progress=False, callback=callback)


# --- a toy custom method, nothing from mlcourse.tasks: least squares y = X w + b -------------------
# Its parameters are a nested container (like Meta-SGD's (theta, alpha) pair or ANIL's (body, head)),
# its batches are dicts from its own sampler (like episodes or rollouts).

W_STAR, B_STAR, C_STAR = np.array([1.5, -2.0, 0.5]), 0.75, np.array([[3.0, -1.0]])


def _toy_init():
    return {"body": (np.zeros(3), np.zeros(())), "head": [np.zeros((1, 2))]}


def _toy_batches(rng):
    X = rng.standard_normal((32, 3))
    return {"X": X, "y": X @ W_STAR + B_STAR}


def _toy_value_and_grad(params, batch):
    """L = mean (X w + b - y)^2 + |c - C*|^2, with its gradient written by hand."""
    (w, b), (c,) = params["body"], params["head"]
    r = batch["X"] @ w + b - batch["y"]
    n = len(r)
    loss = np.mean(r ** 2) + np.sum((c - C_STAR) ** 2)
    return loss, {"body": (2 * batch["X"].T @ r / n, np.asarray(2 * np.sum(r) / n)), "head": [2 * (c - C_STAR)]}


def test_a_custom_method_trains_through_the_loop_unchanged():
    iters, seen = 1500, []
    params, hist = train.meta_train(_toy_init(), _toy_value_and_grad, _toy_batches, rng=np.random.default_rng(0),
                                    iterations=iters, schedule=train.cosine(0.05, iters), log_every=100,
                                    progress=False, callback=lambda it, p, loss: seen.append((it, type(p))))
    assert set(params) == {"body", "head"} and isinstance(params["body"], tuple) and isinstance(params["head"], list)
    assert np.max(np.abs(params["body"][0] - W_STAR)) < CONVERGED
    assert abs(float(params["body"][1]) - B_STAR) < CONVERGED
    assert np.max(np.abs(params["head"][0] - C_STAR)) < CONVERGED
    assert hist.iteration == list(range(100, iters + 1, 100)) and hist.loss[-1] < CONVERGED ** 2
    assert seen[0] == (1, dict) and seen[-1][0] == iters and len(seen) == iters


def test_the_toy_gradient_is_right():
    params, batch = _toy_init(), _toy_batches(np.random.default_rng(1))
    vec, unflatten = tree.flatten(params)
    loss, g = _toy_value_and_grad(params, batch)
    h = 1e-6
    fd = [(_toy_value_and_grad(unflatten(vec + h * e), batch)[0] - _toy_value_and_grad(unflatten(vec - h * e), batch)[0])
          / (2 * h) for e in np.eye(vec.size)]
    np.testing.assert_allclose(tree.flatten(g)[0], fd, atol=1e-6)


# --- the loop is the plain three lines, in that order ------------------------------------------------

def test_meta_train_is_sample_value_and_grad_adam_in_order():
    """Same sampler calls, same gradients, same Adam steps: bit for bit what the loop written out gives."""
    iters, beta = 40, 2e-3
    vg = functools.partial(maml.multistep_value_and_grad, alpha=0.01, inner_steps=2)
    batches = train.task_batches(tasks.Sinusoid(), meta_batch_size=4, k_support=5, k_query=6, dtype=np.float32)
    rng = np.random.default_rng(7)
    theta = nets.mlp_init(rng, [1, 8, 8, 1], dtype=np.float32)
    rng_loop = copy.deepcopy(rng)
    out, _ = train.meta_train(theta, vg, batches, rng=rng, iterations=iters, schedule=train.cosine(beta, iters),
                              progress=False)
    th, state = theta, train.adam_init(theta)
    for t in range(1, iters + 1):
        batch = tasks.Sinusoid().sample(rng_loop, 4, 5, 6, dtype=np.float32)
        _, g = maml.multistep_value_and_grad(th, batch, 0.01, 2)
        th, state = train.adam_update(state, th, g, beta * 0.5 * (1 + np.cos(np.pi * (t - 1) / iters)))
    assert all(np.array_equal(a, b) for a, b in zip(tree.leaves(out), tree.leaves(th)))
    assert all(a.dtype == np.float32 for a in tree.leaves(out))
    assert rng.random() == rng_loop.random()   # the generator advanced exactly as far


def test_deterministic_given_seed():
    (t1, h1), (t2, h2) = _sinusoid_run(0), _sinusoid_run(0)
    assert all(np.array_equal(a, b) for a, b in zip(tree.leaves(t1), tree.leaves(t2))) and h1.loss == h2.loss
    t3, _ = _sinusoid_run(1)
    assert checks.rel_error(t1, t3) > 0


@pytest.mark.parametrize("value_and_grad", [
    functools.partial(maml.maml_value_and_grad, alpha=0.01, inner_steps=1),
    functools.partial(maml.multistep_value_and_grad, alpha=0.01, inner_steps=2),
    functools.partial(maml.fomaml_value_and_grad, alpha=0.01, inner_steps=1),
    functools.partial(reptile.reptile_pseudo_grad, alpha=0.01, inner_steps=1),
    baseline.pretrain_value_and_grad,
], ids=["maml", "maml_multistep", "fomaml", "reptile", "pretrain"])
def test_every_method_lowers_the_loss(value_and_grad):
    _, h = _sinusoid_run(0, iters=300, value_and_grad=value_and_grad)
    assert np.mean(h.loss[-10:]) < np.mean(h.loss[:3])


def test_callback_sees_every_iteration_and_the_updated_params():
    seen = []
    theta, hist = _sinusoid_run(0, iters=12, callback=lambda it, th, loss: seen.append((it, th, loss)))
    assert [s[0] for s in seen] == list(range(1, 13))
    assert seen[-1][1] is theta and hist.loss == [seen[4][2], seen[9][2], seen[11][2]]  # log_every=5 and the last


# --- schedules ------------------------------------------------------------------------------------

def test_schedules():
    assert [train.constant(0.01)(t) for t in (1, 7, 1000)] == [0.01] * 3
    c = train.cosine(0.1, 10)
    assert c(1) == pytest.approx(0.1, abs=EXACT)
    assert c(6) == pytest.approx(0.05, abs=EXACT)                          # half-way: (1 + cos(pi/2)) / 2
    assert c(10) == pytest.approx(0.1 * 0.5 * (1 + np.cos(0.9 * np.pi)), abs=EXACT)
    assert all(c(t) > c(t + 1) for t in range(1, 10))
    with pytest.raises(ValueError, match="beta"):
        train.constant(-1e-3)
    with pytest.raises(ValueError, match="iterations"):
        train.cosine(1e-3, 0)


def test_the_schedule_sets_the_step_size():
    """beta_t = 0 from some t on freezes the parameters from there."""
    frozen = []
    _sinusoid_run(0, iters=10, schedule=lambda t: 1e-3 if t <= 5 else 0.0,
                  callback=lambda it, th, loss: frozen.append(tree.flatten(th)[0]))
    assert not np.array_equal(frozen[3], frozen[4])
    assert all(np.array_equal(frozen[4], f) for f in frozen[5:])


# --- Adam -----------------------------------------------------------------------------------------

def _adam_by_hand(p, grads, lr, b1, b2, eps):
    """Kingma & Ba (2015), Algorithm 1 with the reordered step of their section 2:
    alpha_t = alpha sqrt(1 - b2^t) / (1 - b1^t),  p <- p - alpha_t m_t / (sqrt(v_t) + eps)."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        p = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return p, m, v


@pytest.mark.parametrize("eps", [1e-8, 0.5])   # a large eps makes where eps enters visible
def test_adam_two_steps_match_the_formulas(eps):
    b1, b2, lr = 0.8, 0.9, 0.1
    p0 = [np.array([1.0, -2.0]), {"c": np.array(3.0)}]
    g1 = [np.array([0.5, -4.0]), {"c": np.array(-1.0)}]
    g2 = [np.array([-1.5, 2.0]), {"c": np.array(0.25)}]
    state = train.adam_init(p0)
    p1, state = train.adam_update(state, p0, g1, lr, b1=b1, b2=b2, eps=eps)
    p2, state = train.adam_update(state, p1, g2, lr, b1=b1, b2=b2, eps=eps)
    for leaf in range(2):
        want, m, v = _adam_by_hand(tree.leaves(p0)[leaf], [tree.leaves(g1)[leaf], tree.leaves(g2)[leaf]],
                                   lr, b1, b2, eps)
        np.testing.assert_allclose(tree.leaves(p2)[leaf], want, rtol=0, atol=EXACT)
        np.testing.assert_allclose(tree.leaves(state["m"])[leaf], m, rtol=0, atol=EXACT)
        np.testing.assert_allclose(tree.leaves(state["v"])[leaf], v, rtol=0, atol=EXACT)
    assert state["t"] == 2
    # with eps -> 0 it is the textbook bias-corrected step m_hat / sqrt(v_hat): here |step 1| = lr
    q, _ = train.adam_update(train.adam_init(p0), p0, g1, lr, eps=1e-300)
    np.testing.assert_allclose(tree.sub(p0, q)[0], lr * np.sign(g1[0]), rtol=0, atol=EXACT)


def test_adam_is_pure_and_keeps_dtypes():
    p = [(np.array([[1.0, 2.0]], dtype=np.float32), np.array([0.5], dtype=np.float32))]
    g = [(np.array([[3e20, -1.0]], dtype=np.float32), np.array([2.0], dtype=np.float32))]
    p_copy, g_copy = copy.deepcopy(p), copy.deepcopy(g)
    s0 = train.adam_init(p)
    s0_copy = copy.deepcopy(s0)
    p1, s1 = train.adam_update(s0, p, g, 1e-3)
    for a, b in zip(tree.leaves([p, g, s0["m"], s0["v"]]), tree.leaves([p_copy, g_copy, s0_copy["m"], s0_copy["v"]])):
        assert np.array_equal(a, b)
    assert s0["t"] == 0 and s1["t"] == 1 and s1 is not s0
    assert [a.dtype for a in tree.leaves(p1)] == [np.float32, np.float32]
    assert all(a.dtype == np.float64 for a in tree.leaves([s1["m"], s1["v"]]))
    assert np.all(np.isfinite(tree.leaves(s1["v"])[0]))        # (3e20)^2 overflows float32, not float64
    again, _ = train.adam_update(s0, p, g, 1e-3)                 # same inputs, same output
    assert all(np.array_equal(a, b) for a, b in zip(tree.leaves(p1), tree.leaves(again)))


def test_meta_train_does_not_mutate_its_inputs():
    rng = np.random.default_rng(0)
    theta = nets.mlp_init(rng, [1, 6, 1], dtype=np.float32)
    before = copy.deepcopy(theta)
    batches = train.task_batches(tasks.Sinusoid(), meta_batch_size=3, k_support=5, k_query=5, dtype=np.float32)
    out, _ = train.meta_train(theta, baseline.pretrain_value_and_grad, batches, rng=rng, iterations=5, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(tree.leaves(theta), tree.leaves(before)))
    assert checks.rel_error(out, theta) > 0


def test_adam_minimises_a_quadratic():
    theta, state = [np.array([3.0, -2.0])], train.adam_init([np.array([3.0, -2.0])])
    for _ in range(500):
        theta, state = train.adam_update(state, theta, [2 * theta[0]], 0.1)
    assert np.max(np.abs(theta[0])) < 1e-2


def test_adam_bad_arguments():
    p = [np.zeros(2)]
    s = train.adam_init(p)
    with pytest.raises(ValueError, match="shaped like params"):
        train.adam_update(s, p, [np.zeros(3)], 1e-3)
    with pytest.raises(ValueError, match="shaped like params"):
        train.adam_update(s, p, [np.zeros(2), np.zeros(2)], 1e-3)
    with pytest.raises(ValueError, match="shaped like params"):
        train.adam_update(train.adam_init({"a": np.zeros(2)}), {"a": np.zeros(2)}, {"b": np.zeros(2)}, 1e-3)
    with pytest.raises(TypeError, match="adam_init"):
        train.adam_update({"m": 0}, p, p, 1e-3)
    with pytest.raises(ValueError, match="beta_t"):
        train.adam_update(s, p, p, -1.0)
    with pytest.raises(ValueError, match="b1"):
        train.adam_update(s, p, p, 1e-3, b1=1.0)
    with pytest.raises(ValueError, match="eps"):
        train.adam_update(s, p, p, 1e-3, eps=0.0)
    with pytest.raises(TypeError, match="float arrays"):
        train.adam_init([np.zeros(2, dtype=int)])


# --- errors -----------------------------------------------------------------------------------------

def test_nan_stops_with_the_iteration_named():
    rng = np.random.default_rng(0)
    theta = nets.mlp_init(rng, [1, 10, 1])
    batches = train.task_batches(tasks.Sinusoid())

    def explode(theta, batch):
        return float("nan"), theta
    with pytest.raises(FloatingPointError, match="iteration 1: the meta-loss is nan. Lower the outer learning rate"):
        train.meta_train(theta, explode, batches, rng=rng, iterations=3, progress=False)

    def bad_grad_at_3(theta, batch, calls=[]):
        calls.append(1)
        return 1.0, tree.scale(np.inf if len(calls) == 3 else 0.0, theta)
    with pytest.raises(FloatingPointError, match="iteration 3: .* gradient is not finite"):
        train.meta_train(theta, bad_grad_at_3, batches, rng=rng, iterations=5, progress=False)
    # overflow inside the step is reported once, as this error, even where NumPy would raise on it
    def overflow(theta, batch):
        return np.float64(1e308) * 10, theta
    old = np.seterr(all="raise")
    try:
        with pytest.raises(FloatingPointError, match="diverged at iteration 1: the meta-loss is inf"):
            train.meta_train(theta, overflow, batches, rng=rng, iterations=3, progress=False)
        assert np.geterr()["over"] == "raise"   # and the caller's setting is back afterwards
    finally:
        np.seterr(**old)
    # a real divergence, a huge inner step: the message names the bound step sizes to lower
    with pytest.raises(FloatingPointError, match=r"iteration \d+: .*alpha=50.0, inner_steps=5"):
        train.meta_train(theta, functools.partial(maml.maml_value_and_grad, alpha=50.0, inner_steps=5), batches,
                         rng=rng, iterations=20, progress=False)


def test_bad_training_arguments():
    theta = nets.mlp_init(np.random.default_rng(0), [1, 4, 1])
    batches = train.task_batches(tasks.Sinusoid())
    vg = baseline.pretrain_value_and_grad

    def call(*args, **kw):
        kw = {"rng": np.random.default_rng(0), "iterations": 2, "progress": False, **kw}
        return train.meta_train(*args, **kw)
    with pytest.raises(TypeError, match="value_and_grad must be a function .*functools.partial"):
        call(theta, "maml", batches)
    with pytest.raises(TypeError, match="sample_batch must be a function .*task_batches"):
        call(theta, vg, tasks.Sinusoid())
    with pytest.raises(TypeError, match="schedule must be a function"):
        call(theta, vg, batches, schedule=1e-3)
    with pytest.raises(ValueError, match=r"schedule\(1\) returned beta_t = -1"):
        call(theta, vg, batches, schedule=lambda t: -1.0)
    with pytest.raises(ValueError, match=r"schedule\(2\) returned beta_t = nan"):
        call(theta, vg, batches, schedule=lambda t: 1e-3 if t == 1 else float("nan"))
    with pytest.raises(TypeError, match="function of the iteration"):
        call(theta, vg, batches, schedule=lambda: 1e-3)
    with pytest.raises(TypeError, match="rng"):
        call(theta, vg, batches, rng=0)
    with pytest.raises(ValueError, match="iterations"):
        call(theta, vg, batches, iterations=-1)
    with pytest.raises(ValueError, match="adam must be a dict"):
        call(theta, vg, batches, adam={"beta1": 0.9})
    with pytest.raises(ValueError, match="b2"):
        call(theta, vg, batches, adam={"b2": 1.5})
    with pytest.raises(TypeError, match="callback"):
        call(theta, vg, batches, callback="print")
    with pytest.raises(TypeError, match="pair"):
        call(theta, lambda p, b: 1.0, batches)
    with pytest.raises(TypeError, match="scalar loss"):
        call(theta, lambda p, b: (np.ones(3), p), batches)
    with pytest.raises(ValueError, match="not shaped like params"):
        call(theta, lambda p, b: (1.0, p[:1]), batches)
    with pytest.raises(TypeError, match="task distribution"):
        train.task_batches("sinusoid")
    with pytest.raises(ValueError, match="k_support"):
        train.task_batches(tasks.Sinusoid(), k_support=0)


def test_zero_iterations_return_the_start():
    theta = nets.mlp_init(np.random.default_rng(0), [1, 4, 1])
    out, hist = train.meta_train(theta, baseline.pretrain_value_and_grad, train.task_batches(tasks.Sinusoid()),
                                 rng=np.random.default_rng(0), iterations=0, progress=False)
    assert checks.rel_error(out, theta) == 0.0 and hist.loss == []


# --- checkpoints ------------------------------------------------------------------------------------

def test_checkpoint_roundtrip_and_no_silent_overwrite(tmp_path):
    theta, hist = _sinusoid_run(0, iters=10)
    p = tmp_path / "ck.npz"
    train.save_checkpoint(p, theta, {"alpha": 0.01, "method": "maml"}, hist)
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        train.save_checkpoint(p, nets.mlp_init(np.random.default_rng(5), [1, 10, 10, 1]), {}, hist)
    assert p.read_bytes() == before
    t2, hp, h2 = train.load_checkpoint(p)
    assert isinstance(t2, list) and all(isinstance(layer, tuple) and len(layer) == 2 for layer in t2)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(tree.leaves(theta), tree.leaves(t2)))
    assert hp["alpha"] == 0.01 and h2["loss"] == hist.loss
    train.save_checkpoint(p, nets.mlp_init(np.random.default_rng(5), [1, 10, 10, 1]), {}, overwrite=True)
    assert checks.rel_error(train.load_checkpoint(p)[0], theta) > 0
    with pytest.raises(ValueError, match=".npz"):
        train.save_checkpoint(tmp_path / "x.pkl", theta)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an mlcourse checkpoint"):
        train.load_checkpoint(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="train one first"):
        train.load_checkpoint(tmp_path / "missing.npz")


def test_checkpoint_of_a_nested_container(tmp_path):
    params = {"theta": [(np.ones((2, 3), np.float32), np.zeros(3, np.float32))],
              "alpha": ({"w": np.full((2, 3), 0.01)}, np.float64(0.5)), "steps": [np.arange(3)]}
    p = tmp_path / "nested.npz"
    assert train.save_checkpoint(p, params, {"method": "meta-sgd"}) == str(p)
    back, hp, hist = train.load_checkpoint(p)
    assert list(back) == ["theta", "alpha", "steps"] and hp == {"method": "meta-sgd"} and hist == {}
    assert isinstance(back["theta"], list) and isinstance(back["theta"][0], tuple)
    assert isinstance(back["alpha"], tuple) and list(back["alpha"][0]) == ["w"]
    assert all(np.array_equal(a, b) and np.asarray(a).dtype == b.dtype
               for a, b in zip(tree.leaves(params), tree.leaves(back)))
    before = p.read_bytes()
    with pytest.raises(FileExistsError):
        train.save_checkpoint(p, {"other": np.zeros(1)})
    assert p.read_bytes() == before
    with pytest.raises(TypeError, match="string keys"):
        train.save_checkpoint(tmp_path / "k.npz", {1: np.zeros(1)})
    with pytest.raises(TypeError, match="numeric arrays"):
        train.save_checkpoint(tmp_path / "o.npz", [np.zeros(1), "text"])
    assert not (tmp_path / "k.npz").exists() and not (tmp_path / "o.npz").exists()


def test_checkpoints_in_the_earlier_layout_still_load(tmp_path):
    """The MLP-only layout (W0, b0, ..., num_layers) of the shipped checkpoints."""
    import json
    W0, b0, W1, b1 = np.ones((1, 3), np.float32), np.zeros(3, np.float32), np.full((3, 1), 2.0, np.float32), np.ones(1)
    p = tmp_path / "old.npz"
    meta = {"num_layers": 2, "hparams": {"alpha": 0.01}, "history": {"loss": [1.0]}}
    np.savez(p, W0=W0, b0=b0, W1=W1, b1=b1, meta_json=np.array(json.dumps(meta)))
    theta, hp, hist = train.load_checkpoint(p)
    assert isinstance(theta, list) and len(theta) == 2 and isinstance(theta[0], tuple)
    assert all(np.array_equal(a, b) for a, b in zip(tree.leaves(theta), [W0, b0, W1, b1]))
    assert hp == {"alpha": 0.01} and hist == {"loss": [1.0]}
    from mlcourse.experiments import shipped
    shipped_theta, hp, _ = train.load_checkpoint(f"{shipped.path('sinusoid')}/maml.npz")
    assert [W.shape for W, _ in shipped_theta] == [(1, 40), (40, 40), (40, 1)] and hp["method"] == "maml"


# --- meta-test ------------------------------------------------------------------------------------

def test_evaluate_reports_means_and_intervals():
    theta, _ = _sinusoid_run(0, iters=5)
    r = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng(0), num_tasks=30, k_shot=5,
                       steps=(0, 1, 3), chunk=7)
    assert r["steps"] == [0, 1, 3] and len(r["mse"]) == 3 and all(c > 0 for c in r["ci95"])


def test_support_and_query_losses_match_evaluate():
    theta, _ = _sinusoid_run(0, iters=20)
    s, q = train.support_and_query_losses(theta, tasks.Sinusoid(), rng=np.random.default_rng(3), num_tasks=25,
                                          k_shot=5, steps=(0, 2), chunk=10)
    r = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng(3), num_tasks=25, k_shot=5,
                       steps=(0, 2), chunk=10)
    assert s.shape == q.shape == (2, 25)
    np.testing.assert_allclose(q.mean(axis=1), r["mse"], rtol=1e-6)
    assert s[1].mean() < s[0].mean()  # adapting on the support set lowers the support loss
