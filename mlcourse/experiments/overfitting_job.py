"""Meta-overfitting and inner-loop choices on the sinusoids: the long runs of notebook 07.

    pools       MAML meta-trained on fixed pools of P sinusoid tasks (and on fresh tasks), the
                post-adaptation query loss on the pool's tasks (meta-train) and on new tasks
                (meta-test) recorded along training; the gap = meta-test - meta-train
    mitigations more task diversity (larger P), early stopping on a meta-validation set of new
                tasks, task augmentation (each drawn pool task rescaled and phase-shifted)
    sweeps      MAML meta-trained on fresh tasks with several inner step sizes alpha and several
                inner step counts m; meta-tested with the same alpha after 0..10 steps
    within      within-task overfitting of the shipped MAML of sinusoid_variants (K = 5): support and query loss
                after up to 500 steps from K = 2 or 5 points, with noise on the support labels
                and with a larger alpha

Every run trains MAML (``maml.maml_value_and_grad``, exact, the paper's one-step objective unless
the sweep says otherwise) through ``train.meta_train``.  ``mlcourse train overfitting`` writes
summary.json and params.npz into --out; ``mlcourse refresh-results overfitting`` into the
shipped folder that notebook 07 loads (``shipped.load("overfitting")``).
"""
from __future__ import annotations

import functools
import json
import os
import time

import numpy as np

from .. import maml, nets, taskpool, tasks, train, tree

__all__ = ["DEFAULTS", "QUICK", "run", "refresh_shipped", "load_shipped", "add_arguments", "cli", "format_summary"]

DEFAULTS = dict(
    seed=0,
    pool_sizes=(2, 8, 32, 128),   # tasks in the fixed meta-training pool; "fresh" tasks are run as well
    iterations=8000,              # meta-iterations per pool run
    meta_batch_size=25,           # tasks per meta-batch (drawn from the pool with replacement)
    k_support=5,
    k_query=10,
    alpha=0.01,
    inner_steps=1,
    beta=1e-3,
    hidden=(40, 40),
    eval_every=200,               # record the meta-train / meta-validation / meta-test losses this often
    eval_tasks=500,               # tasks in each of those fixed evaluation sets
    eval_k_query=50,
    final_tasks=2000,             # fresh tasks (and pool draws) for the final gaps with 95% intervals
    augment_pool_sizes=(2, 8),    # pools also trained with task augmentation
    amplitude_scale=(0.5, 1.5),   # augmentation: A -> r A
    phase_shift=(-0.5, 0.5),      # augmentation: phi -> phi + delta (radians)
    sweep_iterations=6000,
    alpha_sweep=(0.001, 0.003, 0.01, 0.03, 0.1),
    steps_sweep=(1, 2, 3, 5),
    within_k=(2, 5),
    within_noise=(0.0, 0.5, 1.0),  # std of the noise on the support labels (the query stays clean)
    within_alphas=(0.01, 0.02),
    within_steps=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500),
)
# Small settings for the tests: the same code paths in a second.
QUICK = dict(pool_sizes=(2, 8), iterations=60, eval_every=20, eval_tasks=20, final_tasks=30, augment_pool_sizes=(2,),
             sweep_iterations=20, alpha_sweep=(0.01, 0.1), steps_sweep=(1, 2), within_k=(2,), within_alphas=(0.1,),
             within_noise=(0.0, 1.0), within_steps=(0, 1, 5), hidden=(8, 8))

EVAL_STEPS = (0, 1, 2, 3, 5, 10)


