import numpy as np
import pytest

from mlcourse import checks, maml, nets, reptile, tasks, tree

from tolerances import EXACT


def _setup():
    rng = np.random.default_rng(0)
    return nets.mlp_init(rng, [1, 8, 1]), tasks.Sinusoid().sample(rng, 4, 5, 5)


def test_reptile_update_interpolates_toward_mean_adapted_params():
    theta, batch = _setup()
    tp = maml.adapt(theta, batch.x_support, batch.y_support, 0.02, 3)
    mean_tp = tree.task_mean(tp)
    assert checks.rel_error(reptile.reptile_update(theta, batch, 0.02, 3, epsilon=1.0), mean_tp) < EXACT
    half = reptile.reptile_update(theta, batch, 0.02, 3, epsilon=0.5)
    assert checks.rel_error(half, tree.interpolate(theta, mean_tp, 0.5)) < EXACT
    assert checks.rel_error(reptile.reptile_update(theta, batch, 0.02, 3, epsilon=0.0), theta) == 0.0


def test_one_step_reptile_is_the_mean_support_gradient():
    theta, batch = _setup()
    _, d = reptile.reptile_pseudo_grad(theta, batch, 0.01, 1)
    g = maml.fomaml_grad(theta, tasks.TaskBatch(batch.x_support, batch.y_support, batch.x_support,
                                                batch.y_support), 0.01, 0)
    assert checks.rel_error(d, g) < EXACT


def test_bad_epsilon():
    theta, batch = _setup()
    with pytest.raises(ValueError, match="epsilon"):
        reptile.reptile_update(theta, batch, epsilon=-1)


def test_pseudo_grad_value_is_the_meta_loss_and_its_scale_matches_a_gradient():
    theta, batch = _setup()
    value, d = reptile.reptile_pseudo_grad(theta, batch, 0.02, 3)
    assert abs(value - maml.maml_loss(theta, batch, 0.02, 3)) < EXACT   # the query loss at the same theta'
    mean_tp = tree.task_mean(maml.adapt(theta, batch.x_support, batch.y_support, 0.02, 3))
    assert checks.rel_error(d, tree.scale(1 / (0.02 * 3), tree.sub(theta, mean_tp))) < EXACT
