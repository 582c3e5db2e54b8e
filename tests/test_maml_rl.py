"""MAML for RL: the meta-gradient (terms stated in maml_rl's docstring) against central finite
differences of the same Monte-Carlo objective with the sampled trajectories fixed; the first-order
variant; bad inputs."""
import functools
import json

import numpy as np
import pytest

from mlcourse import train, tree
from mlcourse.rl import maml_rl, policy
from tolerances import EXACT, FD_TOL


def _small(seed=0, inner_steps=1, horizon=12):
    rng = np.random.default_rng(seed)
    theta = policy.init(rng, (2, 6, 5, 2), log_std=-0.3)
    theta["log_std"] = np.array([-0.2, -0.4])
    # non-zero biases: with zero biases every first state (the origin) sits on the ReLU kinks
    theta["mlp"] = [(W, 0.1 * rng.standard_normal(b.shape)) for W, b in theta["mlp"]]
    batch = maml_rl.meta_batches(num_tasks=3, num_trajectories=4, inner_steps=inner_steps, horizon=horizon)(rng)
    return rng, theta, batch


def _fd_directional(f, theta, v, eps=1e-5):
    return (f(tree.add(theta, tree.scale(eps, v))) - f(tree.sub(theta, tree.scale(eps, v)))) / (2 * eps)


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_second_order_meta_gradient_matches_central_differences(inner_steps):
    rng, theta, batch = _small(1, inner_steps)
    phases, _ = maml_rl.sample_phases(theta, batch, alpha=0.1, inner_steps=inner_steps)
    F = functools.partial(maml_rl.meta_objective, phases=phases, alpha=0.1)
    _, g = maml_rl.maml_rl_value_and_grad(theta, batch, alpha=0.1, inner_steps=inner_steps)
    for _ in range(3):
        v = tree.tree_map(lambda a: rng.standard_normal(a.shape), theta)
        fd, exact = _fd_directional(F, theta, v), tree.dot(g, v)
        assert abs(exact - fd) <= FD_TOL * max(1.0, abs(fd)), (exact, fd)


def test_second_order_differs_from_first_order_by_the_hessian_terms():
    _, theta, batch = _small(2)
    _, g2 = maml_rl.maml_rl_value_and_grad(theta, batch, alpha=0.1)
    _, g1 = maml_rl.maml_rl_value_and_grad(theta, batch, alpha=0.1, first_order=True)
    d = tree.norm(tree.sub(g2, g1)) / tree.norm(g1)
    assert d > 1e-3                      # the Hessian term is not negligible at alpha = 0.1
    _, g0 = maml_rl.maml_rl_value_and_grad(theta, batch, alpha=0.0)
    _, g0_fo = maml_rl.maml_rl_value_and_grad(theta, batch, alpha=0.0, first_order=True)
    assert tree.norm(tree.sub(g0, g0_fo)) <= EXACT * tree.norm(g0)   # alpha = 0: both are plain REINFORCE


def test_first_order_gradient_is_the_outer_gradient_at_the_adapted_parameters():
    rng, theta, batch = _small(3)
    phases, theta_m = maml_rl.sample_phases(theta, batch, alpha=0.1)
    _, g = maml_rl.maml_rl_value_and_grad(theta, batch, alpha=0.1, first_order=True)
    # the same direction v added to every task's adapted parameters
    from mlcourse.rl.policy_gradient import surrogate_loss
    ro, adv = phases[-1]
    F = lambda shift: np.mean(surrogate_loss(tree.add(theta_m, tree.tile_tasks(shift, 3)), ro, adv))
    zero = tree.zeros_like(theta)
    for _ in range(2):
        v = tree.tree_map(lambda a: rng.standard_normal(a.shape), theta)
        fd, exact = _fd_directional(F, zero, v), tree.dot(g, v)
        assert abs(exact - fd) <= FD_TOL * max(1.0, abs(fd))
    # and it is also the gradient of the objective with the inner gradients stopped
    from autograd import grad
    g_stop = grad(maml_rl.meta_objective)(theta, phases, 0.1, True)
    assert tree.norm(tree.sub(g, g_stop)) <= EXACT * tree.norm(g)


def test_loss_is_minus_the_average_return_after_adaptation():
    _, theta, batch = _small(4)
    phases, _ = maml_rl.sample_phases(theta, batch)
    loss, _ = maml_rl.maml_rl_value_and_grad(theta, batch)
    assert loss == pytest.approx(-phases[-1][0].rewards.sum(axis=-1).mean())


def test_same_batch_same_numbers_and_meta_train_runs():
    rng, theta, batch = _small(5)
    a = maml_rl.maml_rl_value_and_grad(theta, batch)
    b = maml_rl.maml_rl_value_and_grad(theta, batch)
    assert a[0] == b[0] and tree.norm(tree.sub(a[1], b[1])) == 0.0
    vg = functools.partial(maml_rl.maml_rl_value_and_grad, alpha=0.1)
    sample = maml_rl.meta_batches(num_tasks=2, num_trajectories=3, horizon=10)
    th1, h1 = train.meta_train(theta, vg, sample, rng=np.random.default_rng(0), iterations=3, progress=False, log_every=1)
    th2, h2 = train.meta_train(theta, vg, sample, rng=np.random.default_rng(0), iterations=3, progress=False, log_every=1)
    assert h1.loss == h2.loss and tree.norm(tree.sub(th1, th2)) == 0.0