def _check(cfg):
    from .._validate import check_alpha, check_count
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(DEFAULTS)}.")
    for key in ("pool_sizes", "augment_pool_sizes"):
        sizes = cfg[key]
        if key == "pool_sizes" and len(sizes) == 0:
            raise ValueError("pool_sizes is empty: give at least one pool size, e.g. --pool-sizes 2,8,32.")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ValueError(f"{key} must hold task counts >= 1 (a pool needs at least one task), got {s!r}.")
        if len(set(sizes)) < len(sizes):
            raise ValueError(f"{key} lists a size twice: {list(sizes)}.")
    bad = [s for s in cfg["augment_pool_sizes"] if s not in cfg["pool_sizes"]]
    if bad:
        raise ValueError(f"augment_pool_sizes {bad} are not among pool_sizes {list(cfg['pool_sizes'])}; the "
                         "augmented runs are compared with the plain run of the same pool.")
    for key, low in (("iterations", 1), ("meta_batch_size", 1), ("k_support", 1), ("k_query", 1), ("inner_steps", 1),
                     ("eval_every", 1), ("eval_tasks", 2), ("eval_k_query", 1), ("final_tasks", 2),
                     ("sweep_iterations", 1)):
        check_count(cfg[key], key, low)
    for key in ("alpha", "beta", *()):
        check_alpha(cfg[key], key)
    for a in tuple(cfg["alpha_sweep"]) + tuple(cfg["within_alphas"]) + tuple(cfg["within_noise"]):
        check_alpha(a, "alpha_sweep, within_alphas and within_noise entries")
    for s in cfg["steps_sweep"]:
        check_count(s, "steps_sweep entries", 1)
    return cfg


def _fresh_eval_set(cfg, stream):
    """A fixed set of new tasks from p(T) (meta-validation: stream 1, meta-test: stream 2)."""
    return tasks.Sinusoid().sample(np.random.default_rng([cfg["seed"], stream]), cfg["eval_tasks"], cfg["k_support"],
                                   cfg["eval_k_query"], dtype=np.float32)


def _post_adaptation(theta, batch, cfg, steps=None):
    """Per-task query MSE after cfg's inner steps (the meta-objective's own adaptation)."""
    steps = cfg["inner_steps"] if steps is None else steps
    return maml.query_losses(theta, batch, cfg["alpha"], steps=(steps,))[0]


def train_pool(cfg, pool_size=None, augment=False, progress=False):
    """Meta-train MAML on a pool of pool_size tasks (None: fresh tasks every batch), record the curves.

    Returns (final theta, early-stopped theta, record dict with the curves and the final gaps).
    """
    key = [cfg["seed"], 10, pool_size or 0, int(augment)]
    rng = np.random.default_rng(key)
    sizes = [1, *cfg["hidden"], 1]
    theta = nets.mlp_init(rng, sizes, dtype=np.float32)
    aug = dict(amplitude_scale=tuple(cfg["amplitude_scale"]), phase_shift=tuple(cfg["phase_shift"])) if augment else {}
    if pool_size is None:
        dist = tasks.Sinusoid()
        train_tasks = dist
    else:
        dist = taskpool.TaskPool.draw(np.random.default_rng([cfg["seed"], 20, pool_size]), pool_size, **aug)
        train_tasks = dist.without_augmentation()
    train_set = train_tasks.sample(np.random.default_rng([cfg["seed"], 3, pool_size or 0]), cfg["eval_tasks"],
                                   cfg["k_support"], cfg["eval_k_query"], dtype=np.float32)
    val_set, test_set = _fresh_eval_set(cfg, 1), _fresh_eval_set(cfg, 2)
    rec = {"iteration": [], "train": [], "validation": [], "test": []}
    best = {"loss": np.inf, "theta": theta, "iteration": 0}

    def record(t, params):
        rec["iteration"].append(int(t))
        for name, batch in (("train", train_set), ("validation", val_set), ("test", test_set)):
            rec[name].append(float(np.mean(_post_adaptation(params, batch, cfg))))
        if rec["validation"][-1] < best["loss"]:
            best.update(loss=rec["validation"][-1], theta=tree.astype(params, np.float32), iteration=int(t))

    def callback(t, params, loss):
        if t % cfg["eval_every"] == 0:
            record(t, params)
    record(0, theta)
    vg = functools.partial(maml.maml_value_and_grad, alpha=cfg["alpha"], inner_steps=cfg["inner_steps"])
    batches = train.task_batches(dist, meta_batch_size=cfg["meta_batch_size"], k_support=cfg["k_support"],
                                 k_query=cfg["k_query"], dtype=np.float32)
    t0 = time.perf_counter()
    theta, hist = train.meta_train(theta, vg, batches, rng=rng, iterations=cfg["iterations"],
                                   schedule=train.constant(cfg["beta"]), progress=progress, log_every=cfg["eval_every"],
                                   callback=callback)
    rec["train_seconds"] = time.perf_counter() - t0
    rec["meta_batch_loss"] = hist.as_dict()
    rec["pool_size"], rec["augmented"] = pool_size, bool(augment)
    rec["early_stopping_iteration"] = best["iteration"]
    rec["final"] = final_gap(theta, train_tasks, cfg)
    rec["early_stopped"] = final_gap(best["theta"], train_tasks, cfg)
    if pool_size is not None:
        rec["pool"] = {"amplitude": dist.amplitude.tolist(), "phase": dist.phase.tolist()}
    return theta, best["theta"], rec


