"""MAML for reinforcement learning on 2D point navigation (MAML paper, section 5.3): train and meta-test.

Setup of Finn, Abbeel & Levine (2017) and its released code: goals uniform in [-0.5, 0.5]^2, horizon
100, a Gaussian MLP policy 2-100-100-2 (ReLU, learned state-independent log std, 1.0 at the start) whose
actions are in normalised units (the environment maps [-1, 1] to velocities in [-0.1, 0.1] and clips),
the linear feature baseline and standardised advantages in the inner surrogate, one inner
policy-gradient step with alpha = 0.1 from 20 trajectories per task, meta-batch 20 tasks.  Meta-test as
the paper's evaluation: 40 new goals, 40 fresh trajectories per step, the average return after 0, 1, 2
and 3 policy-gradient steps; MAML adapts with the paper's step sizes (0.1, then 0.05), the pretrained and
random policies with the released test script's 0.5, the step with which the paper's released baseline
results were computed (``eval_alpha``, ``baseline_eval_alpha``; every method is also scored with 0.5,
``released_step``).

Three methods, scored on the same goals with the same exploration noise:
    maml        meta-trained (maml_rl.maml_rl_value_and_grad, second order by default)
    pretrained  one policy trained on all goals with REINFORCE (policy_gradient.pretrain_value_and_grad)
    random      the random initialisation, fine-tuned the same way

Outer optimiser: Adam on the meta-policy-gradient (the paper used TRPO, a KL-constrained natural
gradient step; Adam through the course's one outer loop train.meta_train, with a cosine-decayed
learning rate and gradient steps normalised per coordinate, keeps each update small in the same
spirit without conjugate gradients and a line search).  Adam moves every coordinate by about beta
per iteration, so the policy's log standard deviation, two numbers, would move as slowly as one
weight; it learns at log_std_beta_scale times beta instead (``scaled_log_std``), as a KL-bounded
step lets it move faster than the weights.

``run`` is what ``mlcourse train navigation`` calls; notebook 08 loads the shipped output with
``mlcourse.experiments.shipped.load("navigation")``.
"""
from __future__ import annotations

import functools
import json
import os
import time

import numpy as np

from .. import train
from .._validate import check_alpha, check_count, check_seed
from ..rl import maml_rl, point_navigation, policy, policy_gradient

__all__ = ["PAPER", "DEFAULTS", "METHODS", "RELEASED_STEP", "run", "evaluate", "eval_alpha", "eval_alphas",
           "eval_goals", "eval_noise",
           "released_step", "format_table", "format_released_step", "load_policy", "add_arguments", "cli",
           "refresh_shipped", "load_shipped", "run_seeds", "across_seeds", "format_seeds", "SHIPPED_SEEDS"]

# Finn, Abbeel & Levine (2017), section 5.3, 2D navigation: average return after 0 / 1 / 2 / 3
# policy-gradient steps on 40 new goals.  MAML from the paper's figure and text; the baselines from
# the results the authors released with their code (rllab maml_examples, icml_point_results).
PAPER = {"steps": [0, 1, 2, 3],
         "maml": [-40.41, -11.68, -3.33, -3.23],
         "pretrained": [-40.81, -19.73, -11.72, -8.47],
         "random": [-82.66, -57.96, -53.84, -46.81],
         "eval_goals": 40, "eval_trajectories": 40, "alpha": 0.1, "outer": "TRPO"}

METHODS = ("maml", "pretrained", "random")

# The inner step size of the paper's released scripts for this task (its text says 0.1): the shipped
# policies are also scored with it, on the first `num_goals` meta-test goals with the same noise.
RELEASED_STEP = {"alpha": 0.5, "num_goals": 40}
METHOD_STREAMS = {"maml": 0, "pretrained": 1, "random": 2}
SHIPPED_SEEDS = (1, 2, 3, 4)   # MAML meta-trained again from these seeds beside the shipped run (seeds.json)

