"""mlcourse.directions: cosines and norms of the MAML / FOMAML / Reptile directions."""
import numpy as np
import pytest
from tolerances import EXACT

from mlcourse import checks, directions, maml, nets, tasks, tree


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
    assert s["norm_dropped"] == pytest.approx(tree.norm(hvp_term), rel=EXACT)
    assert s["norm_maml"] == pytest.approx(tree.norm(c["maml"]), rel=EXACT)


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


def test_probe_noise_is_the_same_direction_on_two_batches(setup):
    theta, batch = setup
    other = tasks.Sinusoid().sample(np.random.default_rng(11), num_tasks=4, k_support=5, k_query=6)
    d_a, d_b = directions.directions(theta, batch, 0.05), directions.directions(theta, other, 0.05)
    noise = directions.probe_noise(d_a, d_b)
    assert noise["cos_maml_probes"] == pytest.approx(directions.cosine(maml.maml_grad(theta, batch, 0.05, 1),
                                                                       maml.maml_grad(theta, other, 0.05, 1)), abs=EXACT)
    assert noise["cos_fomaml_probes"] == pytest.approx(directions.cosine(d_a["maml"], d_b["fomaml"]), abs=EXACT)
    assert noise["cos_maml_probes"] < 1 - 1e-3            # a different batch turns the direction
    same = directions.probe_noise(d_a, d_a)               # the same batch twice: no noise at all
    assert same["cos_maml_probes"] == pytest.approx(1.0, abs=EXACT)
    assert same["cos_fomaml_probes"] == pytest.approx(directions.compare_directions(theta, batch, 0.05)["cos_fomaml"],
                                                      abs=EXACT)
    with pytest.raises(TypeError, match="directions"):
        directions.probe_noise(d_a, d_b["maml"])