def final_gap(theta, train_tasks, cfg):
    """generalisation_gap on final_tasks draws from the meta-training tasks and final_tasks new tasks."""
    n, k, q = cfg["final_tasks"], cfg["k_support"], cfg["eval_k_query"]
    tr = train_tasks.sample(np.random.default_rng([cfg["seed"], 30]), n, k, q, dtype=np.float32)
    te = tasks.Sinusoid().sample(np.random.default_rng([cfg["seed"], 31]), n, k, q, dtype=np.float32)
    return taskpool.generalisation_gap(_post_adaptation(theta, tr, cfg), _post_adaptation(theta, te, cfg))


def sweep(cfg, alpha=None, inner_steps=None, progress=False):
    """MAML meta-trained on fresh tasks with one alpha / inner step count; meta-tested with the same alpha."""
    c = dict(cfg, alpha=cfg["alpha"] if alpha is None else alpha,
             inner_steps=cfg["inner_steps"] if inner_steps is None else inner_steps)
    rng = np.random.default_rng([cfg["seed"], 40, int(round(c["alpha"] * 1e6)), c["inner_steps"]])
    theta = nets.mlp_init(rng, [1, *cfg["hidden"], 1], dtype=np.float32)
    vg = functools.partial(maml.maml_value_and_grad, alpha=c["alpha"], inner_steps=c["inner_steps"])
    batches = train.task_batches(tasks.Sinusoid(), meta_batch_size=cfg["meta_batch_size"], k_support=cfg["k_support"],
                                 k_query=cfg["k_query"], dtype=np.float32)
    out = {"alpha": c["alpha"], "inner_steps": c["inner_steps"]}
    t0 = time.perf_counter()
    try:
        theta, _ = train.meta_train(theta, vg, batches, rng=rng, iterations=cfg["sweep_iterations"],
                                    schedule=train.constant(cfg["beta"]), progress=progress)
    except FloatingPointError as e:
        out.update(diverged=str(e), train_seconds=time.perf_counter() - t0)
        return out
    out["train_seconds"] = time.perf_counter() - t0
    with np.errstate(over="ignore", invalid="ignore"):
        res = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng([cfg["seed"], 31]),
                             num_tasks=cfg["final_tasks"], k_shot=cfg["k_support"], k_query=cfg["eval_k_query"],
                             alpha=c["alpha"], steps=EVAL_STEPS)
    out.update(steps=res["steps"], mse=[_finite(v) for v in res["mse"]], ci95=[_finite(v) for v in res["ci95"]])
    return out


def _finite(v):
    return float(v) if np.isfinite(v) else None


def noisy_support(batch, sigma, rng):
    """The batch with N(0, sigma^2) noise added to the support labels only (the query stays the clean task)."""
    noise = rng.normal(0.0, sigma, size=batch.y_support.shape).astype(batch.y_support.dtype)
    return tasks.TaskBatch(batch.x_support, batch.y_support + noise, batch.x_query, batch.y_query, batch.params)


def support_and_query(theta, batch, alpha, steps):
    """Mean over tasks of the support MSE (on the possibly noisy labels adapted on) and of the query MSE."""
    on_support = tasks.TaskBatch(batch.x_support, batch.y_support, batch.x_support, batch.y_support)
    with np.errstate(over="ignore", invalid="ignore"):
        s = maml.query_losses(theta, on_support, alpha, steps)
        q = maml.query_losses(theta, batch, alpha, steps)
    return [_finite(v) for v in np.mean(s, axis=1)], [_finite(v) for v in np.mean(q, axis=1)]