DEFAULTS = dict(
    seed=0,
    iterations=400,           # MAML meta-iterations (Adam steps; the released code of the paper: 100 TRPO steps)
    pretrain_iterations=700,  # REINFORCE iterations of the pretrained baseline
    meta_batch_size=20,       # tasks per meta-batch, as in the paper
    num_trajectories=20,      # trajectories per task for the inner step (and the post-adaptation batch)
    alpha=0.1,                # inner step size, as in the paper (train and test)
    inner_steps=1,            # inner steps during meta-training, as in the paper
    first_order=False,        # True: the first-order variant
    beta=3e-3,                # Adam's outer learning rate, cosine-decayed to 0 over the iterations
    hidden=(100, 100),        # the paper's policy
    gamma=0.99,               # discount of the returns-to-go (the paper's code)
    eval_goals=40,            # new goals at meta-test, as the paper and its released test script
    eval_trajectories=40,     # per adaptation step, as in the paper
    eval_steps=3,
    eval_alpha=(0.1, 0.05),   # MAML's meta-test steps, as the paper's evaluation: 0.1, then 0.05 (None: alpha)
    baseline_eval_alpha=0.5,  # the pretrained and random policies' steps: the released test script's, with which
                              # the paper's released baseline results were computed (None: alpha)
    log_std_beta_scale=3.0,   # MAML's log_std learns at this times beta (1: like the weights); a larger one
                              # lets sigma shrink further, and every later policy-gradient step on the mean
                              # grows as 1 / sigma
    pretrain_log_std_beta_scale=1.0,   # the pretrained policy's log_std: like its weights (its spread stays wide
                                       # enough for the baseline's test step of 0.5)
    dtype="float32",
)


def _check_settings(cfg):
    """Every value the job uses, checked before any training (a bad one fails in seconds)."""
    check_alpha(cfg["alpha"])
    for key in ("eval_alpha", "baseline_eval_alpha"):
        if cfg[key] is not None:
            maml_rl.step_sizes(cfg[key], 1)
    check_alpha(cfg["beta"], "beta")
    for key in ("log_std_beta_scale", "pretrain_log_std_beta_scale"):
        check_alpha(cfg[key], key)
        if cfg[key] == 0:
            raise ValueError(f"{key} must be > 0 (1: log_std learns at beta like the weights), e.g. 10.")
    if cfg["beta"] == 0:
        raise ValueError("beta must be > 0 (Adam's outer learning rate), for example --beta 0.003.")
    for key, low in (("iterations", 0), ("pretrain_iterations", 0), ("meta_batch_size", 1), ("num_trajectories", 1),
                     ("inner_steps", 0), ("eval_goals", 2), ("eval_trajectories", 2), ("eval_steps", 0)):
        check_count(cfg[key], key, low)
    check_seed(cfg["seed"])
    if cfg["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {cfg['dtype']!r}.")
    if not (0.0 <= cfg["gamma"] <= 1.0):
        raise ValueError(f"gamma must be a discount in [0, 1], got {cfg['gamma']!r}.")


def _sizes(cfg):
    return (2, *[int(h) for h in cfg["hidden"]], 2)


def initial_params(method, cfg):
    """The starting policy of each method, from its own random stream (MAML's and the random one differ)."""
    rng = np.random.default_rng([cfg["seed"], METHOD_STREAMS[method]])
    return policy.init(rng, _sizes(cfg), dtype=np.dtype(cfg["dtype"]).type), rng


def training_method(method, cfg):
    if method == "maml":
        return functools.partial(maml_rl.maml_rl_value_and_grad, alpha=cfg["alpha"], inner_steps=cfg["inner_steps"],
                                 gamma=cfg["gamma"], first_order=cfg["first_order"])
    if method == "pretrained":
        return functools.partial(policy_gradient.pretrain_value_and_grad, gamma=cfg["gamma"])
    raise ValueError(f"unknown method {method!r}; trained methods are 'maml' and 'pretrained'.")


def _on_phi(phi, batch, value_and_grad, log_std_beta_scale):
    c = np.asarray(log_std_beta_scale, phi["log_std"].dtype)
    loss, g = value_and_grad({"mlp": phi["mlp"], "log_std": phi["log_std"] * c}, batch)
    return loss, {"mlp": g["mlp"], "log_std": g["log_std"] * c}


