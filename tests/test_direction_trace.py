"""mlcourse.experiments.direction_trace: the directions along the main job's MAML run."""
import functools

import numpy as np
import pytest
from tolerances import EXACT

from mlcourse import maml, nets, tasks, train, tree
from mlcourse.experiments import direction_trace, shipped


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
    theta, _ = train.meta_train(theta, functools.partial(maml.multistep_value_and_grad, alpha=0.01, inner_steps=2),
                                train.task_batches(tasks.Sinusoid(), meta_batch_size=25, k_support=5, k_query=10,
                                                   dtype=np.float32),
                                rng=rng, iterations=30, schedule=train.constant(1e-3), progress=False)
    np.testing.assert_array_equal(tr["theta_flat"][-1], tree.flatten(theta)[0])
    tr2 = direction_trace.direction_trace(**kw)
    np.testing.assert_array_equal(tr["cos_fomaml_1"], tr2["cos_fomaml_1"])


def test_make_results_writes_a_loadable_file(tmp_path):
    path = direction_trace.make_results(tmp_path, iterations=5, num_records=3, probe_tasks=3, hidden=(4,))
    tr = shipped.load_directions(path)
    assert tr["config"]["iterations"] == "5"
    assert tr["theta_flat"].shape[0] == len(tr["iterations"])


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="unknown setting"):
        direction_trace.direction_trace(iterations=2, nonsense=1)
