"""The main job: meta-train MAML and the pretrained baseline on the paper's sinusoids, then meta-test.

Setup of Finn, Abbeel & Levine (2017), section 5.1: MLP 1-40-40-1 with ReLU, meta-batch 25,
alpha = 0.01, Adam with beta = 1e-3, K = 5 support points; meta-test on fresh tasks after
0..10 SGD steps of size alpha with K = 5.  One change, measured and explained in notebook 05:
MAML is trained with 2 inner steps and the multi-step loss (the query loss after every inner
step, averaged; ``maml.multistep_value_and_grad``).  The one-step objective scores only the first
step and says nothing of the later ones the meta-test takes; scoring every step asks for an
initialisation from which each step helps (notebook 05, section 5, measures both).  ``--maml-loss last --inner-steps 1`` gives the
paper's original objective.

Also trains Meta-SGD (``metasgd``: the step sizes learned too; meta-tested with its learned step
sizes) and ANIL (``anil``: only the last layer adapted, at meta-test too) with the same budget, the
same objective and the same meta-test tasks.

``run`` is what ``mlcourse train sinusoid`` calls; notebook 05 loads its shipped output with
``mlcourse.experiments.shipped.load("sinusoid")``.
"""
from __future__ import annotations

import functools
import json
import os
import time

import numpy as np

from .. import anil, baseline, maml, metasgd, nets, reptile, tasks, train

__all__ = ["PAPER", "PAPER_METASGD", "DEFAULTS", "METHODS", "run", "format_table", "format_k_table", "training_method",
           "training_batches", "initial_params", "evaluate_method"]

# Finn, Abbeel & Levine (2017), section 5.1: 5-shot MSE after 1 / 5 / 10 steps, and the meta-iterations they ran.
PAPER = {"steps": [1, 5, 10], "maml": [0.67, 0.38, 0.35], "pretrain": [2.41, 2.23, 2.19], "iterations": 70000}
# Li, Zhou, Chen & Li (2017), Table 1: 5-shot sinusoid regression MSE after one step, in their own setup.
PAPER_METASGD = {"table": "Li et al. (2017), Table 1, 5-shot", "maml": 1.13, "metasgd": 0.90}

DEFAULTS = dict(
    seed=0,
    iterations=30000,        # meta-iterations per method (the paper ran 70000)
    pretrain_iterations=20000,
    meta_batch_size=25,      # tasks per meta-batch, as in the paper
    k_support=5,             # K-shot: 5 support points per task
    k_query=10,              # query points per task for the meta-loss
    alpha=0.01,              # inner step size (train and test), as in the paper
    inner_steps=2,           # inner steps during meta-training (the paper: 1; see the module docstring)
    maml_loss="multistep",   # "multistep": mean query loss over the inner steps; "last": the paper's
    beta=1e-3,               # Adam outer learning rate, as in the paper
    hidden=(40, 40),
    eval_tasks=2000,         # fresh meta-test tasks (the 95% interval is about +-0.04 at 1 step)
    eval_steps=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    eval_k_query=100,
)


EVAL_K_SHOTS = (5, 10, 20)  # meta-test also with more support points than the K of training


def _subset(result, steps):
    """An evaluate() result restricted to the given step counts."""
    idx = [result["steps"].index(s) for s in steps]
    out = {k: v for k, v in result.items() if k not in ("steps", "mse", "ci95", "by_k", "history")}
    out.update(steps=list(steps), mse=[result["mse"][i] for i in idx], ci95=[result["ci95"][i] for i in idx])
    return out


METHODS = ("maml", "fomaml", "reptile", "pretrain", "metasgd", "anil")


def training_method(method, cfg):
    """The value-and-grad function (params, batch) -> (loss, grad) that meta_train gets for `method`.

    MAML's objective is cfg["maml_loss"] ("multistep" or the paper's "last"), and so is Meta-SGD's and
    ANIL's; the inner-loop methods get cfg's alpha and inner_steps bound (Meta-SGD only the steps: its
    step sizes are learned, initialised in [0.005, 0.1]); the pretrained baseline has no inner loop.
    """
    if method == "pretrain":
        return baseline.pretrain_value_and_grad
    if method in ("maml", "metasgd", "anil") and cfg["maml_loss"] not in ("multistep", "last"):
        raise ValueError(f"maml_loss must be 'multistep' or 'last', got {cfg['maml_loss']!r}.")
    multistep = cfg["maml_loss"] == "multistep"
    if method == "metasgd":
        fn = metasgd.metasgd_multistep_value_and_grad if multistep else metasgd.metasgd_value_and_grad
        return functools.partial(fn, inner_steps=cfg["inner_steps"])
    if method == "maml":
        fn = maml.multistep_value_and_grad if multistep else maml.maml_value_and_grad
    elif method == "anil":
        fn = anil.anil_multistep_value_and_grad if multistep else anil.anil_value_and_grad
    elif method == "fomaml":
        fn = maml.fomaml_value_and_grad
    elif method == "reptile":
        fn = reptile.reptile_pseudo_grad
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}.")
    return functools.partial(fn, alpha=cfg["alpha"], inner_steps=cfg["inner_steps"])