def scaled_log_std(value_and_grad, c):
    """Adam with log_std's learning rate c times the weights': Adam trains phi = theta with log_std / c.

    Adam moves each coordinate by at most about beta per iteration, whatever its gradient's scale, so
    with c = 1 log_std (a policy's spread) moves as slowly as a single weight; TRPO's KL-bounded step,
    the paper's outer optimiser, moves it by up to about 0.07 per iteration at a KL of 0.01.  Returns
    (value_and_grad on phi, theta -> phi, phi -> theta); c = 1 returns value_and_grad itself.
    """
    if c == 1:
        return value_and_grad, (lambda theta: theta), (lambda phi: phi)

    def to_phi(theta):
        return {"mlp": theta["mlp"], "log_std": theta["log_std"] / np.asarray(c, theta["log_std"].dtype)}

    def to_theta(phi):
        return {"mlp": phi["mlp"], "log_std": phi["log_std"] * np.asarray(c, phi["log_std"].dtype)}
    return functools.partial(_on_phi, value_and_grad=value_and_grad, log_std_beta_scale=c), to_phi, to_theta


def _train_one(method, cfg, progress=False):
    """(method, theta, History, seconds, cpu seconds) of one trained method."""
    theta, rng = initial_params(method, cfg)
    iters = cfg["iterations"] if method == "maml" else cfg["pretrain_iterations"]
    inner = cfg["inner_steps"] if method == "maml" else 0
    batches = maml_rl.meta_batches(cfg["meta_batch_size"], cfg["num_trajectories"], inner,
                                   dtype=np.dtype(cfg["dtype"]).type)
    scale = cfg["log_std_beta_scale"] if method == "maml" else cfg["pretrain_log_std_beta_scale"]
    vg, to_phi, to_theta = scaled_log_std(training_method(method, cfg), scale)
    t0, c0 = time.perf_counter(), time.process_time()
    phi, hist = train.meta_train(to_phi(theta), vg, batches, rng=rng, iterations=iters,
                                 schedule=train.cosine(cfg["beta"], max(iters, 1)), progress=progress, log_every=10)
    return method, to_theta(phi), hist, time.perf_counter() - t0, time.process_time() - c0


def eval_goals(cfg, num_goals=None):
    """The meta-test goals: (eval_goals, 2), the same for every method."""
    return point_navigation.sample_goals(np.random.default_rng([cfg["seed"], 999]), num_goals or cfg["eval_goals"])


def eval_noise(cfg, goal_indices, dtype=None):
    """Exploration noise (eval_steps + 1, K, 40, T, 2): one stream per goal index (a subset gives the same numbers)."""
    dtype = dtype or np.dtype(cfg["dtype"]).type
    per_goal = [np.random.default_rng([cfg["seed"], 998, int(i)]).standard_normal(
        (cfg["eval_steps"] + 1, cfg["eval_trajectories"], point_navigation.HORIZON, 2)).astype(dtype)
        for i in goal_indices]
    return np.stack(per_goal, axis=1)


def eval_alpha(cfg, method="maml"):
    """The meta-test step sizes of a method: cfg["eval_alpha"] for MAML, cfg["baseline_eval_alpha"] for the
    pretrained and random policies (a number or one per step), cfg["alpha"] where they are None or absent."""
    key = "eval_alpha" if method == "maml" else "baseline_eval_alpha"
    a = cfg.get(key)
    return cfg["alpha"] if a is None else a


def evaluate(theta, cfg, goal_indices=None, method="maml", alpha=None):
    """Average return per goal after 0..eval_steps steps: (eval_steps + 1, len(goal_indices)).

    Goals eval_goals(cfg)[goal_indices] (default: all), each with its own noise stream; step sizes
    alpha (a number or one per step), by default the method's (eval_alpha).
    """
    alpha = eval_alpha(cfg, method) if alpha is None else alpha
    goals = eval_goals(cfg)
    idx = np.arange(len(goals)) if goal_indices is None else np.asarray(goal_indices)
    out = []
    for start in range(0, len(idx), 50):   # 50 goals x 40 trajectories at a time bounds the memory
        part = idx[start:start + 50]
        out.append(maml_rl.adaptation_returns(theta, goals[part], alpha=alpha, steps=cfg["eval_steps"],
                                              gamma=cfg["gamma"], noise=eval_noise(cfg, part)))
    return np.concatenate(out, axis=1)


def _stats(R):
    n = R.shape[1]
    return {"steps": list(range(R.shape[0])), "return": R.mean(axis=1).tolist(),
            "ci95": (1.96 * R.std(axis=1, ddof=1) / np.sqrt(n)).tolist(), "num_goals": int(n),
            "per_goal": R.tolist()}


