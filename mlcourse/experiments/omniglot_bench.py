"""`mlcourse bench omniglot`: the NumPy Conv-4 engine against PyTorch, per training episode.

Rows, each timed in its own fresh process with 2 threads (OPENBLAS_NUM_THREADS / torch.set_num_threads):

    protonet   one ProtoNet training step on a 60-way 1-shot episode with 5 queries per class
               (360 images of 28x28): loss, gradient and an Adam update.  NumPy: the public API
               (protonet.protonet_value_and_grad, train.adam_update), nothing tuned first.
    fomaml     one FOMAML meta-step on the same episode: a zero head, 5 inner SGD steps (alpha = 0.1)
               on the 60 support images, the query gradient at the adapted parameters, an Adam update.

PyTorch (the same architecture: Conv2d(3x3, padding 1, no bias) -> BatchNorm2d in training mode ->
ReLU -> MaxPool2d(2), 4 blocks of 64 channels; ``torch.func.functional_call`` for FOMAML) runs from
``--reference-python PATH`` (an environment with torch; it is never a dependency); without it those
rows are skipped with the reason printed.  Both see the same real Omniglot episode when the data are
found (random images otherwise).  Times are medians of the timed repeats of each process, then the
median over --rounds processes; memory is each process's peak resident set size (VmHWM).
Also prints the loader's cold load of small1 (decode, downsample, write the cache) against the warm
load (read the cache).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

__all__ = ["main", "run", "format_table", "loader_times"]

N_WAY, K_SHOT, K_QUERY = 60, 1, 5
ALPHA, INNER_STEPS = 0.1, 5
THREADS = 2

_COMMON = r'''
import json, sys, time
import numpy as np
def vmhwm():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
d = np.load(sys.argv[1])
xs, ys, xq, yq = d["xs"], d["ys"], d["xq"], d["yq"]
n_way, warmup, repeats, path = int(d["n_way"]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
alpha, inner = float(d["alpha"]), int(d["inner"])
'''

_NUMPY = _COMMON + r'''
import numpy as onp
from mlcourse import classification, conv, protonet, train
rng = np.random.default_rng(0)
theta = conv.conv4_init(rng)
state = train.adam_init(theta)
ep = protonet.Episode(xs, ys, xq, yq, n_way)
batch = classification.ClassificationBatch(xs[None], ys[None], xq[None], yq[None], n_way)
def step(theta, state):
    if path == "protonet":
        loss, g = protonet.protonet_value_and_grad(theta, ep)
    else:
        loss, g = classification.fomaml_value_and_grad(theta, batch, alpha=alpha, inner_steps=inner)
    theta, state = train.adam_update(state, theta, g, 1e-3)
    return theta, state, loss
times = []
for i in range(warmup + repeats):
    t = time.perf_counter()
    theta, state, loss = step(theta, state)
    if i >= warmup:
        times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "peak_mib": vmhwm(), "loss": float(loss)}))
'''

_TORCH = _COMMON + r'''
import torch
torch.set_num_threads(int(sys.argv[5]))
torch.manual_seed(0)
def block(c):
    return torch.nn.Sequential(torch.nn.Conv2d(c, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64),
                               torch.nn.ReLU(), torch.nn.MaxPool2d(2))
net = torch.nn.Sequential(block(1), block(64), block(64), block(64), torch.nn.Flatten())
net.train()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
Xs = torch.from_numpy(xs[:, None].astype(np.float32)); Xq = torch.from_numpy(xq[:, None].astype(np.float32))
Ys = torch.from_numpy(ys.astype(np.int64)); Yq = torch.from_numpy(yq.astype(np.int64))
X = torch.cat([Xs, Xq])
def protonet_step():
    opt.zero_grad()
    z = net(X)
    zs, zq = z[:len(Xs)], z[len(Xs):]
    protos = torch.zeros(n_way, z.shape[1]).index_add_(0, Ys, zs) / torch.bincount(Ys, minlength=n_way)[:, None]
    d2 = (zq * zq).sum(1, keepdim=True) - 2 * zq @ protos.T + (protos * protos).sum(1)[None]
    loss = torch.nn.functional.cross_entropy(-d2, Yq)
    loss.backward()
    opt.step()
    return float(loss)
from torch.func import functional_call
names = [n for n, _ in net.named_parameters()]
buffers = dict(net.named_buffers())
def logits(params, W, b, x):
    return functional_call(net, ({**params}, buffers), (x,)) @ W + b
def fomaml_step():
    opt.zero_grad()
    params = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    W = torch.zeros(64, n_way, requires_grad=True); b = torch.zeros(n_way, requires_grad=True)
    for _ in range(inner):
        loss = torch.nn.functional.cross_entropy(logits(params, W, b, Xs), Ys)
        grads = torch.autograd.grad(loss, list(params.values()) + [W, b])
        params = {n: (p - alpha * g).detach().requires_grad_(True) for (n, p), g in zip(params.items(), grads)}
        W = (W - alpha * grads[-2]).detach().requires_grad_(True); b = (b - alpha * grads[-1]).detach().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(logits(params, W, b, Xq), Yq)
    grads = torch.autograd.grad(loss, list(params.values()))
    for p, g in zip(net.parameters(), grads):
        p.grad = g
    opt.step()
    return float(loss)
step = protonet_step if path == "protonet" else fomaml_step
times = []
for i in range(warmup + repeats):
    t = time.perf_counter()
    loss = step()
    if i >= warmup:
        times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "peak_mib": vmhwm(), "loss": loss, "torch": torch.__version__}))
'''


def _episode(tmpdir):
    """A real 60-way 1-shot episode with 5 queries (random images without the data), saved for the workers."""
    source = "random images (Omniglot not found)"
    try:
        from ..data import omniglot, protocol
        data = protocol.training_classes()
        xs, ys, xq, yq, _ = omniglot.OmniglotEpisodes(data, N_WAY, K_SHOT, K_QUERY).sample(np.random.default_rng(0))
        source = "Omniglot small1 + rotations"
    except (FileNotFoundError, ImportError, ValueError):
        rng = np.random.default_rng(0)
        xs, xq = rng.random((N_WAY * K_SHOT, 28, 28)), rng.random((N_WAY * K_QUERY, 28, 28))
        ys, yq = np.repeat(np.arange(N_WAY), K_SHOT), np.repeat(np.arange(N_WAY), K_QUERY)
    path = os.path.join(tmpdir, "episode.npz")
    np.savez(path, xs=xs.astype(np.float32), ys=ys, xq=xq.astype(np.float32), yq=yq, n_way=N_WAY, alpha=ALPHA,
             inner=INNER_STEPS)
    return path, source


def _worker(python, script, episode, path, warmup, repeats, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out = subprocess.run([python, "-c", script, episode, str(warmup), str(repeats), path, str(threads)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker ({python}, {path}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_torch(python):
    if not python:
        return "no --reference-python given"
    if not os.path.exists(python):
        return f"{python} does not exist"
    r = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"torch is not installed in {python}"


def loader_times(tmpdir):
    """(cold seconds, warm seconds) of load_split('images_background_small1') into a fresh cache folder."""
    from ..data import omniglot
    cache = os.path.join(tmpdir, "cache")
    t = time.perf_counter()
    omniglot.load_split("images_background_small1", cache_dir=cache)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(3):
        t = time.perf_counter()
        omniglot.load_split("images_background_small1", cache_dir=cache)
        warm.append(time.perf_counter() - t)
    return cold, float(np.median(warm))


def run(reference_python=None, rounds=3, warmup=2, repeats=5, threads=THREADS, paths=("protonet", "fomaml")):
    """Time every row; returns the result dict that --json writes."""
    reason = _has_torch(reference_python)
    res = {"setup": {"n_way": N_WAY, "k_shot": K_SHOT, "k_query": K_QUERY, "images": N_WAY * (K_SHOT + K_QUERY),
                     "fomaml_alpha": ALPHA, "fomaml_inner_steps": INNER_STEPS, "threads": threads,
                     "rounds": rounds, "warmup": warmup, "repeats": repeats, "numpy": np.__version__},
           "rows": {}, "torch_skipped": reason}
    with tempfile.TemporaryDirectory() as tmp:
        episode, source = _episode(tmp)
        res["setup"]["episode"] = source
        try:
            cold, warm = loader_times(tmp)
            res["loader"] = {"cold_seconds": cold, "warm_seconds": warm, "speedup": cold / warm}
        except (FileNotFoundError, ImportError) as e:
            res["loader"] = {"skipped": str(e).splitlines()[0]}
        for path in paths:
            per = {"numpy": [], "torch": []}
            mem = {"numpy": [], "torch": []}
            for r in range(rounds):
                order = ["numpy", "torch"] if r % 2 == 0 else ["torch", "numpy"]
                for lib in order:
                    if lib == "torch" and reason:
                        continue
                    out = _worker(sys.executable if lib == "numpy" else reference_python,
                                  _NUMPY if lib == "numpy" else _TORCH, episode, path, warmup, repeats, threads)
                    per[lib].append(float(np.median(out["times"])))
                    mem[lib].append(out["peak_mib"])
                    if lib == "torch":
                        res["setup"]["torch"] = out.get("torch")
            row = {lib: {"seconds": float(np.median(per[lib])), "per_round": per[lib],
                         "peak_mib": float(np.max(mem[lib]))} for lib in per if per[lib]}
            if "torch" in row:
                row["ratio_numpy_over_torch"] = row["numpy"]["seconds"] / row["torch"]["seconds"]
            res["rows"][path] = row
    return res


def format_table(res):
    s = res["setup"]
    lines = [f"Conv-4 on {s['images']} images of 28x28 ({s['n_way']}-way {s['k_shot']}-shot, {s['k_query']} queries "
             f"per class; {s['episode']}), {s['threads']} threads, median of {s['repeats']} steps per process, "
             f"median over {s['rounds']} processes",
             f"{'step':<34}{'NumPy s':>9}{'PyTorch s':>11}{'NumPy/PyTorch':>15}{'NumPy MiB':>11}{'PyTorch MiB':>13}"]
    names = {"protonet": "ProtoNet training episode", "fomaml": f"FOMAML meta-step ({s['fomaml_inner_steps']} inner)"}
    for path, row in res["rows"].items():
        t = row.get("torch")
        lines.append(f"{names[path]:<34}{row['numpy']['seconds']:>9.3f}"
                     + (f"{t['seconds']:>11.3f}{row['ratio_numpy_over_torch']:>15.2f}" if t else f"{'-':>11}{'-':>15}")
                     + f"{row['numpy']['peak_mib']:>11.0f}" + (f"{t['peak_mib']:>13.0f}" if t else f"{'-':>13}"))
    if res.get("torch_skipped"):
        lines.append(f"PyTorch rows skipped: {res['torch_skipped']} (pass --reference-python PATH to a Python with torch)")
    ld = res.get("loader", {})
    if "cold_seconds" in ld:
        lines.append(f"loader, images_background_small1: cold (decode, downsample, write cache) {ld['cold_seconds']:.2f} s, "
                     f"warm (from cache) {ld['warm_seconds']:.3f} s: {ld['speedup']:.0f}x faster")
    else:
        lines.append(f"loader timing skipped: {ld.get('skipped')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="mlcourse bench omniglot", description=__doc__.split("\n")[0])
    p.add_argument("--reference-python", default=None, metavar="PATH", help="a Python with torch (side environment)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per row and library")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per process (after 2 warm-up steps)")
    p.add_argument("--paths", default="protonet,fomaml", help="comma list of protonet, fomaml")
    args = p.parse_args(argv)
    paths = [x for x in args.paths.split(",") if x]
    bad = [x for x in paths if x not in ("protonet", "fomaml")]
    if bad or args.rounds < 1 or args.repeats < 1:
        print(f"mlcourse bench omniglot: error: " + (f"unknown path(s) {bad}; use protonet, fomaml" if bad
                                                     else "--rounds and --repeats must be at least 1"),
              file=sys.stderr)
        return 1
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"mlcourse bench omniglot: error: the folder of --json {args.json} does not exist", file=sys.stderr)
        return 1
    res = run(args.reference_python, rounds=args.rounds, repeats=args.repeats, paths=paths)
    print(format_table(res))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=1)
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")
    return 0
