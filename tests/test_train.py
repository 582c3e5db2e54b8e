import numpy as np
import pytest

from mlcourse import checks, nets, tasks, train


def _run(seed, iters=30, method="maml"):
    rng = np.random.default_rng(seed)
    theta = nets.mlp_init(rng, [1, 10, 10, 1], dtype=np.float32)
    return train.meta_train(theta, tasks.Sinusoid(), rng=rng, method=method, iterations=iters,
                            meta_batch_size=5, k_support=5, k_query=5, log_every=5, progress=False)


def test_deterministic_given_seed():
    (t1, h1), (t2, h2) = _run(0), _run(0)
    assert checks.rel_error(t1, t2) == 0.0 and h1.loss == h2.loss
    t3, _ = _run(1)
    assert checks.rel_error(t1, t3) > 0


@pytest.mark.parametrize("method", train.METHODS)
def test_every_method_lowers_the_loss(method):
    _, h = _run(0, iters=300, method=method)
    assert np.mean(h.loss[-10:]) < np.mean(h.loss[:3])


def test_adam_minimises_a_quadratic():
    opt, theta = train.Adam(beta=0.1), [np.array([3.0, -2.0])]
    for _ in range(500):
        theta = opt.step(theta, [2 * theta[0]])
    assert np.max(np.abs(theta[0])) < 1e-2


def test_nan_stops_with_the_iteration_named():
    rng = np.random.default_rng(0)
    theta = nets.mlp_init(rng, [1, 10, 1])

    def explode(theta, batch, alpha, steps):
        return float("nan"), theta
    with pytest.raises(FloatingPointError, match="iteration 1"):
        train.meta_train(theta, tasks.Sinusoid(), rng=rng, method=explode, iterations=3, progress=False)
    with pytest.raises(FloatingPointError, match="iteration"):  # a real divergence: huge inner step
        train.meta_train(theta, tasks.Sinusoid(), rng=rng, alpha=50.0, inner_steps=5, iterations=20,
                         progress=False)


def test_checkpoint_roundtrip_and_no_silent_overwrite(tmp_path):
    theta, hist = _run(0, iters=10)
    p = tmp_path / "ck.npz"
    train.save_checkpoint(p, theta, {"alpha": 0.01, "method": "maml"}, hist)
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        train.save_checkpoint(p, theta, {}, hist)
    assert p.read_bytes() == before
    t2, hp, h2 = train.load_checkpoint(p)
    assert checks.rel_error(theta, t2) == 0.0 and hp["alpha"] == 0.01 and h2["loss"] == hist.loss
    train.save_checkpoint(p, nets.mlp_init(np.random.default_rng(5), [1, 10, 10, 1]), {}, overwrite=True)
    assert checks.rel_error(train.load_checkpoint(p)[0], theta) > 0
    with pytest.raises(ValueError, match=".npz"):
        train.save_checkpoint(tmp_path / "x.pkl", theta)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an mlcourse checkpoint"):
        train.load_checkpoint(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="train one first"):
        train.load_checkpoint(tmp_path / "missing.npz")


def test_evaluate_reports_means_and_intervals():
    theta, _ = _run(0, iters=5)
    r = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng(0), num_tasks=30, k_shot=5,
                       steps=(0, 1, 3), chunk=7)
    assert r["steps"] == [0, 1, 3] and len(r["mse"]) == 3 and all(c > 0 for c in r["ci95"])


def test_bad_training_arguments():
    theta = nets.mlp_init(np.random.default_rng(0), [1, 4, 1])
    with pytest.raises(ValueError, match="method"):
        train.meta_train(theta, tasks.Sinusoid(), rng=np.random.default_rng(0), method="maml2", progress=False)
    with pytest.raises(ValueError, match="beta"):
        train.meta_train(theta, tasks.Sinusoid(), rng=np.random.default_rng(0), beta=-1, progress=False)


def test_support_and_query_losses_match_evaluate():
    theta, _ = _run(0, iters=20)
    s, q = train.support_and_query_losses(theta, tasks.Sinusoid(), rng=np.random.default_rng(3), num_tasks=25,
                                          k_shot=5, steps=(0, 2), chunk=10)
    r = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng(3), num_tasks=25, k_shot=5,
                       steps=(0, 2), chunk=10)
    assert s.shape == q.shape == (2, 25)
    np.testing.assert_allclose(q.mean(axis=1), r["mse"], rtol=1e-6)
    assert s[1].mean() < s[0].mean()  # adapting on the support set lowers the support loss