def released_step(thetas, cfg, alpha=None):
    """Every method scored with the same step sizes, by default the released scripts' (RELEASED_STEP):
    {"alpha", "num_goals", "results": {method: stats}} on the first num_goals meta-test goals, same noise."""
    n = min(RELEASED_STEP["num_goals"], cfg["eval_goals"])
    a = RELEASED_STEP["alpha"] if alpha is None else alpha
    return {"alpha": a, "num_goals": n,
            "results": {m: _stats(evaluate(thetas[m], cfg, range(n), alpha=a)) for m in METHODS}}


def eval_alphas(cfg):
    """{method: its meta-test step sizes} (eval_alpha), e.g. for the figures of notebook 08."""
    return {m: eval_alpha(cfg, m) for m in METHODS}


def load_policy(path, cfg=None):
    """(theta, hparams) of a navigation checkpoint; a ValueError when it does not hold a 2D policy."""
    theta, hparams, _ = train.load_checkpoint(path)
    try:
        policy.check_params(theta, per_task=False)
    except ValueError as e:
        raise ValueError(f"{path} does not hold a navigation policy of the right shape: {e} "
                         "Use a checkpoint written by `mlcourse train navigation`.") from None
    if cfg is not None and [np.shape(W)[1] for W, _ in theta["mlp"][:-1]] != [int(h) for h in cfg["hidden"]]:
        raise ValueError(f"{path} holds a policy with hidden sizes {[np.shape(W)[1] for W, _ in theta['mlp'][:-1]]}, "
                         f"the run expects {list(cfg['hidden'])}; pass the matching --hidden.")
    return theta, hparams


def run(out_dir, *, progress=True, overwrite=False, log=print, refresh_shipped=False, workers=2, **overrides):
    """Train MAML and the pretrained baseline (side by side), meta-test the three methods, write
    maml.npz, pretrained.npz, random.npz and summary.json into out_dir; returns the summary."""
    cfg = _settings(overrides)
    from .shipped import check_out_dir
    check_out_dir(out_dir, refresh_shipped)
    ckpts = {m: os.path.join(out_dir, f"{m}.npz") for m in METHODS}
    if not overwrite:
        clash = [p for p in [*ckpts.values(), os.path.join(out_dir, "summary.json")] if os.path.exists(p)]
        if clash:
            raise FileExistsError(f"{clash[0]} exists; pass --overwrite to replace it or choose another --out.")
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    if workers > 1:   # the pretrained baseline in a second process while MAML trains here (own seeds: same numbers)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from .._runtime import tune_allocator
        log("training maml here and the pretrained baseline in a second process")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=tune_allocator) as pool:
            other = pool.submit(_train_one, "pretrained", cfg, False)
            trained = [_train_one("maml", cfg, progress), other.result()]
    else:
        trained = [_train_one("maml", cfg, progress), _train_one("pretrained", cfg, progress)]
    train_wall = time.perf_counter() - start
    thetas, timings, cpu, histories = {}, {}, {}, {}
    for method, theta, hist, seconds, cpu_seconds in trained:
        iters = cfg["iterations"] if method == "maml" else cfg["pretrain_iterations"]
        log(f"{method}: {iters} iterations in {seconds:.1f} s, {cpu_seconds:.1f} s of CPU "
            f"({seconds / max(iters, 1):.3f} s per iteration)")
        thetas[method], timings[method], cpu[method], histories[method] = theta, seconds, cpu_seconds, hist
    thetas["random"] = initial_params("random", cfg)[0]
    histories["random"] = None
    results = {}
    for method in METHODS:
        hp = _jsonable(cfg)
        hp.update(method=method, sizes=list(_sizes(cfg)), task="navigation")
        train.save_checkpoint(ckpts[method], thetas[method], hp, histories[method], overwrite=overwrite)
        t0 = time.perf_counter()
        results[method] = _stats(evaluate(thetas[method], cfg, method=method))
        results[method]["alpha"] = eval_alpha(cfg, method)
        results[method]["eval_seconds"] = time.perf_counter() - t0
        if histories[method] is not None:
            results[method]["history"] = histories[method].as_dict()
    summary = {"config": _jsonable(cfg),
               "paper": PAPER, "results": results, "released_step": released_step(thetas, cfg),
               "paper_step": released_step(thetas, cfg, eval_alpha(cfg, "maml")),
               "train_seconds": timings, "train_cpu_seconds": cpu, "train_wall_seconds": train_wall,
               "seconds_per_iteration": {m: timings[m] / max(cfg["iterations" if m == "maml" else
                                                                  "pretrain_iterations"], 1) for m in timings},
               "wall_seconds": time.perf_counter() - start, "workers": workers,
               "checkpoints": {m: os.path.basename(p) for m, p in ckpts.items()}}
    tmp = os.path.join(out_dir, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "summary.json"))
    return summary


