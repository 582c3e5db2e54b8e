"""mlcourse.compare: cosines and norms of the MAML / FOMAML / Reptile directions, the trace, the cost table."""
import numpy as np
import pytest

from mlcourse import checks, directions, maml, nets, tasks, train, tree
from mlcourse.experiments import direction_trace, shipped, speed

EXACT = 1e-12      # identities that hold up to rounding in float64
IDENTITY = 1e-8    # MAML = FOMAML - alpha * HVP through two different code paths


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(3)
    theta = nets.mlp_init(rng, [1, 8, 8, 1])
    batch = tasks.Sinusoid().sample(rng, num_tasks=4, k_support=5, k_query=6)
    return theta, batch


def test_cosine_of_simple_vectors():
    a = [(np.array([[1.0, 0.0]]), np.array([0.0, 0.0]))]
    b = [(np.array([[0.0, 2.0]]), np.array([0.0, 0.0]))]
    assert directions.cosine(a, a) == pytest.approx(1.0, abs=EXACT)
    assert directions.cosine(a, b) == pytest.approx(0.0, abs=EXACT)
    assert directions.cosine(a, tree.scale(-3.0, a)) == pytest.approx(-1.0, abs=EXACT)
    assert directions.cosine(a, tree.zeros_like(a)) == 0.0


def test_alpha_zero_makes_maml_equal_fomaml(setup):
    theta, batch = setup
    d = directions.directions(theta, batch, alpha=0.0, inner_steps=1)
    assert checks.rel_error(d["maml"], d["fomaml"]) < EXACT
    s = directions.compare_directions(theta, batch, alpha=0.0)
    assert s["cos_fomaml"] == pytest.approx(1.0, abs=EXACT)
    assert s["norm_dropped"] < EXACT


def test_dropped_term_is_alpha_times_hvp(setup):
    theta, batch = setup
    alpha = 0.05
    c = checks.check_maml_vs_fomaml_hvp(theta, batch, alpha=alpha)
    s = directions.compare_directions(theta, batch, alpha=alpha)
    hvp_term = tree.sub(c["fomaml"], c["fomaml_minus_alpha_hvp"])   # alpha * mean H_s grad L_q
    assert s["norm_dropped"] == pytest.approx(tree.norm(hvp_term), rel=IDENTITY)
    assert s["norm_maml"] == pytest.approx(tree.norm(c["maml"]), rel=IDENTITY)


def test_reptile_one_step_is_mean_support_gradient(setup):
    theta, batch = setup
    d = directions.directions(theta, batch, alpha=0.01, inner_steps=1)
    joint = tasks.batch_from_arrays(batch.x_support, batch.y_support, batch.x_support, batch.y_support)
    g_support = maml.fomaml_grad(theta, joint, alpha=0.01, inner_steps=0)
    assert checks.rel_error(d["reptile"], g_support) < 1e-10


def test_alpha_sweep_shapes(setup):
    theta, batch = setup
    out = directions.alpha_sweep(theta, batch, [0.0, 0.01, 0.1])
    assert set(out) >= {"cos_fomaml", "cos_reptile", "norm_maml"}
    assert out["cos_fomaml"].shape == (3,)
    assert out["cos_fomaml"][0] == pytest.approx(1.0, abs=EXACT)


def test_bad_arguments_say_what_to_change(setup):
    theta, batch = setup
    with pytest.raises(ValueError, match="alpha"):
        directions.directions(theta, batch, alpha=-1.0)
    with pytest.raises(ValueError, match="inner_steps"):
        directions.directions(theta, batch, inner_steps=0)
    with pytest.raises(ValueError, match="unknown setting"):
        direction_trace.direction_trace(iterations=2, nonsense=1)


def test_direction_trace_follows_the_same_training_run():
    kw = dict(iterations=30, num_records=6, probe_tasks=5, hidden=(8, 8))
    tr = direction_trace.direction_trace(**kw)
    R = len(tr["iterations"])
    assert tr["iterations"][0] == 0 and tr["iterations"][-1] == 30
    assert tr["theta_flat"].shape == (R, nets.num_params(nets.mlp_init(np.random.default_rng(0), [1, 8, 8, 1])))
    for m in (1, 5):
        for k in ("cos_fomaml", "cos_reptile", "norm_maml", "norm_fomaml", "norm_reptile"):
            assert tr[f"{k}_{m}"].shape == (R,)
            assert np.all(np.isfinite(tr[f"{k}_{m}"]))
        assert np.all(np.abs(tr[f"cos_fomaml_{m}"]) <= 1 + EXACT)
    # recording does not touch the training generator: the last snapshot is plain meta_train's result
    rng = np.random.default_rng([0, 0])
    theta = nets.mlp_init(rng, [1, 8, 8, 1], dtype=np.float32)
    theta, _ = train.meta_train(theta, tasks.Sinusoid(), rng=rng, method="maml_multistep", iterations=30,
                                meta_batch_size=25, k_support=5, k_query=10, alpha=0.01, inner_steps=2, beta=1e-3,
                                progress=False)
    np.testing.assert_array_equal(tr["theta_flat"][-1], tree.flatten(theta)[0])
    tr2 = direction_trace.direction_trace(**kw)
    np.testing.assert_array_equal(tr["cos_fomaml_1"], tr2["cos_fomaml_1"])


def test_cost_table_rows():
    rows = speed.cost_table(np.random.default_rng(0), inner_steps=(1, 2), backends=("numpy", "autograd"),
                              meta_batch_size=3, repeats=1)
    methods = {(r["backend"], r["method"], r["inner_steps"]) for r in rows}
    assert ("numpy", "MAML (2nd order)", 2) in methods and ("autograd", "FOMAML", 1) in methods
    assert ("numpy", "Reptile", 1) in methods
    assert all(r["ms"] > 0 and r["peak_kib"] > 0 for r in rows)
    # the unrolled graph: exact MAML on the autograd path needs more memory with more steps
    ag = {r["inner_steps"]: r["peak_kib"] for r in rows if r["backend"] == "autograd" and r["method"].startswith("MAML")}
    assert ag[2] > ag[1]


def test_make_results_writes_a_loadable_file(tmp_path):
    path = direction_trace.make_results(tmp_path, iterations=5, num_records=3, probe_tasks=3, hidden=(4,))
    tr = shipped.load_directions(path)
    assert tr["config"]["iterations"] == "5"
    assert tr["theta_flat"].shape[0] == len(tr["iterations"])