def test_adaptation_improves_on_average_for_a_trained_direction():
    # one policy-gradient step from the origin-seeking policy moves the return towards the goal
    rng = np.random.default_rng(6)
    theta = policy.init(rng, (2, 8, 8, 2))
    R = maml_rl.adaptation_returns(theta, np.array([[0.4, 0.4], [-0.4, 0.3]]), rng, alpha=0.1, steps=2,
                                   num_trajectories=10)
    assert R.shape == (3, 2) and np.all(np.isfinite(R))


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -0.1])
def test_bad_step_size_is_a_clear_error(alpha):
    _, theta, batch = _small(7)
    with pytest.raises(ValueError, match="alpha must be finite and >= 0"):
        maml_rl.maml_rl_value_and_grad(theta, batch, alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        maml_rl.adapt(theta, np.zeros((1, 2)), np.random.default_rng(0), alpha=alpha)


def test_goal_outside_the_arena_is_a_clear_error():
    _, theta, _ = _small(8)
    with pytest.raises(ValueError, match=r"outside the arena .*move it inside"):
        maml_rl.adapt(theta, np.array([[0.2, 0.1], [0.7, 0.0]]), np.random.default_rng(0))


def test_policy_of_the_wrong_shape_is_a_clear_error(tmp_path):
    rng, theta, batch = _small(9)
    with pytest.raises(ValueError, match="sizes must start and end with 2"):
        policy.init(rng, (3, 5, 2))
    bad = {"mlp": [(np.zeros((3, 4)), np.zeros(4)), (np.zeros((4, 2)), np.zeros(2))], "log_std": np.zeros(2)}
    with pytest.raises(ValueError, match="layer 0 has W"):
        maml_rl.maml_rl_value_and_grad(bad, batch)
    with pytest.raises(ValueError, match="keys"):
        maml_rl.maml_rl_value_and_grad([(np.zeros((2, 2)), np.zeros(2))], batch)


def test_checkpoint_of_the_wrong_shape_is_a_clear_error(tmp_path):
    from mlcourse import nets
    from mlcourse.experiments import navigation_job
    path = str(tmp_path / "sine.npz")
    train.save_checkpoint(path, nets.mlp_init(np.random.default_rng(0), [1, 40, 40, 1]))   # a sinusoid MLP
    with pytest.raises(ValueError, match="does not hold a navigation policy of the right shape"):
        navigation_job.load_policy(path)
    good = str(tmp_path / "nav.npz")
    train.save_checkpoint(good, policy.init(np.random.default_rng(0), (2, 8, 8, 2)))
    with pytest.raises(ValueError, match="hidden sizes"):
        navigation_job.load_policy(good, {"hidden": [100, 100]})
    theta, _ = navigation_job.load_policy(good, {"hidden": [8, 8]})
    assert theta["mlp"][0][0].shape == (2, 8)


def test_job_refuses_to_overwrite_and_checks_settings_before_training(tmp_path):
    from mlcourse.experiments import navigation_job
    small = dict(iterations=1, pretrain_iterations=1, meta_batch_size=2, num_trajectories=2, hidden=(4, 4),
                 eval_goals=2, eval_trajectories=2, eval_steps=1)
    s = navigation_job.run(str(tmp_path), progress=False, workers=1, log=lambda *a: None, **small)
    assert set(s["results"]) == {"maml", "pretrained", "random"} and s["results"]["maml"]["steps"] == [0, 1]
    with pytest.raises(FileExistsError, match="--overwrite"):
        navigation_job.run(str(tmp_path), progress=False, workers=1, **small)
    with pytest.raises(ValueError, match="alpha"):
        navigation_job.run(str(tmp_path / "x"), progress=False, workers=1, **dict(small, alpha=-1.0))
    loaded = navigation_job.load_shipped(str(tmp_path))
    again = navigation_job.evaluate(loaded["theta"]["maml"], loaded["config"], [1])
    np.testing.assert_allclose(again[:, 0], np.array(s["results"]["maml"]["per_goal"])[:, 1], rtol=1e-5)


def test_seed_runs_are_scored_on_the_main_runs_goals_and_refuse_to_overwrite(tmp_path):
    from mlcourse.experiments import navigation_job
    small = dict(iterations=2, pretrain_iterations=1, meta_batch_size=2, num_trajectories=2, hidden=(4, 4),
                 eval_goals=3, eval_trajectories=2, eval_steps=2)
    quiet = dict(log=lambda *a: None)
    main = navigation_job.run(str(tmp_path), progress=False, workers=1, **quiet, **small)
    pooled = navigation_job.run_seeds(str(tmp_path), [1, 2], workers=2, **quiet, **small)
    assert pooled["eval_seed"] == 0 and pooled["seeds"] == [1, 2] and set(pooled["runs"]) == {"1", "2"}
    cfg = navigation_job.load_shipped(str(tmp_path))["config"]
    for s in (1, 2):
        theta, hp = navigation_job.load_policy(str(tmp_path / f"maml_seed{s}.npz"))
        assert hp["seed"] == s
        again = navigation_job.evaluate(theta, cfg, method="maml")     # the main run's goals and noise
        np.testing.assert_allclose(again, pooled["runs"][str(s)]["per_goal"], rtol=1e-5)
    # one BLAS thread in a worker process or two in this one: the same trained policy
    alone = navigation_job.run_seeds(str(tmp_path / "alone"), [1], workers=1, **quiet, **small)
    np.testing.assert_array_equal(alone["runs"]["1"]["per_goal"], pooled["runs"]["1"]["per_goal"])
    R, order = navigation_job.across_seeds(main, pooled)
    assert order == [0, 1, 2] and R.shape == (3, 3) and R[0].tolist() == main["results"]["maml"]["return"]
    assert "seed 2" in navigation_job.format_seeds(main, pooled)
    assert navigation_job.load_shipped(str(tmp_path))["seeds"] == json.loads((tmp_path / "seeds.json").read_text())
    with pytest.raises(FileExistsError, match="maml_seed1.npz exists; pass --overwrite"):
        navigation_job.run_seeds(str(tmp_path), [1], workers=1, **quiet, **small)
    for bad in ([], [0], [3, 3]):
        with pytest.raises(ValueError, match="distinct and differ from the main run's seed 0"):
            navigation_job.run_seeds(str(tmp_path / "x"), bad, workers=1, **quiet, **small)
    with pytest.raises(ValueError, match="other goals"):
        navigation_job.across_seeds(dict(main, config=dict(main["config"], seed=5)), pooled)


def test_train_navigation_checks_its_seeds_before_training(tmp_path, capsys):
    from mlcourse import cli
    for bad, says in (("1,x", "comma-separated integers"), ("0,1", "differ from --seed 0"), ("2,2", "distinct")):
        assert cli.main(["train", "navigation", "--out", str(tmp_path), "--seeds", bad, "--no-progress"]) == 1
        assert says in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_step_sizes_per_step_and_their_errors():
    assert maml_rl.step_sizes(0.1, 3) == [0.1, 0.1, 0.1]
    assert maml_rl.step_sizes((0.1, 0.05), 3) == [0.1, 0.05, 0.05]
    assert maml_rl.step_sizes([0.1, 0.05], 0) == []
    with pytest.raises(ValueError, match="non-empty sequence"):
        maml_rl.step_sizes([], 2)
    with pytest.raises(ValueError, match="alpha must be finite"):
        maml_rl.step_sizes([0.1, float("nan")], 2)


def test_log_std_learns_at_its_own_rate_and_scale_one_is_the_plain_method():
    from mlcourse.experiments import navigation_job
    _, theta, batch = _small(10)
    vg = functools.partial(maml_rl.maml_rl_value_and_grad, alpha=0.1)
    same, to_phi, to_theta = navigation_job.scaled_log_std(vg, 1.0)
    assert same is vg and to_phi(theta) is theta
    vg10, to_phi, to_theta = navigation_job.scaled_log_std(vg, 10.0)
    phi = to_phi(theta)
    np.testing.assert_allclose(phi["log_std"], theta["log_std"] / 10)
    assert tree.norm(tree.sub(to_theta(phi), theta)) <= 1e-15
    (l1, g1), (l10, g10) = vg(theta, batch), vg10(phi, batch)
    assert l1 == l10
    np.testing.assert_allclose(g10["log_std"], 10 * g1["log_std"])        # d/dphi = c d/dlog_std
    for (a, b), (c, d) in zip(g1["mlp"], g10["mlp"]):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # one Adam step moves log_std ten times further
    s1 = train.adam_update(train.adam_init(theta), theta, g1, 1e-3)[0]
    s10 = to_theta(train.adam_update(train.adam_init(phi), phi, g10, 1e-3)[0])
    np.testing.assert_allclose(s10["log_std"] - theta["log_std"], 10 * (s1["log_std"] - theta["log_std"]), rtol=1e-4)


def test_each_method_is_evaluated_with_its_own_steps():
    from mlcourse.experiments import navigation_job
    cfg = dict(navigation_job.DEFAULTS)
    assert navigation_job.eval_alphas(cfg) == {"maml": (0.1, 0.05), "pretrained": 0.5, "random": 0.5}
    assert navigation_job.eval_alpha(dict(cfg, eval_alpha=None), "maml") == cfg["alpha"]
    assert navigation_job.eval_alpha({"alpha": 0.1}, "pretrained") == 0.1      # summaries written before the setting
    with pytest.raises(ValueError, match="--eval-alpha must be comma-separated"):
        navigation_job._step_list("0.1;0.05", "--eval-alpha")
    assert navigation_job._step_list("0.1,0.05", "--eval-alpha") == [0.1, 0.05]
    assert navigation_job._step_list("same", "--eval-alpha") is None
