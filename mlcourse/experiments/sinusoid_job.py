"""The main job: the MAML paper's sinusoid protocol (Finn, Abbeel & Levine, 2017, section 5.1).

Meta-train with K = 10 support points, alpha = 0.01, one inner step and the query loss after it
(the paper's objective), MLP 1-40-40-1 with ReLU, meta-batch 25, Adam with beta = 1e-3; then
meta-test the same model on fresh tasks adapted from K = 5, 10 and 20 points with 0..10 SGD steps
of size alpha.  5-shot is the headline table, the paper's appendix C.1,
Table 2 (``PAPER``).  One difference: 30000 meta-iterations per method instead of the paper's 70000,
so that the whole job runs in under three minutes on two cores.  Trained side by side
(``DEFAULT_METHODS``):

    maml            the paper's row: one inner step, the query loss after it (``maml_value_and_grad``)
    maml_multistep  the course's improvement: ``multistep_inner_steps`` = 2 inner steps and the
                    multi-step loss, the query loss after every inner step averaged
                    (``maml.multistep_value_and_grad``; notebook 05, section 5, measures both)
    fomaml          FOMAML on maml's objective (same inner steps, same loss, first-order gradient)
    pretrain        one network fitted to all tasks; at meta-test fine-tuned with MAML's alpha, with
                    a step size of its own chosen on validation tasks (``baseline.tune_step_size``,
                    per K; the paper: "using an automatically tuned step size") and with alpha = 0

``--maml-loss multistep --inner-steps 2`` trains ``maml`` itself on the multi-step loss.  Also
trains Reptile (``reptile``), Meta-SGD (``metasgd``: the step sizes learned too; meta-tested with
its learned step sizes) and ANIL (``anil``: only the last layer adapted, at meta-test too) when asked.

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

__all__ = ["PAPER", "PAPER_METASGD", "DEFAULTS", "DEFAULT_METHODS", "METHODS", "run", "format_table",
           "format_k_table", "table_rows", "training_method", "training_batches", "initial_params",
           "evaluate_method", "evaluate_all", "meta_test_rng", "validation_rng", "EVAL_K_SHOTS"]

# Finn, Abbeel & Levine (2017), appendix C.1, Table 2: 5-shot sinusoid MSE after 1 / 5 / 10 gradient steps at
# meta-test, for MAML (meta-trained with K = 10, one inner step) and the pretrained baseline (fine-tuned with a
# tuned step size); and the meta-iterations of section 5.1.
PAPER = {"table": "Finn et al. (2017), appendix C.1, Table 2", "k_shot": 5, "steps": [1, 5, 10],
         "maml": [0.67, 0.38, 0.35], "pretrain": [2.41, 2.23, 2.19], "iterations": 70000}
# Li, Zhou, Chen & Li (2017), Table 1: 5-shot sinusoid regression MSE after one step, in their own setup.
PAPER_METASGD = {"table": "Li et al. (2017), Table 1, 5-shot", "maml": 1.13, "metasgd": 0.90}

DEFAULTS = dict(
    seed=0,
    iterations=30000,        # meta-iterations per method (the paper: 70000)
    pretrain_iterations=30000,  # the pretrained baseline's iterations (the paper does not give them)
    meta_batch_size=25,      # tasks per meta-batch, as in the paper
    k_support=10,            # K support points per task during meta-training, as in the paper
    k_query=10,              # query points per task for the meta-loss
    alpha=0.01,              # inner step size (train and test), as in the paper
    inner_steps=1,           # inner steps during meta-training, as in the paper
    maml_loss="last",        # "last": the query loss after the last inner step (the paper); "multistep": the mean
    multistep_inner_steps=2,  # inner steps of maml_multistep (the multi-step loss, always)
    beta=1e-3,               # Adam outer learning rate, as in the paper
    hidden=(40, 40),
    eval_k_shot=5,           # the headline meta-test: K = 5 (the paper's Table 2)
    eval_tasks=2000,         # fresh meta-test tasks (the 95% interval is about +-0.04 at 1 step)
    eval_steps=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    eval_k_query=100,
    validation_tasks=500,    # tasks on which the pretrained baseline's fine-tuning step size is chosen
)

# What `mlcourse train sinusoid` trains with no --methods: the paper's row, the multi-step objective, FOMAML on
# the paper's objective and the pretrained baseline.
DEFAULT_METHODS = ("maml", "maml_multistep", "fomaml", "pretrain")

EVAL_K_SHOTS = (5, 10, 20)  # meta-test of the same model adapted from K = 5, 10 and 20 support points


def _subset(result, steps):
    """An evaluate() result restricted to the given step counts."""
    idx = [result["steps"].index(s) for s in steps]
    out = {k: v for k, v in result.items() if k not in ("steps", "mse", "ci95", "by_k", "history", "tuned_step")}
    out.update(steps=list(steps), mse=[result["mse"][i] for i in idx], ci95=[result["ci95"][i] for i in idx])
    return out


METHODS = ("maml", "maml_multistep", "fomaml", "reptile", "pretrain", "metasgd", "anil")


def training_method(method, cfg):
    """The value-and-grad function (params, batch) -> (loss, grad) that meta_train gets for `method`.

    MAML's objective is cfg["maml_loss"] ("last", the paper's, or "multistep") with cfg["inner_steps"],
    and so is Meta-SGD's and ANIL's; maml_multistep always trains on the multi-step loss with
    cfg["multistep_inner_steps"]; FOMAML and Reptile get cfg's alpha and inner_steps (FOMAML's loss is
    the query loss after the last step); Meta-SGD gets only the steps (its step sizes are learned,
    initialised in [0.005, 0.1]); the pretrained baseline has no inner loop.
    """
    if method == "pretrain":
        return baseline.pretrain_value_and_grad
    if method in ("maml", "metasgd", "anil") and cfg["maml_loss"] not in ("multistep", "last"):
        raise ValueError(f"maml_loss must be 'multistep' or 'last', got {cfg['maml_loss']!r}.")
    multistep = cfg["maml_loss"] == "multistep"
    if method == "maml_multistep":
        return functools.partial(maml.multistep_value_and_grad, alpha=cfg["alpha"],
                                 inner_steps=cfg["multistep_inner_steps"])
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
METHOD_STREAMS = {"maml": 0, "pretrain": 1, "fomaml": 2, "reptile": 3, "metasgd": 4, "anil": 5, "maml_multistep": 6}


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


def evaluate_method(method, params, cfg, *, rng, k_shot, steps, alpha=None):
    """Meta-test `method` on fresh tasks: MAML's SGD with alpha (default cfg's) for the MLP methods, the
    learned step sizes for Meta-SGD, head-only SGD with alpha for ANIL (same tasks for the same rng)."""
    alpha = cfg["alpha"] if alpha is None else alpha
    kw = dict(rng=rng, num_tasks=cfg["eval_tasks"], k_shot=k_shot, k_query=cfg["eval_k_query"], steps=steps)
    if method == "metasgd":
        return metasgd.evaluate(params, tasks.Sinusoid(), **kw)
    if method == "anil":
        return anil.evaluate(params, tasks.Sinusoid(), alpha=alpha, **kw)
    return train.evaluate(params, tasks.Sinusoid(), alpha=alpha, **kw)


def _eval_k_shots(cfg):
    return tuple(sorted({*EVAL_K_SHOTS, cfg["eval_k_shot"]}))


def meta_test_rng(cfg, k):
    """The generator of the meta-test tasks with K = k support points: the same tasks for every method."""
    return np.random.default_rng([cfg["seed"], 999] if k == cfg["eval_k_shot"] else [cfg["seed"], 999, k])


def validation_rng(cfg, k):
    """The generator of the validation tasks (never the meta-test's) on which a fine-tuning step is chosen."""
    return np.random.default_rng([cfg["seed"], 998, k])


def evaluate_all(method, theta, cfg):
    """Every meta-test of one trained method: query MSE after cfg's eval_steps from K = eval_k_shot points,
    "by_k" after 0, 1, 5, 10 steps from K = 5, 10, 20 (each K its own fresh tasks, the same for every method),
    and for the pretrained baseline "tuned_step": per K, the step size chosen on validation tasks and the
    test MSE with it (and with alpha = 0, no fine-tuning)."""
    result = evaluate_method(method, theta, cfg, rng=meta_test_rng(cfg, cfg["eval_k_shot"]), k_shot=cfg["eval_k_shot"],
                             steps=cfg["eval_steps"])
    few = (0, 1, 5, 10)
    result["by_k"] = {str(k): _subset(result, few) if k == cfg["eval_k_shot"] else
                      evaluate_method(method, theta, cfg, rng=meta_test_rng(cfg, k), k_shot=k, steps=few)
                      for k in _eval_k_shots(cfg)}
    if method == "pretrain":
        result["tuned_step"] = {}
        for k in _eval_k_shots(cfg):
            best, scores = baseline.tune_step_size(theta, tasks.Sinusoid(), rng=validation_rng(cfg, k),
                                                   num_tasks=cfg["validation_tasks"], k_shot=k,
                                                   k_query=cfg["eval_k_query"], steps=PAPER["steps"])
            steps = cfg["eval_steps"] if k == cfg["eval_k_shot"] else few
            tuned = evaluate_method(method, theta, cfg, rng=meta_test_rng(cfg, k), k_shot=k, steps=steps, alpha=best)
            # validation score per candidate alpha (None: its steps diverged)
            tuned.update(alpha=best, validation={str(a): (v if np.isfinite(v) else None) for a, v in scores.items()},
                         validation_tasks=cfg["validation_tasks"])
            result["tuned_step"][str(k)] = tuned
    if method in ADAPTATION:
        result["meta_test_adaptation"] = ADAPTATION[method]
    return result


def _iterations(method, cfg):
    return cfg["pretrain_iterations"] if method == "pretrain" else cfg["iterations"]


def _train_one(job, progress):
    """Meta-train one method of the job: (method, theta, History, seconds)."""
    _, method, cfg = job
    rng = np.random.default_rng([cfg["seed"], METHOD_STREAMS[method]])
    theta = initial_params(method, rng, [1, *cfg["hidden"], 1])
    t0 = time.perf_counter()
    theta, hist = train.meta_train(theta, training_method(method, cfg), training_batches(cfg, np.float32), rng=rng,
                                   iterations=_iterations(method, cfg), schedule=train.constant(cfg["beta"]),
                                   progress=progress, log_every=100)
    return method, theta, hist, time.perf_counter() - t0


def _train_and_evaluate(job, progress):
    """_train_one, then every meta-test of the trained method (in the same process)."""
    method, theta, hist, seconds = _train_one(job, progress)
    return method, theta, hist, seconds, evaluate_all(method, theta, job[2])


# Rough cost of one iteration of each method, relative to MAML's one step: the parallel run starts the
# longest first, so that the processes finish together.
_COST = {"maml": 1.0, "maml_multistep": 1.8, "fomaml": 0.85, "reptile": 1.5, "pretrain": 0.7, "metasgd": 6.0,
         "anil": 4.0}


def _check_settings(cfg):
    """Every value the job uses, checked before any training (a bad one fails in seconds, not minutes)."""
    from .._validate import check_alpha, check_count, check_seed
    check_alpha(cfg["alpha"])
    check_alpha(cfg["beta"], "beta")
    if cfg["beta"] == 0:
        raise ValueError("beta must be > 0 (the outer learning rate); the paper uses 0.001.")
    for key, low in (("iterations", 0), ("pretrain_iterations", 0), ("meta_batch_size", 1), ("k_support", 1),
                     ("k_query", 1), ("inner_steps", 0), ("multistep_inner_steps", 1), ("eval_tasks", 1),
                     ("eval_k_query", 1), ("eval_k_shot", 1), ("validation_tasks", 1)):
        check_count(cfg[key], key, low)
    check_seed(cfg["seed"])


def run(out_dir, *, progress=True, overwrite=False, methods=DEFAULT_METHODS, workers=None, log=print,
        figure=None, refresh_shipped=False, **overrides):
    """Train each method, evaluate on the same fresh tasks, write checkpoints, summary.json (and a figure).

    figure: None, or a function (thetas, summary, path) that draws the run into path (the command
    line passes ``mlcourse.viz.sinusoid.main_job_figure``; plotting sits above the experiments).
    out_dir may not lie inside the installed package unless refresh_shipped is True (what the
    developer command ``mlcourse refresh-results`` passes).

    workers: processes that train and meta-test methods side by side (default: one per method, up to
    the cores); the numbers do not depend on it.
    """
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(DEFAULTS)}.")
    cfg = dict(DEFAULTS, **overrides)
    methods = tuple(methods)
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
        log(f"training and meta-testing {', '.join(methods)} in {workers} processes")
        from .._runtime import tune_allocator
        order = sorted(jobs, key=lambda j: -_COST.get(j[1], 1.0) * _iterations(j[1], cfg))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=tune_allocator) as pool:
            done = {out[0]: out for out in pool.map(_train_and_evaluate, order, [False] * len(order))}
        trained = [done[m] for m in methods]
    else:
        trained = [_train_and_evaluate(job, progress) for job in jobs]
    results, thetas, timings = {}, {}, {}
    for method, theta, hist, seconds, result in trained:
        timings[method] = seconds
        log(f"{method}: {_iterations(method, cfg)} iterations in {seconds:.1f} s")
        hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
        hp.update(method=method, sizes=sizes, task="sinusoid")
        train.save_checkpoint(ckpts[method], theta, hp, hist, overwrite=overwrite)
        thetas[method] = theta
        result["history"] = hist.as_dict()
        results[method] = result
    summary = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "paper": PAPER, "results": results, "train_seconds": timings, "workers": workers,
               # training and meta-testing in parallel processes: what the command's user waits for
               "wall_seconds": time.perf_counter() - start,
               "checkpoints": {m: os.path.basename(p) for m, p in ckpts.items()}}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if figure is not None:
        fig_path = os.path.join(out_dir, "sinusoid.png")
        figure(thetas, summary, fig_path)
        summary["figure"] = fig_path
    return summary


