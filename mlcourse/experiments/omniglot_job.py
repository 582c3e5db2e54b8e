"""Few-shot classification on Omniglot: `mlcourse train omniglot --method protonet|maml|fomaml`.

Meta-trains the Conv-4 embedding (``mlcourse.conv``) on the "minimal background" protocol
(``mlcourse.data.protocol``: small1 with rotations, 544 classes) through ``train.meta_train``
(Adam, a step decay of the learning rate), then scores it on the protocol's fixed evaluation
episodes: (a) within-alphabet 20-way 1-shot error and (b) 5-way 1-shot accuracy, with 95% intervals.
ProtoNet is evaluated with BatchNorm's population statistics over all 10,880 training images
(``conv.conv4_population_stats``, computed once after training and stored in the checkpoint), so
each image's embedding depends on that image alone; MAML and FOMAML adapt with each episode's
statistics, as they were trained.

    protonet  Prototypical Networks (Snell et al., 2017): 60-way 1-shot training episodes with 5
              queries per class (higher way in training than at test, as in the paper), Adam 2e-3
              halved every `decay_every` episodes
    fomaml    first-order MAML on the embedding plus a zero-initialised head (``mlcourse.classification``),
              20-way 1-shot episodes, 5 queries per class, a meta-batch of 2, 5 inner steps of alpha = 0.1 (also at test)
    maml      the same with the exact second-order gradient (slower: the hand-written VJPs are
              differentiated again)

Training runs a fixed number of episodes (deterministic given --seed); --time-budget SECONDS
stops earlier and records that it did.  BLAS uses --threads threads (default 2), set explicitly.
Writes <out>/<method>.npz (never overwritten without --overwrite) and <out>/summary.json (one
entry per method; other methods' entries are kept).
"""
from __future__ import annotations

import functools
import json
import os
import time

import numpy as np

from .. import classification, conv, protonet, train
from ..data import omniglot, protocol

__all__ = ["METHODS", "DEFAULTS", "SHIPPED_METHODS", "ONE_THREAD", "add_arguments", "cli", "run", "evaluate",
           "load_model", "load_shipped", "refresh_shipped", "score_with_episode_statistics", "evaluate_oneshot",
           "step_decay", "format_summary", "population_stats"]

ONE_THREAD = False     # the convolutions want both cores: cli sets --threads BLAS threads itself
METHODS = ("protonet", "fomaml", "maml")
SHIPPED_METHODS = ("protonet", "fomaml")
IMAGE_SIZE = 28

DEFAULTS = {
    "protonet": dict(episodes=1500, n_way=60, k_shot=1, k_query=5, lr=2e-3, decay_every=400, meta_batch=1),
    "fomaml": dict(episodes=800, n_way=20, k_shot=1, k_query=5, lr=1e-3, decay_every=300, meta_batch=2,
                   alpha=0.1, inner_steps=5, test_steps=5),
    "maml": dict(episodes=300, n_way=20, k_shot=1, k_query=5, lr=1e-3, decay_every=150, meta_batch=2,
                 alpha=0.1, inner_steps=2, test_steps=10),
}
EVAL_CHUNK = 25    # MAML / FOMAML evaluation episodes per vectorised call
EVAL_IMAGES = 500  # ProtoNet: about this many images per call (larger calls leave the cache and run slower)


