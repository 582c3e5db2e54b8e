"""mlcourse.experiments.direction_trace: the directions along the main job's MAML run."""
import functools

import numpy as np
import pytest
from tolerances import EXACT

from mlcourse import directions, maml, nets, tasks, train, tree
from mlcourse.experiments import direction_trace, shipped


def test_direction_trace_follows_the_same_training_run():
    kw = dict(iterations=30, num_records=6, probe_tasks=5, hidden=(8, 8))
    tr = direction_trace.direction_trace(**kw)
    R = len(tr["iterations"])
    assert tr["iterations"][0] == 0 and tr["iterations"][-1] == 30
    assert tr["theta_flat"].shape == (R, nets.num_params(nets.mlp_init(np.random.default_rng(0), [1, 8, 8, 1])))
    for m in (1, 5):
        for k in ("cos_fomaml", "cos_reptile", "norm_maml", "norm_fomaml", "norm_reptile", "cos_maml_probes",
                  "cos_fomaml_probes"):
            assert tr[f"{k}_{m}"].shape == (R,)
            assert np.all(np.isfinite(tr[f"{k}_{m}"]))
        assert np.all(np.abs(tr[f"cos_fomaml_{m}"]) <= 1 + EXACT)
    # recording does not touch the training generator: the last snapshot is plain meta_train's result,
    # with the main job's objective and sizes (direction_trace.TRACE_DEFAULTS follows sinusoid_job.DEFAULTS)
    cfg = direction_trace.TRACE_DEFAULTS
    objective = maml.multistep_value_and_grad if cfg["maml_loss"] == "multistep" else maml.maml_value_and_grad
    rng = np.random.default_rng([cfg["seed"], 0])
    theta = nets.mlp_init(rng, [1, 8, 8, 1], dtype=np.float32)
    theta, _ = train.meta_train(theta, functools.partial(objective, alpha=cfg["alpha"], inner_steps=cfg["inner_steps"]),
                                train.task_batches(tasks.Sinusoid(), meta_batch_size=cfg["meta_batch_size"],
                                                   k_support=cfg["k_support"], k_query=cfg["k_query"], dtype=np.float32),
                                rng=rng, iterations=30, schedule=train.constant(cfg["beta"]), progress=False)
    np.testing.assert_array_equal(tr["theta_flat"][-1], tree.flatten(theta)[0])
    tr2 = direction_trace.direction_trace(**kw)
    np.testing.assert_array_equal(tr["cos_fomaml_1"], tr2["cos_fomaml_1"])


def test_noise_baseline_uses_a_second_independent_probe_batch():
    kw = dict(iterations=3, num_records=2, probe_tasks=4, hidden=(6,), probe_steps=(1,))
    tr = direction_trace.direction_trace(**kw)
    a, b = direction_trace.probe_batch(0, **kw), direction_trace.probe_batch(1, **kw)
    assert a.x_support.shape == b.x_support.shape and not np.allclose(a.x_support, b.x_support)
    np.testing.assert_array_equal(direction_trace.probe_batch(**kw).x_support, a.x_support)   # the default is batch 0
    theta = shipped.theta_from_flat(tr["theta_flat"][-1], [1, 6, 1], dtype=np.float64)
    alpha = direction_trace.TRACE_DEFAULTS["alpha"]
    expected = directions.probe_noise(directions.directions(theta, a, alpha, 1), directions.directions(theta, b, alpha, 1))
    assert tr["cos_maml_probes_1"][-1] == pytest.approx(expected["cos_maml_probes"], abs=1e-6)
    assert tr["cos_fomaml_probes_1"][-1] == pytest.approx(expected["cos_fomaml_probes"], abs=1e-6)
    with pytest.raises(ValueError, match="which"):
        direction_trace.probe_batch(2)


def test_make_results_writes_a_loadable_file(tmp_path):
    path = direction_trace.make_results(tmp_path, iterations=5, num_records=3, probe_tasks=3, hidden=(4,))
    tr = shipped.load_directions(path)
    assert tr["config"]["iterations"] == "5"
    assert tr["theta_flat"].shape[0] == len(tr["iterations"])


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="unknown setting"):
        direction_trace.direction_trace(iterations=2, nonsense=1)