LABELS = {"maml": "MAML", "maml_multistep": "MAML, multi-step", "fomaml": "FOMAML", "reptile": "Reptile",
          "pretrain": "pretrained", "metasgd": "Meta-SGD", "anil": "ANIL"}


def _at(r, steps):
    return [r["mse"][r["steps"].index(s)] for s in steps], [r["ci95"][r["steps"].index(s)] for s in steps]


def table_rows(summary, steps=(0, 1, 5, 10)):
    """The rows of the headline table: [(label, mse after `steps`, ci95, the paper's row or None)] at K =
    eval_k_shot, for every method of the run; the pretrained baseline three times: fine-tuned with MAML's
    alpha, with the step size tuned on validation tasks (the paper's baseline) and with alpha = 0.  The
    paper's Table 2 row stands beside MAML only when it was trained with the paper's objective."""
    res, cfg = summary["results"], summary["config"]
    k = str(cfg.get("eval_k_shot", cfg["k_support"]))
    paper_objective = cfg["inner_steps"] == 1 and cfg["maml_loss"] == "last"

    def steps_of(n):
        return f"{n} step{'s' if n != 1 else ''}"

    rows = []
    for m, r in res.items():
        if m == "pretrain":
            continue
        detail = ""
        if m in ("maml", "metasgd", "anil"):
            detail = (f", {steps_of(cfg['inner_steps'])}, "
                      + ("last-step loss" if cfg["maml_loss"] == "last" else "multi-step loss"))
        elif m == "fomaml":
            detail = f", {steps_of(cfg['inner_steps'])}, last-step loss"
        elif m == "maml_multistep":
            detail = f" loss, {steps_of(cfg['multistep_inner_steps'])}"
        elif m == "reptile":
            detail = f", {steps_of(cfg['inner_steps'])}"
        paper = PAPER["maml"] if m == "maml" and paper_objective else None
        rows.append((LABELS.get(m, m) + detail, *_at(r, steps), paper))
    if "pretrain" in res:
        r = res["pretrain"]
        tuned = r.get("tuned_step", {}).get(k)
        rows.append((f"pretrained, alpha = {cfg['alpha']:g}", *_at(r, steps), None if tuned else PAPER["pretrain"]))
        if tuned:
            rows.append((f"pretrained, tuned alpha = {tuned['alpha']:g}", *_at(tuned, steps), PAPER["pretrain"]))
            m0, c0 = _at(r, [0])
            rows.append(("pretrained, alpha = 0", m0 * len(steps), c0 * len(steps), None))
    return rows