def step_decay(beta, every, factor=0.5):
    """beta_t = beta * factor ** floor((t - 1) / every): Adam's rate halved every `every` episodes."""
    beta, every = float(beta), int(every)
    if not (np.isfinite(beta) and beta > 0) or every < 1 or not 0 < factor <= 1:
        raise ValueError(f"step_decay needs beta > 0, every >= 1 and 0 < factor <= 1; got {beta}, {every}, {factor}.")

    def schedule(t):
        return beta * factor ** ((t - 1) // every)
    schedule.__name__ = f"step_decay({beta}, {every}, {factor})"
    return schedule


# ---------------------------------------------------------------------------------------------
# Training

def _hparams(method, overrides=None):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}.")
    hp = dict(DEFAULTS[method])
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        if k not in hp:
            raise ValueError(f"{method} has no setting {k!r}; its settings are {sorted(hp)}.")
        hp[k] = v
    for k in ("episodes", "n_way", "k_shot", "k_query", "decay_every", "meta_batch") + (
            ("inner_steps", "test_steps") if method != "protonet" else ()):
        if isinstance(hp[k], bool) or not isinstance(hp[k], (int, np.integer)) or hp[k] < (0 if k == "inner_steps" else 1):
            raise ValueError(f"{k} must be a positive integer, got {hp[k]!r}.")
    for k in ("lr",) + (("alpha",) if method != "protonet" else ()):
        if not isinstance(hp[k], (int, float)) or not np.isfinite(hp[k]) or hp[k] <= 0:
            raise ValueError(f"{k} must be a positive number, got {hp[k]!r}.")
    if hp["n_way"] < 2:
        raise ValueError(f"n_way must be at least 2, got {hp['n_way']}.")
    if hp["k_shot"] + hp["k_query"] > 20:
        raise ValueError(f"k_shot + k_query = {hp['k_shot'] + hp['k_query']} but Omniglot has 20 drawers per character.")
    return hp


def _sampler(method, hp, data):
    episodes = omniglot.OmniglotEpisodes(data, n_way=hp["n_way"], k_shot=hp["k_shot"], k_query=hp["k_query"])
    if method == "protonet":
        return lambda rng: protonet.Episode.from_sample(episodes.sample(rng))
    return lambda rng: classification.ClassificationBatch.from_episodes(
        protonet.Episode.from_sample(episodes.sample(rng)) for _ in range(hp["meta_batch"]))


def _value_and_grad(method, hp):
    if method == "protonet":
        return protonet.protonet_value_and_grad
    f = classification.fomaml_value_and_grad if method == "fomaml" else classification.maml_value_and_grad
    return functools.partial(f, alpha=hp["alpha"], inner_steps=hp["inner_steps"])


class _BudgetReached(Exception):
    pass