def within_task(theta, cfg):
    """Support and query MSE after many steps from K points (support labels with noise sigma), per alpha."""
    out = []
    for k in cfg["within_k"]:
        clean = tasks.Sinusoid().sample(np.random.default_rng([cfg["seed"], 50, k]), cfg["final_tasks"] // 4, k,
                                        cfg["eval_k_query"], dtype=np.float32)
        for sigma in cfg["within_noise"]:
            batch = noisy_support(clean, sigma, np.random.default_rng([cfg["seed"], 51, k]))
            for a in cfg["within_alphas"]:
                support, query = support_and_query(theta, batch, a, cfg["within_steps"])
                out.append({"k_shot": int(k), "noise": float(sigma), "alpha": float(a), "steps": list(cfg["within_steps"]),
                            "support": support, "query": query})
    return out


def _main_job_maml(cfg):
    """The shipped MAML of the Meta-SGD / ANIL comparison (K = 5, notebook 07) when the hidden sizes match, else
    one trained on fresh tasks here."""
    from . import shipped
    if tuple(cfg["hidden"]) == (40, 40) and os.path.exists(shipped.path("sinusoid_variants")):
        return shipped.load("sinusoid_variants")["theta"]["maml"], "shipped MAML of the variants comparison (notebook 07)"
    theta, _, _ = train_pool(dict(cfg, iterations=cfg["sweep_iterations"]), None)
    return theta, "MAML trained on fresh tasks by this job"