def format_k_table(summary):
    """Query MSE after 1 and 10 steps when adapting from K = 5, 10, 20 support points."""
    res = summary["results"]
    methods = [m for m in res if "by_k" in res[m]]
    if not methods:
        return ""
    ks = list(res[methods[0]]["by_k"])
    head = f"{'method':>24} | " + " | ".join(f"K={k:<2} 1 step / 10 steps" for k in ks)
    lines = [f"meta-test with K support points (model trained with K = {summary['config']['k_support']})", head,
             "-" * len(head)]
    rows = [(LABELS.get(m, m), res[m]["by_k"]) for m in methods]
    if "tuned_step" in res.get("pretrain", {}):
        rows.append(("pretrained, tuned alpha", res["pretrain"]["tuned_step"]))
    width = len(f"K={ks[0]:<2} 1 step / 10 steps")   # the header's cell: the "/" of every row under its "/"
    for label, by_k in rows:
        cells = []
        for k in ks:
            r = by_k[k]
            cells.append(f"{r['mse'][r['steps'].index(1)]:>11.3f} / {r['mse'][r['steps'].index(10)]:<{width - 14}.3f}")
        lines.append((f"{label:>24} | " + " | ".join(f"{c:<{width}}" for c in cells)).rstrip())
    if "tuned_step" in res.get("pretrain", {}):
        t = res["pretrain"]["tuned_step"]
        lines.append("pretrained, tuned alpha: " + ", ".join(f"K = {k}: {t[k]['alpha']:g}" for k in ks if k in t)
                     + f" (chosen on {t[ks[0]]['validation_tasks']} validation tasks per K)")
    return "\n".join(lines)