def _jsonable(cfg):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


def _settings(overrides):
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(DEFAULTS)}.")
    cfg = dict(DEFAULTS, **overrides)
    cfg["hidden"] = tuple(int(h) for h in cfg["hidden"])
    _check_settings(cfg)
    return cfg


def _check_seeds(seeds, main_seed, name="seeds", main=None):
    """The extra seeds as ints: at least one, distinct, none equal to the main run's seed."""
    checked = [check_seed(s) for s in seeds]
    if not checked or len(set(checked)) != len(checked) or main_seed in checked:
        main = main or f"the main run's seed {main_seed}"
        raise ValueError(f"{name} must be distinct and differ from {main}, got {seeds!r}; e.g. --seeds 1,2,3,4.")
    return checked


def _seed_checkpoint(out_dir, seed):
    return os.path.join(out_dir, f"maml_seed{seed}.npz")


def _train_and_score(seed, cfg):
    """MAML meta-trained from `seed` (every other setting cfg's), scored on cfg's meta-test goals and noise."""
    _, theta, hist, seconds, cpu = _train_one("maml", dict(cfg, seed=seed))
    return seed, theta, hist, seconds, cpu, evaluate(theta, cfg, method="maml")


def _one_blas_thread():
    from .. import _blas
    from .._runtime import tune_allocator
    tune_allocator()
    _blas.limit_threads(1)


def run_seeds(out_dir, seeds, *, overwrite=False, log=print, refresh_shipped=False, workers=2, **overrides):
    """Meta-train MAML again from each of `seeds` with the same settings and score every run on the same
    meta-test goals and noise (those of the settings' own seed, the main run's): writes maml_seed<S>.npz
    and seeds.json into out_dir and returns the latter's content.

    What one run's numbers are worth: its 95% intervals are over goals and say nothing of how far another
    seed's meta-training moves them.  `workers` runs train side by side, one BLAS thread each (the
    meta-gradient's result does not depend on the thread count).
    """
    cfg = _settings(overrides)
    seeds = _check_seeds(seeds, cfg["seed"])
    from .shipped import check_out_dir
    check_out_dir(out_dir, refresh_shipped)
    out = os.path.join(out_dir, "seeds.json")
    if not overwrite:
        clash = [p for p in [*(_seed_checkpoint(out_dir, s) for s in seeds), out] if os.path.exists(p)]
        if clash:
            raise FileExistsError(f"{clash[0]} exists; pass --overwrite to replace it or choose another --out.")
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    log(f"meta-training MAML from seeds {', '.join(map(str, seeds))} ({min(workers, len(seeds))} at a time)")
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(workers, len(seeds)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_blas_thread) as pool:
            done = list(pool.map(_train_and_score, seeds, [cfg] * len(seeds)))
    else:
        done = [_train_and_score(s, cfg) for s in seeds]
    runs = {}
    for seed, theta, hist, seconds, cpu, R in done:
        hp = _jsonable(dict(cfg, seed=seed))
        hp.update(method="maml", sizes=list(_sizes(cfg)), task="navigation")
        ckpt = _seed_checkpoint(out_dir, seed)
        train.save_checkpoint(ckpt, theta, hp, hist, overwrite=overwrite)
        runs[str(seed)] = {"seed": seed, **_stats(R), "train_seconds": seconds, "train_cpu_seconds": cpu,
                           "checkpoint": os.path.basename(ckpt)}
        log(f"seed {seed}: " + " / ".join(f"{v:.1f}" for v in runs[str(seed)]["return"]) + f" ({seconds:.0f} s)")
    result = {"config": _jsonable(cfg), "eval_seed": cfg["seed"], "seeds": seeds, "runs": runs,
              "workers": workers, "wall_seconds": time.perf_counter() - start}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, out)
    return result


def across_seeds(summary, seeds_summary):
    """MAML's average return after each step in the main run and every seed run: (runs, steps), seeds."""
    if seeds_summary["eval_seed"] != summary["config"]["seed"]:
        raise ValueError("the seed runs were scored on other goals than this summary's; run them with its --seed.")
    order = [summary["config"]["seed"]] + list(seeds_summary["seeds"])
    R = [summary["results"]["maml"]["return"]]
    R += [seeds_summary["runs"][str(s)]["return"] for s in seeds_summary["seeds"]]
    return np.array(R), order