def training_batches(cfg, dtype=np.float32):
    """The main job's batch sampler: rng -> a meta-batch of cfg's sinusoid tasks in dtype."""
    return train.task_batches(tasks.Sinusoid(), meta_batch_size=cfg["meta_batch_size"], k_support=cfg["k_support"],
                              k_query=cfg["k_query"], dtype=dtype)


# Each method has its own random stream, fixed by its name, so its numbers do not depend on which
# other methods are trained alongside it.
METHOD_STREAMS = {"maml": 0, "pretrain": 1, "fomaml": 2, "reptile": 3, "metasgd": 4, "anil": 5}


def initial_params(method, rng, sizes):
    """The parameters `method` starts from: the MLP's theta (nets.mlp_init, float32), for Meta-SGD with
    its step sizes drawn next from the same stream, for ANIL split into body and head."""
    theta = nets.mlp_init(rng, sizes, dtype=np.float32)
    if method == "metasgd":
        return metasgd.params_from_alpha(theta, metasgd.init_alpha(rng, theta))
    if method == "anil":
        return anil.split_mlp(theta)
    return theta


# How the methods whose inner loop is not MAML's adapt at meta-test (written into summary.json).
ADAPTATION = {"metasgd": "Meta-SGD's learned per-parameter step sizes (alpha = exp(log_alpha)), not cfg alpha",
              "anil": "SGD with cfg alpha on the last layer only; the body stays as meta-trained"}


def evaluate_method(method, params, cfg, *, rng, k_shot, steps):
    """Meta-test `method` on fresh tasks: MAML's SGD with alpha for the MLP methods, the learned
    step sizes for Meta-SGD, head-only SGD with alpha for ANIL (same tasks for the same rng)."""
    kw = dict(rng=rng, num_tasks=cfg["eval_tasks"], k_shot=k_shot, k_query=cfg["eval_k_query"], steps=steps)
    if method == "metasgd":
        return metasgd.evaluate(params, tasks.Sinusoid(), **kw)
    if method == "anil":
        return anil.evaluate(params, tasks.Sinusoid(), alpha=cfg["alpha"], **kw)
    return train.evaluate(params, tasks.Sinusoid(), alpha=cfg["alpha"], **kw)


def _train_one(job, progress):
    """Meta-train one method of the job: (method, theta, History, seconds)."""
    _, method, cfg = job
    rng = np.random.default_rng([cfg["seed"], METHOD_STREAMS[method]])
    theta = initial_params(method, rng, [1, *cfg["hidden"], 1])
    iters = cfg["pretrain_iterations"] if method == "pretrain" else cfg["iterations"]
    t0 = time.perf_counter()
    theta, hist = train.meta_train(theta, training_method(method, cfg), training_batches(cfg, np.float32), rng=rng,
                                   iterations=iters, schedule=train.constant(cfg["beta"]), progress=progress,
                                   log_every=100)
    return method, theta, hist, time.perf_counter() - t0


def _check_settings(cfg):
    """Every value the job uses, checked before any training (a bad one fails in seconds, not minutes)."""
    from .._validate import check_alpha, check_count, check_seed
    check_alpha(cfg["alpha"])
    check_alpha(cfg["beta"], "beta")
    if cfg["beta"] == 0:
        raise ValueError("beta must be > 0 (the outer learning rate); the paper uses 0.001.")
    for key, low in (("iterations", 0), ("pretrain_iterations", 0), ("meta_batch_size", 1), ("k_support", 1),
                     ("k_query", 1), ("inner_steps", 0), ("eval_tasks", 1), ("eval_k_query", 1)):
        check_count(cfg[key], key, low)
    check_seed(cfg["seed"])