def format_table(summary):
    """The headline table: query MSE after 0 / 1 / 5 / 10 steps (95% intervals), the paper's Table 2 beside."""
    cfg, res = summary["config"], summary["results"]
    steps = (0, 1, 5, 10)
    rows = table_rows(summary, steps)
    first = next(iter(res.values()))
    width = max(len(r[0]) for r in rows)
    cols = " | ".join(f"{s} step{'s' if s != 1 else ''}".center(15) for s in steps)
    with_paper = any(paper for *_, paper in rows)
    head = f"{'method':<{width}} | {cols}" + (f" | {PAPER['table']}: 1 / 5 / 10 steps" if with_paper else "")
    head = head.rstrip()
    lines = [f"{first['k_shot']}-shot sinusoid regression, query MSE on {first['num_tasks']} fresh tasks (meta-trained "
             f"with K = {cfg['k_support']}, alpha = {cfg['alpha']:g}, {cfg['iterations']} iterations)", head,
             "-" * len(head)]
    for label, mse, ci, paper in rows:
        cells = " | ".join(f"{m:>6.3f} ± {c:<6.3f}" for m, c in zip(mse, ci))
        ref = (" | " + (" / ".join(f"{p:.2f}" for p in paper) if paper else "")) if with_paper else ""
        lines.append(f"{label:<{width}} | {cells}{ref}".rstrip())
    return "\n".join(lines)