def format_seeds(summary, seeds_summary):
    """MAML's returns after 0..3 steps per seed, with their mean and range over the seeds."""
    R, order = across_seeds(summary, seeds_summary)
    lines = [f"MAML meta-trained from {len(order)} seeds, scored on the same {summary['results']['maml']['num_goals']} "
             "goals: average return after k = " + " / ".join(str(k) for k in range(R.shape[1])) + " steps"]
    for s, r in zip(order, R):
        lines.append(f"{'seed ' + str(s):>10} | " + " / ".join(f"{v:6.1f}" for v in r))
    lines.append(f"{'mean':>10} | " + " / ".join(f"{v:6.1f}" for v in R.mean(axis=0)))
    lines.append(f"{'range':>10} | "
                 + " / ".join(f"{lo:.1f} to {hi:.1f}" for lo, hi in zip(R.min(axis=0), R.max(axis=0))))
    return "\n".join(lines)


def _steps_text(alpha):
    return " then ".join(str(a) for a in alpha) if isinstance(alpha, (list, tuple)) else str(alpha)


def format_table(summary):
    """Average return after k steps: ours (with 95% interval over goals) beside the paper's rows."""
    res, cfg = summary["results"], summary["config"]
    n = res["maml"]["num_goals"]
    steps = "; ".join(f"{m} {_steps_text(eval_alpha(cfg, m))}" for m in METHODS)
    lines = [f"2D navigation: average return on {n} new goals after k policy-gradient steps "
             f"(step sizes: {steps}; {cfg['eval_trajectories']} trajectories per step; paper: "
             f"{PAPER['eval_goals']} goals)",
             f"{'method':>22} | " + " | ".join(f"{'k = ' + str(s):>15}" for s in res["maml"]["steps"])]
    lines.append("-" * len(lines[-1]))
    for m in METHODS:
        r = res[m]
        lines.append(f"{m + ' (ours)':>22} | " + " | ".join(f"{v:>7.2f} ± {c:<5.2f}" for v, c in zip(r["return"], r["ci95"])))
        lines.append(f"{m + ' (paper)':>22} | " + " | ".join(f"{v:>15.2f}" for v in PAPER[m]))
    t = summary["train_seconds"]
    cpu = summary.get("train_cpu_seconds")
    lines.append(f"meta-training: maml {cfg['iterations']} iterations in {t['maml']:.0f} s"
                 + (f" ({cpu['maml']:.0f} s of CPU)" if cpu else "")
                 + f", pretrained {cfg['pretrain_iterations']} in {t['pretrained']:.0f} s (side by side); wall time "
                 f"{summary['wall_seconds']:.0f} s")
    return "\n".join(lines)


def format_released_step(summary, key="released_step"):
    """One line per method: the average return after 0..3 steps with the released scripts' step size
    (key "released_step"), or with MAML's meta-test steps for every method (key "paper_step")."""
    rel = summary[key]
    lines = [f"alpha = {_steps_text(rel['alpha'])}: average return on the first {rel['num_goals']} goals after k = "
             + " / ".join(str(k) for k in rel["results"]["maml"]["steps"]) + " steps (95% intervals over goals)"]
    for m in METHODS:
        r = rel["results"][m]
        lines.append(f"{m:>10} | " + " / ".join(f"{v:6.1f} ± {c:.1f}" for v, c in zip(r["return"], r["ci95"])))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# `mlcourse train navigation` and the shipped results.