def run(out_dir, *, progress=True, overwrite=False, methods=("maml", "pretrain"), workers=None, log=print,
        figure=None, refresh_shipped=False, **overrides):
    """Train each method, evaluate on the same fresh tasks, write checkpoints, summary.json (and a figure).

    figure: None, or a function (thetas, summary, path) that draws the run into path (the command
    line passes ``mlcourse.viz.sinusoid.main_job_figure``; plotting sits above the experiments).
    out_dir may not lie inside the installed package unless refresh_shipped is True (what the
    developer command ``mlcourse refresh-results`` passes).

    workers: processes that train methods side by side (default: one per method, up to the cores).
    """
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(DEFAULTS)}.")
    cfg = dict(DEFAULTS, **overrides)
    for m in ("maml", *methods):  # reject a bad maml_loss or an unknown method before any work
        training_method(m, cfg)
    _check_settings(cfg)
    from .shipped import check_out_dir
    check_out_dir(out_dir, refresh_shipped)
    os.makedirs(out_dir, exist_ok=True)
    ckpts = {m: os.path.join(out_dir, f"{m}.npz") for m in methods}
    if not overwrite:
        clash = [p for p in ckpts.values() if os.path.exists(p)]
        if clash:
            raise FileExistsError(f"{clash[0]} exists; pass --overwrite to replace it or choose another --out.")
    start = time.perf_counter()
    sizes = [1, *cfg["hidden"], 1]
    jobs = [(i, m, cfg) for i, m in enumerate(methods)]
    workers = min(len(jobs), os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if workers > 1:  # methods are independent (own seeds): train them side by side, same numbers
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        log(f"training {', '.join(methods)} in {workers} processes")
        from .._runtime import tune_allocator
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=tune_allocator) as pool:
            trained = list(pool.map(_train_one, jobs, [False] * len(jobs)))
    else:
        trained = [_train_one(job, progress) for job in jobs]
    results, thetas, timings = {}, {}, {}
    for method, theta, hist, seconds in trained:
        timings[method] = seconds
        iters = cfg["pretrain_iterations"] if method == "pretrain" else cfg["iterations"]
        log(f"{method}: {iters} iterations in {seconds:.1f} s")
        hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
        hp.update(method=method, sizes=sizes, task="sinusoid")
        train.save_checkpoint(ckpts[method], theta, hp, hist, overwrite=overwrite)
        thetas[method] = theta
        # Every method is scored on the same fresh tasks (same evaluation seed).
        results[method] = evaluate_method(method, theta, cfg, rng=np.random.default_rng([cfg["seed"], 999]),
                                          k_shot=cfg["k_support"], steps=cfg["eval_steps"])
        # The same model adapted from K = 5, 10 and 20 points (more data, better fits: how much?).
        # K equal to the training K is the evaluation above; other K get their own fresh tasks.
        results[method]["by_k"] = {
            str(k): _subset(results[method], (0, 1, 5, 10)) if k == cfg["k_support"] else
            evaluate_method(method, theta, cfg, rng=np.random.default_rng([cfg["seed"], 999, k]), k_shot=k,
                            steps=(0, 1, 5, 10))
            for k in EVAL_K_SHOTS}
        results[method]["history"] = hist.as_dict()
        if method in ADAPTATION:
            results[method]["meta_test_adaptation"] = ADAPTATION[method]
    summary = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "paper": PAPER, "results": results, "train_seconds": timings, "workers": workers,
               # training in parallel processes, then every evaluation: what the command's user waits for
               "wall_seconds": time.perf_counter() - start,
               "checkpoints": {m: os.path.basename(p) for m, p in ckpts.items()}}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if figure is not None:
        fig_path = os.path.join(out_dir, "sinusoid.png")
        figure(thetas, summary, fig_path)
        summary["figure"] = fig_path
    return summary


def format_k_table(summary):
    """Query MSE after 1 and 10 steps when adapting from K = 5, 10, 20 support points."""
    res = summary["results"]
    methods = [m for m in res if "by_k" in res[m]]
    if not methods:
        return ""
    ks = list(res[methods[0]]["by_k"])
    head = f"{'method':>10} | " + " | ".join(f"K={k:<2} 1 step / 10 steps" for k in ks)
    lines = [f"meta-test with K support points (model trained with K = {summary['config']['k_support']})", head,
             "-" * len(head)]
    for m in methods:
        cells = []
        for k in ks:
            r = res[m]["by_k"][k]
            cells.append(f"{r['mse'][r['steps'].index(1)]:>9.3f} / {r['mse'][r['steps'].index(10)]:<8.3f}")
        lines.append(f"{m:>10} | " + " | ".join(f"{c:<24}" for c in cells))
    return "\n".join(lines)


def format_table(summary):
    """Query MSE after k steps: ours (with 95% interval) beside the paper's numbers."""
    res = summary["results"]
    methods = list(res)
    steps = res[methods[0]]["steps"]
    show = [s for s in steps if s in (0, 1, 5, 10)]
    head = f"{'steps':>5} | " + " | ".join(f"{m + ' (ours)':>18}" for m in methods)
    head += " | " + " | ".join(f"{m + ' (paper)':>16}" for m in methods if m in PAPER)
    cfg = summary["config"]
    lines = [f"{cfg['k_support']}-shot sinusoid regression, MSE on {res[methods[0]]['num_tasks']} fresh tasks "
             f"(trained with {cfg['inner_steps']} inner step(s), MAML loss: {cfg['maml_loss']})", head,
             "-" * len(head)]
    for s in show:
        j = steps.index(s)
        row = f"{s:>5} | " + " | ".join(f"{res[m]['mse'][j]:>9.3f} ± {res[m]['ci95'][j]:<6.3f}" for m in methods)
        paper = []
        for m in methods:
            if m in PAPER:
                paper.append(f"{PAPER[m][PAPER['steps'].index(s)]:>16.2f}" if s in PAPER["steps"] else f"{'':>16}")
        lines.append(row + (" | " + " | ".join(paper) if paper else ""))
    return "\n".join(lines)