def run(out_dir, *, progress=True, overwrite=False, refresh_shipped=False, log=print, **overrides):
    """Every run of the job; writes summary.json and params.npz into out_dir and returns the summary."""
    cfg = _check(dict(DEFAULTS, **overrides))
    from .shipped import check_out_dir
    check_out_dir(out_dir, refresh_shipped)
    files = [os.path.join(out_dir, f) for f in ("summary.json", "params.npz")]
    if not overwrite and any(os.path.exists(f) for f in files):
        raise FileExistsError(f"{out_dir} already holds a run; pass --overwrite to replace it or choose another --out.")
    start = time.perf_counter()
    pools, params = [], {}
    for size in [*cfg["pool_sizes"], None]:
        for augment in ([False, True] if size in cfg["augment_pool_sizes"] else [False]):
            theta, stopped, rec = train_pool(cfg, size, augment, progress)
            name = f"pool{size}" if size else "fresh"
            name += "_augmented" if augment else ""
            rec["name"] = name
            pools.append(rec)
            params[name] = tree.flatten(theta)[0]
            params[name + "_early_stopped"] = tree.flatten(stopped)[0]
            f, e = rec["final"], rec["early_stopped"]
            log(f"{name:>18}: meta-train {f['train']:.3f}, meta-test {f['test']:.3f}, gap {f['gap']:.3f} "
                f"(early stopped at {rec['early_stopping_iteration']}: gap {e['gap']:.3f}) in {rec['train_seconds']:.1f} s")
    done = {}   # (alpha, inner_steps) -> run: the default alpha with the default step count is in both sweeps

    def swept(a, m):
        if (a, m) not in done:
            done[a, m] = sweep(cfg, alpha=a, inner_steps=m, progress=progress)
        return done[a, m]
    alpha_runs = [swept(a, cfg["inner_steps"]) for a in cfg["alpha_sweep"]]
    steps_runs = [swept(cfg["alpha"], m) for m in cfg["steps_sweep"]]
    for r in alpha_runs + steps_runs:
        log(f"sweep alpha={r['alpha']}, inner_steps={r['inner_steps']}: "
            + ("diverged" if "diverged" in r else f"MSE after 1 step {r['mse'][1]:.3f}, after 10 {r['mse'][-1]}"))
    theta_main, source = _main_job_maml(cfg)
    within = within_task(theta_main, cfg)
    summary = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "pools": pools, "alpha_sweep": alpha_runs, "steps_sweep": steps_runs,
               "within_task": {"model": source, "runs": within}, "eval_steps": list(EVAL_STEPS),
               "wall_seconds": time.perf_counter() - start}
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, "params.tmp.npz"), **params)
    os.replace(os.path.join(out_dir, "params.tmp.npz"), files[1])
    with open(files[0] + ".tmp", "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(files[0] + ".tmp", files[0])
    log(f"total {summary['wall_seconds']:.1f} s")
    return summary


def format_summary(summary):
    """The pools' final gaps, with early stopping and augmentation, as a table."""
    lines = [f"{'run':>18} | {'meta-train':>10} | {'meta-test':>10} | {'gap':>15} | early stopped: gap (iteration)",
             "-" * 90]
    for r in summary["pools"]:
        f, e = r["final"], r["early_stopped"]
        lines.append(f"{r['name']:>18} | {f['train']:>10.3f} | {f['test']:>10.3f} | {f['gap']:>7.3f} ± {f['ci95']:<5.3f} | "
                     f"{e['gap']:.3f} ± {e['ci95']:.3f} ({r['early_stopping_iteration']})")
    return "\n".join(lines)


# the meta-iterations notebook 07 compares: each method's public API (hand-derived) and through autograd
SPEED_PATHS = ("maml", "maml_autograd", "metasgd", "metasgd_autograd", "anil", "anil_autograd")


def refresh_speed(folder, progress=True):
    """speed.json in folder: one meta-iteration of MAML, Meta-SGD and ANIL (public API and autograd) timed by
    ``mlcourse bench`` (each in fresh processes, medians of 3 rounds; no reference libraries)."""
    from . import speed
    table = speed.run(steps=(1, 5), paths=SPEED_PATHS, progress=print if progress else None)
    with open(os.path.join(folder, "speed.json.tmp"), "w") as f:
        json.dump(table, f, indent=1)
    os.replace(os.path.join(folder, "speed.json.tmp"), os.path.join(folder, "speed.json"))
    speed.print_table(table)
    return table


def refresh_shipped(folder, progress=True, reference_python=None):
    """Recompute the shipped results of notebook 07 into folder (mlcourse refresh-results overfitting):
    every run of this job, and speed.json (``refresh_speed``)."""
    t0 = time.perf_counter()
    summary = run(folder, progress=progress, overwrite=True, refresh_shipped=True)
    print(format_summary(summary))
    refresh_speed(folder, progress)
    print(f"total refresh time {time.perf_counter() - t0:.1f} s")


def load_shipped(folder):
    """{"summary": summary.json, "params": {run name: MLP theta}, "dir": folder} of a run of this job, and
    "speed" (the benchmark table of the MAML, Meta-SGD and ANIL meta-iterations) for the shipped one."""
    from .shipped import theta_from_flat
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no summary.json in {folder}; run `mlcourse train overfitting --out {folder}` first.")
    with open(path) as f:
        summary = json.load(f)
    sizes = [1, *summary["config"]["hidden"], 1]
    with np.load(os.path.join(folder, "params.npz"), allow_pickle=False) as z:
        params = {k: theta_from_flat(z[k], sizes) for k in z.files}
    out = {"summary": summary, "params": params, "dir": folder}
    if os.path.exists(os.path.join(folder, "speed.json")):   # written by refresh_shipped
        with open(os.path.join(folder, "speed.json")) as f:
            out["speed"] = json.load(f)
    return out


def _ints(text):
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"expected a comma list of integers such as 2,8,32, got {text!r}.") from None


def add_arguments(parser):
    parser.add_argument("--out", default=None, help="output folder (default runs/overfitting-<time>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    parser.add_argument("--pool-sizes", default=None, help="comma list of pool sizes (default 2,8,32,128)")
    parser.add_argument("--iterations", type=int, default=None, help="meta-iterations per pool run (default 8000)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks the whole job in seconds")
    parser.add_argument("--no-progress", action="store_true")


def cli(args):
    import datetime
    overrides = dict(QUICK) if args.quick else {}
    if args.pool_sizes is not None:
        overrides["pool_sizes"] = _ints(args.pool_sizes)
        overrides["augment_pool_sizes"] = tuple(s for s in DEFAULTS["augment_pool_sizes"] if s in overrides["pool_sizes"])
    for key in ("iterations", "seed"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    out = args.out or os.path.join("runs", "overfitting-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    summary = run(out, progress=not args.no_progress, overwrite=args.overwrite, **overrides)
    print(format_summary(summary))
    print(f"\nwrote {os.path.join(out, 'summary.json')} and params.npz")
    return 0