def train_method(method, data, *, seed=0, hparams=None, time_budget=None, progress=True):
    """(theta, record): meta-train `method` on `data` (OmniglotData); record says how long and how far."""
    hp = _hparams(method, hparams)
    if time_budget is not None and not (np.isfinite(time_budget) and time_budget > 0):
        raise ValueError(f"--time-budget must be a positive number of seconds, got {time_budget!r}.")
    rng = np.random.default_rng(seed)
    theta = conv.conv4_init(rng)
    state = {"theta": theta, "done": 0, "loss": []}
    t0 = time.perf_counter()

    def callback(t, params, loss):
        state.update(theta=params, done=t)
        state["loss"].append(loss)
        if time_budget is not None and time.perf_counter() - t0 > time_budget and t < hp["episodes"]:
            raise _BudgetReached
    stopped = False
    try:
        train.meta_train(theta, _value_and_grad(method, hp), _sampler(method, hp, data), rng=rng,
                         iterations=hp["episodes"], schedule=step_decay(hp["lr"], hp["decay_every"]),
                         progress=progress, callback=callback)
    except _BudgetReached:
        stopped = True
    seconds = time.perf_counter() - t0
    loss = np.asarray(state["loss"])
    every = max(1, len(loss) // 100)
    record = {"train_seconds": seconds, "episodes_trained": int(state["done"]), "episodes_planned": hp["episodes"],
              "stopped_by_time_budget": stopped, "time_budget": time_budget, "seed": seed,
              "seconds_per_episode": seconds / max(1, state["done"]),
              "loss_curve": {"episode": list(range(every, len(loss) + 1, every)),
                             "loss": [float(loss[i - every:i].mean()) for i in range(every, len(loss) + 1, every)]}}
    return state["theta"], hp, record


# ---------------------------------------------------------------------------------------------
# Evaluation

def population_stats(theta, data):
    """BatchNorm's statistics over every image of `data` (OmniglotData): what ProtoNet is evaluated with."""
    return conv.conv4_population_stats(theta, np.concatenate(data.classes))


def _predict_chunk(method, theta, hp, xs, ys, xq, n_way):
    """Labels (E, Q) of E episodes stacked: xs (E, N, s, s), ys (E, N), xq (E, Q, s, s).

    ProtoNet embeds each image with the population statistics in hp["population_stats"] (every
    checkpoint this job writes has them; without them, each episode's own statistics); MAML and
    FOMAML adapt and predict with each episode's statistics, as they were trained.
    """
    if method == "protonet":
        z = conv.conv4_apply_episodes(theta, np.concatenate([xs, xq], axis=1).astype(np.float32),
                                      stats=hp.get("population_stats"))
        zs, zq = z[:, :xs.shape[1]], z[:, xs.shape[1]:]
        out = []
        for e in range(len(xs)):
            out.append(np.argmax(protonet.logits(zq[e], protonet.prototypes(zs[e], ys[e], n_way)), axis=1))
        return np.stack(out)
    batch = classification.ClassificationBatch(xs.astype(np.float32), ys, xq.astype(np.float32),
                                               np.zeros(xq.shape[:2], dtype=int), n_way)
    labels, _ = classification.predict(theta, batch, hp["alpha"], hp["test_steps"])
    return labels


def evaluate(method, theta, hp, episode_set, chunk=None, progress=False):
    """Per-episode accuracies on a protocol.EpisodeSet and the seconds per episode (chunk: episodes per call)."""
    if chunk is None:
        per_episode = episode_set.n_way * (1 + episode_set.k_query)
        chunk = max(1, EVAL_IMAGES // per_episode) if method == "protonet" else EVAL_CHUNK
    acc = []
    t0 = time.perf_counter()
    rng = range(0, len(episode_set), chunk)
    if progress:
        from tqdm.auto import tqdm
        rng = tqdm(rng, desc=f"evaluate {episode_set.name}", leave=False)
    for s in rng:
        xs, ys, xq, yq = episode_set.batch(s, s + chunk)
        labels = _predict_chunk(method, theta, hp, xs, ys, xq, episode_set.n_way)
        acc.extend(np.mean(labels == yq, axis=1).tolist())
    return np.asarray(acc), (time.perf_counter() - t0) / len(episode_set)


def _scores(method, theta, hp, episodes, progress=False):
    out = {}
    for key, es in episodes.items():
        acc, sec = evaluate(method, theta, hp, es, progress=progress)
        out[key] = {**protocol.score(acc), "seconds_per_episode": sec, "name": es.name,
                    "per_episode_accuracy": [round(float(a), 6) for a in acc]}
    return out


# ---------------------------------------------------------------------------------------------
# The job

def _read_summary(out):
    path = os.path.join(out, "summary.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def run(method, out, *, seed=0, hparams=None, time_budget=None, overwrite=False, progress=True,
        eval_episodes=protocol.NUM_EPISODES, root=None, command=None):
    """Train one method, evaluate it on the protocol, write <out>/<method>.npz and update <out>/summary.json."""
    wall0 = time.perf_counter()
    hp = _hparams(method, hparams)
    ckpt = os.path.join(out, f"{method}.npz")
    if os.path.exists(ckpt) and not overwrite:
        raise FileExistsError(f"{ckpt} already exists; pass --overwrite to replace it, or choose another --out.")
    t = time.perf_counter()
    data = protocol.training_classes(root)
    eval_data = protocol.evaluation_data(root)
    episodes = {k: v.subset(min(eval_episodes, len(v)))
                for k, v in protocol.evaluation_episodes(eval_data).items()}
    load_seconds = time.perf_counter() - t
    theta, hp, record = train_method(method, data, seed=seed, hparams=hp, time_budget=time_budget, progress=progress)
    t = time.perf_counter()
    stats = population_stats(theta, data) if method == "protonet" else None
    stats_seconds = time.perf_counter() - t
    t = time.perf_counter()
    scores = _scores(method, theta, {**hp, "population_stats": stats}, episodes, progress=progress)
    eval_seconds = time.perf_counter() - t
    meta = {"method": method, "image_size": IMAGE_SIZE, "protocol": "minimal background", **hp}
    if stats is not None:
        meta["population_stats"] = [[mu.tolist(), var.tolist()] for mu, var in stats]
    os.makedirs(out, exist_ok=True)
    train.save_checkpoint(ckpt, theta, meta, {"episode": record["loss_curve"]["episode"],
                                              "loss": record["loss_curve"]["loss"]}, overwrite=overwrite)
    entry = {**{k: v for k, v in record.items() if k != "loss_curve"}, "loss_curve": record["loss_curve"],
             "hparams": hp, "num_params": conv.num_params(theta), "load_seconds": load_seconds,
             # BatchNorm at evaluation: ProtoNet's statistics over all training images, found once after
             # training; MAML / FOMAML's over each episode (their adaptation was trained that way)
             "batchnorm_at_eval": ({"statistics": "population", "images": int(sum(len(c) for c in data.classes)),
                                    "seconds": stats_seconds} if stats is not None else {"statistics": "episode"}),
             "eval_seconds": eval_seconds, "a": scores["a"], "b": scores["b"],
             "adapt_seconds_per_episode": {k: scores[k]["seconds_per_episode"] for k in scores},
             # what changes per test episode: nothing for ProtoNet (prototypes are averages), all of
             # theta plus the n_way-way head for MAML / FOMAML
             "adapted_parameters": {k: 0 if method == "protonet" else
                                    conv.num_params(theta) + (conv.embedding_size() + 1) * episodes[k].n_way
                                    for k in episodes},
             "checkpoint": os.path.basename(ckpt), "checkpoint_bytes": os.path.getsize(ckpt),
             "command": command or f"mlcourse train omniglot --method {method}", "wall_seconds": None}
    entry["wall_seconds"] = time.perf_counter() - wall0
    summary = _read_summary(out)
    summary.setdefault("methods", {})[method] = entry
    summary["protocol"] = {"train": protocol.TRAIN_SPLIT + " + rotations 90/180/270 (544 classes)",
                           "eval_split": protocol.EVAL_SPLIT, "eval_alphabets": list(protocol.EVAL_ALPHABETS),
                           "eval_seed": protocol.EVAL_SEED, "eval_episodes": int(len(episodes["a"])),
                           "a": episodes["a"].name, "b": episodes["b"].name}
    _write_json(os.path.join(out, "summary.json"), summary)
    return entry


def format_summary(method, entry):
    a, b = entry["a"], entry["b"]
    budget = " (stopped by the time budget)" if entry["stopped_by_time_budget"] else ""
    return (f"{method}: {entry['episodes_trained']} training episodes in {entry['train_seconds']:.0f} s{budget}, "
            f"wall time {entry['wall_seconds']:.0f} s\n"
            f"  (a) within-alphabet 20-way 1-shot error {100 * a['error']:.1f}% +- {100 * a['ci95']:.1f}% "
            f"({a['episodes']} episodes)\n"
            f"  (b) 5-way 1-shot accuracy {100 * b['accuracy']:.1f}% +- {100 * b['ci95']:.1f}% ({b['episodes']} episodes)\n"
            f"  adaptation at meta-test: {1e3 * entry['adapt_seconds_per_episode']['a']:.0f} ms per (a) episode; "
            f"{entry['num_params']} parameters" + _bn_line(entry))


def _bn_line(entry):
    bn = entry.get("batchnorm_at_eval", {})
    if bn.get("statistics") != "population":
        return "\n  BatchNorm at evaluation: each episode's own statistics"
    return (f"\n  BatchNorm at evaluation: population statistics of the {bn['images']} training images "
            f"({bn['seconds']:.0f} s)")


def add_arguments(p):
    p.add_argument("--method", choices=METHODS, default="protonet")
    p.add_argument("--out", default=os.path.join("runs", "omniglot"), help="folder for <method>.npz and summary.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=None, help="training episodes (meta-iterations)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop training after this many seconds (recorded in summary.json)")
    p.add_argument("--lr", type=float, default=None, help="Adam's learning rate (default: ProtoNet 2e-3, MAML and FOMAML 1e-3)")
    p.add_argument("--decay-every", type=int, default=None, help="halve the learning rate every this many episodes")
    p.add_argument("--n-way", type=int, default=None, help="classes per training episode")
    p.add_argument("--k-query", type=int, default=None, help="queries per class in training episodes")
    p.add_argument("--meta-batch", type=int, default=None, help="episodes per meta-step (MAML, FOMAML)")
    p.add_argument("--alpha", type=float, default=None, help="inner step size (MAML, FOMAML)")
    p.add_argument("--inner-steps", type=int, default=None, help="inner steps in training (MAML, FOMAML)")
    p.add_argument("--test-steps", type=int, default=None, help="inner steps at evaluation (MAML, FOMAML)")
    p.add_argument("--eval-episodes", type=int, default=protocol.NUM_EPISODES,
                   help="score on the first N of the protocol's 1000 episodes")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    p.add_argument("--no-progress", action="store_true")


def _overrides(args):
    keys = ("episodes", "lr", "decay_every", "n_way", "k_query", "meta_batch", "alpha", "inner_steps", "test_steps")
    over = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.method == "protonet":
        bad = [k for k in over if k not in DEFAULTS["protonet"] or k == "meta_batch"]
        if bad:
            raise ValueError(f"--{bad[0].replace('_', '-')} is a MAML/FOMAML setting; protonet does not use it.")
    return over


def cli(args):
    from .. import _blas
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}.")
    if args.eval_episodes < 2:
        raise ValueError(f"--eval-episodes must be at least 2 (an interval needs two), got {args.eval_episodes}.")
    previous = _blas.limit_threads(args.threads)
    print(f"BLAS threads: {args.threads}" + ("" if previous is not None else " (no OpenBLAS found: not set)"))
    try:
        over = _overrides(args)
        entry = run(args.method, args.out, seed=args.seed, hparams=over, time_budget=args.time_budget,
                    overwrite=args.overwrite, progress=not args.no_progress, eval_episodes=args.eval_episodes,
                    command="mlcourse train omniglot " + " ".join(
                        [f"--method {args.method}", f"--seed {args.seed}"]
                        + [f"--{k.replace('_', '-')} {v}" for k, v in over.items()]
                        + ([f"--time-budget {args.time_budget:g}"] if args.time_budget else [])))
    finally:
        if previous is not None:
            _blas.limit_threads(previous)      # called in-process (tests, notebooks): leave the count as it was
    print(format_summary(args.method, entry))
    print(f"wrote {os.path.join(args.out, args.method + '.npz')} and {os.path.join(args.out, 'summary.json')}")
    return 0


# ---------------------------------------------------------------------------------------------
# Checkpoints, shipped results, the one-shot benchmark

def load_model(checkpoint, method=None, image_size=IMAGE_SIZE):
    """(method, theta, hparams) of a checkpoint written by this job; ValueError for anything else."""
    theta, hp, _ = train.load_checkpoint(checkpoint)
    got = hp.get("method")
    if got not in METHODS or hp.get("protocol") != "minimal background":
        raise ValueError(f"{checkpoint} is not an Omniglot checkpoint of `mlcourse train omniglot` "
                         f"(method {got!r}); train one with `mlcourse train omniglot --method protonet`.")
    if method is not None and got != method:
        raise ValueError(f"{checkpoint} holds a {got} model, not {method}; pass a {method} checkpoint.")
    if hp.get("image_size") != image_size:
        raise ValueError(f"{checkpoint} was trained on {hp.get('image_size')}x{hp.get('image_size')} images but "
                         f"these are {image_size}x{image_size}; use a checkpoint trained at {image_size}x{image_size}.")
    try:
        conv.check_conv4_params(theta, in_channels=1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{checkpoint}: its parameters are not a Conv-4 embedding ({e}).") from None
    theta = [tuple(block) for block in theta]
    if hp.get("population_stats") is not None:
        try:
            hp["population_stats"] = conv.check_population_stats([tuple(p) for p in hp["population_stats"]], theta)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{checkpoint}: its BatchNorm statistics are damaged ({e}); train it again with "
                             "`mlcourse train omniglot`.") from None
    return got, theta, hp


def load_shipped(folder):
    """{"summary", "theta": {method: theta}, "hparams": {method: dict}, "bench" (or None), "dir"}."""
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    theta, hparams = {}, {}
    for m in summary.get("methods", {}):
        _, theta[m], hparams[m] = load_model(os.path.join(folder, f"{m}.npz"), m)
    bench_path = os.path.join(folder, "bench.json")
    bench = None
    if os.path.exists(bench_path):
        with open(bench_path) as f:
            bench = json.load(f)
    return {"summary": summary, "theta": theta, "hparams": hparams, "bench": bench, "dir": folder}


def score_with_episode_statistics(folder, root=None, progress=True):
    """Score <folder>/protonet.npz again with each episode's own BatchNorm statistics.

    Stored under summary["methods"]["protonet"]["episode_statistics"] ({"a", "b"}, as the main
    scores, per-episode accuracies included) on the same fixed episodes: what the README's remark
    that either choice moves the scores by less than their intervals is checked against.
    """
    path = os.path.join(folder, "summary.json")
    summary = _read_summary(folder)
    if "protonet" not in summary.get("methods", {}):
        raise FileNotFoundError(f"{path} has no ProtoNet entry; train one with "
                                f"`mlcourse train omniglot --method protonet --out {folder}` first.")
    _, theta, hp = load_model(os.path.join(folder, "protonet.npz"), "protonet")
    own = {k: v for k, v in hp.items() if k != "population_stats"}
    n = summary["protocol"]["eval_episodes"]
    episodes = {k: v.subset(min(n, len(v)))
                for k, v in protocol.evaluation_episodes(protocol.evaluation_data(root)).items()}
    scores = _scores("protonet", theta, own, episodes, progress=progress)
    summary["methods"]["protonet"]["episode_statistics"] = {k: scores[k] for k in "ab"}
    _write_json(path, summary)
    return summary["methods"]["protonet"]["episode_statistics"]


def refresh_shipped(folder, progress=True, reference_python=None):
    """Recompute the shipped results: ProtoNet and FOMAML with the defaults, then the benchmark."""
    from .. import _blas
    _blas.limit_threads(2)
    for m in SHIPPED_METHODS:
        entry = run(m, folder, overwrite=True, progress=progress,
                    command=f"mlcourse train omniglot --method {m} --out {folder} --overwrite")
        print(format_summary(m, entry))
    own = score_with_episode_statistics(folder, progress=progress)
    print(f"protonet with each episode's own BatchNorm statistics: (a) error {100 * own['a']['error']:.1f}%, "
          f"(b) accuracy {100 * own['b']['accuracy']:.1f}%")
    from . import omniglot_bench
    argv = ["--json", os.path.join(folder, "bench.json")]
    if reference_python:
        argv += ["--reference-python", reference_python]
    omniglot_bench.main(argv)


def _shipped_dir():
    from . import shipped
    return shipped.path("omniglot")


def evaluate_oneshot(runs, checkpoint=None):
    """Score a model on one-shot runs (each: name, x_support (N, s, s), x_query (N, s, s), y_query (N,)).

    y_query[q] is the index of the support image that query q matches.  Default model: the shipped
    ProtoNet.  MAML / FOMAML checkpoints adapt on each run's support images (zero head, their test steps).
    Returns {"errors": per-run error, "error", "ci95" (over runs), "method", "checkpoint"}.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("no runs to evaluate; pass the runs of a one-shot benchmark folder (run01 ... run20).")
    path = checkpoint if checkpoint is not None else os.path.join(_shipped_dir(), "protonet.npz")
    method, theta, hp = load_model(path, image_size=int(np.shape(runs[0].x_support)[-1]))
    errors = []
    for r in runs:
        xs, xq, yq = (np.asarray(getattr(r, k)) for k in ("x_support", "x_query", "y_query"))
        if xs.ndim != 3 or xq.ndim != 3 or yq.shape != (len(xq),):
            raise ValueError(f"run {getattr(r, 'name', '?')}: x_support and x_query must be (n, s, s) images and "
                             "y_query one index per query.")
        if xs.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or xq.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"run {getattr(r, 'name', '?')}: images are {xs.shape[1:]}, the model takes "
                             f"{IMAGE_SIZE}x{IMAGE_SIZE}; decode the benchmark at size {IMAGE_SIZE}.")
        n = len(xs)
        labels = _predict_chunk(method, theta, hp, xs[None], np.arange(n)[None], xq[None], n)[0]
        errors.append(float(np.mean(labels != yq)))
    e = np.asarray(errors)
    return {"errors": errors, "error": float(e.mean()),
            "ci95": float(1.96 * e.std(ddof=1) / np.sqrt(len(e))) if len(e) > 1 else 0.0,
            "method": method, "checkpoint": os.path.abspath(path)}