def add_arguments(p):
    d = DEFAULTS
    p.add_argument("--out", default=os.path.join("runs", "navigation"), help="folder for checkpoints and summary.json")
    p.add_argument("--overwrite", action="store_true", help="replace existing checkpoints in --out")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--iterations", type=int, default=d["iterations"], help="MAML meta-iterations")
    p.add_argument("--pretrain-iterations", type=int, default=d["pretrain_iterations"])
    p.add_argument("--beta", type=float, default=d["beta"], help="Adam's outer learning rate")
    p.add_argument("--alpha", type=float, default=d["alpha"], help="inner step size of meta-training")
    p.add_argument("--eval-alpha", default=",".join(map(str, d["eval_alpha"])),
                   help="MAML's step sizes at meta-test, one per step, the last repeated (default: the paper's 0.1,0.05; "
                        "'same' for --alpha)")
    p.add_argument("--baseline-eval-alpha", default=str(d["baseline_eval_alpha"]),
                   help="the pretrained and random policies' step sizes at meta-test (default: the released scripts' "
                        "0.5; 'same' for --alpha)")
    p.add_argument("--log-std-beta-scale", type=float, default=d["log_std_beta_scale"],
                   help="log_std's outer learning rate in units of --beta (1: like the weights)")
    p.add_argument("--meta-batch-size", type=int, default=d["meta_batch_size"])
    p.add_argument("--num-trajectories", type=int, default=d["num_trajectories"])
    p.add_argument("--first-order", action="store_true", help="train the first-order variant")
    p.add_argument("--hidden", default=",".join(map(str, d["hidden"])), help="hidden sizes, e.g. 100,100")
    p.add_argument("--eval-goals", type=int, default=d["eval_goals"])
    p.add_argument("--seeds", default="", help="also meta-train MAML from these seeds (e.g. 1,2,3,4), scored on the "
                   "same goals as --seed's run: maml_seed<S>.npz and seeds.json")
    p.add_argument("--workers", type=int, default=2, help="1: train MAML and the baseline one after the other")
    p.add_argument("--no-progress", action="store_true")


def _step_list(text, option):
    """'same' -> None (use --alpha); '0.1,0.05' -> [0.1, 0.05]; '0.5' -> 0.5."""
    if text.strip() == "same":
        return None
    try:
        values = [float(a) for a in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated step sizes such as 0.1,0.05 (or 'same'), got {text!r}.") from None
    return values[0] if len(values) == 1 else values


def cli(args):
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers such as 100,100, got {args.hidden!r}.") from None
    eval_alpha = _step_list(args.eval_alpha, "--eval-alpha")
    baseline_eval_alpha = _step_list(args.baseline_eval_alpha, "--baseline-eval-alpha")
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds.strip() else []
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers such as 1,2,3,4, got {args.seeds!r}.") from None
    settings = dict(seed=args.seed, iterations=args.iterations, pretrain_iterations=args.pretrain_iterations,
                    beta=args.beta, alpha=args.alpha, meta_batch_size=args.meta_batch_size,
                    num_trajectories=args.num_trajectories, first_order=args.first_order, hidden=hidden,
                    eval_goals=args.eval_goals, eval_alpha=eval_alpha, baseline_eval_alpha=baseline_eval_alpha,
                    log_std_beta_scale=args.log_std_beta_scale)
    if seeds:   # checked before the main run, not after it
        _check_seeds(seeds, args.seed, "--seeds", f"--seed {args.seed}")
    summary = run(args.out, progress=not args.no_progress, overwrite=args.overwrite, workers=args.workers, **settings)
    print(format_table(summary))
    if seeds:
        print(format_seeds(summary, run_seeds(args.out, seeds, overwrite=args.overwrite, workers=args.workers,
                                              **settings)))
    print(f"checkpoints and summary.json in {args.out}" + (", seeds.json beside them" if seeds else ""))
    return 0


def refresh_shipped(folder, progress=True, reference_python=None):
    """Recompute the shipped run (the defaults) into folder, replacing it."""
    summary = run(folder, progress=progress, overwrite=True, refresh_shipped=True)
    print(format_table(summary))
    print(format_seeds(summary, run_seeds(folder, SHIPPED_SEEDS, overwrite=True, refresh_shipped=True)))
    return summary


def load_shipped(folder):
    """{"summary", "theta": {method: policy}, "config", "dir", "seeds" (seeds.json, or None)} of a run folder."""
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no summary.json in {folder}; run `mlcourse train navigation --out {folder}` "
                                "(or `mlcourse refresh-results navigation`) first.")
    with open(path) as f:
        summary = json.load(f)
    cfg = dict(summary["config"])
    theta = {m: load_policy(os.path.join(folder, name), cfg)[0] for m, name in summary["checkpoints"].items()}
    seeds, seeds_path = None, os.path.join(folder, "seeds.json")
    if os.path.exists(seeds_path):   # written by --seeds (run_seeds)
        with open(seeds_path) as f:
            seeds = json.load(f)
    return {"summary": summary, "theta": theta, "config": cfg, "dir": folder, "seeds": seeds}
