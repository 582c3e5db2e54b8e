"""`mlcourse bench omniglot`: the NumPy Conv-4 engine against PyTorch, per training episode.

Rows, each timed in its own fresh process with 2 threads (OPENBLAS_NUM_THREADS / torch.set_num_threads),
confined to 2 CPUs (``_cpus``):

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
median over --rounds processes; memory is each process's peak resident set size (VmHWM), read before
the gradient check below.

Gradient check, in the same run: both sides start from the same parameters (NumPy's
``conv4_init(default_rng(0))``, copied into PyTorch's layout) and, after their timed steps, each
first-round process computes its step's gradient once more in float64 at those parameters; the
table gives max |g_numpy - g_torch| / max |g_torch| over every parameter (rounding only: ~1e-12).
Also prints the loader's cold load of small1 (decode, downsample, write the cache) against the warm
load (read the cache), and the machine's load average before and after.
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

from . import _cpus

__all__ = ["main", "run", "format_table", "loader_times"]

N_WAY, K_SHOT, K_QUERY = 60, 1, 5
ALPHA, INNER_STEPS = 0.1, 5
THREADS = 2

# the start of every timed script (this module's and rl_bench's): its peak resident memory, VmHWM in MiB
SCRIPT_PRELUDE = r'''
import json, sys, time
import numpy as np
def vmhwm():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
'''

_COMMON = SCRIPT_PRELUDE + r'''
d = np.load(sys.argv[1])
xs, ys, xq, yq = d["xs"], d["ys"], d["xq"], d["yq"]
n_way, warmup, repeats, path = int(d["n_way"]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
alpha, inner = float(d["alpha"]), int(d["inner"])
theta0 = [(d[f"W{i}"], d[f"gamma{i}"], d[f"beta{i}"]) for i in range(int(d["blocks"]))]
grad_out = sys.argv[6] if len(sys.argv) > 6 else ""
'''

_NUMPY = _COMMON + r'''
import numpy as onp
from mlcourse import classification, conv, protonet, train
theta = [tuple(a.copy() for a in block) for block in theta0]      # conv.conv4_init(default_rng(0))
state = train.adam_init(theta)
ep = protonet.Episode(xs, ys, xq, yq, n_way)
batch = classification.ClassificationBatch(xs[None], ys[None], xq[None], yq[None], n_way)
def value_and_grad(theta, ep, batch):
    if path == "protonet":
        return protonet.protonet_value_and_grad(theta, ep)
    return classification.fomaml_value_and_grad(theta, batch, alpha=alpha, inner_steps=inner)
def step(theta, state):
    loss, g = value_and_grad(theta, ep, batch)
    theta, state = train.adam_update(state, theta, g, 1e-3)
    return theta, state, loss
times = []
for i in range(warmup + repeats):
    t = time.perf_counter()
    theta, state, loss = step(theta, state)
    if i >= warmup:
        times.append(time.perf_counter() - t)
peak = vmhwm()
if grad_out:       # float64 gradient at the shared starting parameters, after the timing and the memory peak
    f64 = lambda a: a.astype(np.float64)
    ep64 = protonet.Episode(f64(xs), ys, f64(xq), yq, n_way)
    batch64 = classification.ClassificationBatch(f64(xs)[None], ys[None], f64(xq)[None], yq[None], n_way)
    loss64, g = value_and_grad([tuple(f64(a) for a in block) for block in theta0], ep64, batch64)
    np.savez(grad_out, loss=loss64, **{f"{k}{i}": a for i, block in enumerate(g) for k, a in zip(("W", "gamma", "beta"), block)})
print(json.dumps({"times": times, "peak_mib": peak, "loss": float(loss)}))
'''

_TORCH = _COMMON + r'''
import torch
torch.set_num_threads(int(sys.argv[5]))
torch.manual_seed(0)
def block(c):
    return torch.nn.Sequential(torch.nn.Conv2d(c, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64),
                               torch.nn.ReLU(), torch.nn.MaxPool2d(2))
net = torch.nn.Sequential(block(1), block(64), block(64), block(64), torch.nn.Flatten())
def load_theta(theta, dtype):
    """NumPy's blocks (W (3, 3, C_in, C_out), gamma, beta) into the modules, in `dtype`."""
    net.to(dtype)
    with torch.no_grad():
        for blk, (W, gamma, beta) in zip(net[:4], theta):
            blk[0].weight.copy_(torch.from_numpy(W.transpose(3, 2, 0, 1).copy()))
            blk[1].weight.copy_(torch.from_numpy(gamma)); blk[1].bias.copy_(torch.from_numpy(beta))
load_theta(theta0, torch.float32)
net.train()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
Ys = torch.from_numpy(ys.astype(np.int64)); Yq = torch.from_numpy(yq.astype(np.int64))
def images(dtype):
    Xs, Xq = (torch.from_numpy(x[:, None].astype(np.float32)).to(dtype) for x in (xs, xq))
    return Xs, Xq, torch.cat([Xs, Xq])
Xs, Xq, X = images(torch.float32)
def protonet_grads():
    z = net(X)
    zs, zq = z[:len(Xs)], z[len(Xs):]
    protos = torch.zeros(n_way, z.shape[1], dtype=z.dtype).index_add_(0, Ys, zs) / torch.bincount(Ys, minlength=n_way)[:, None]
    d2 = (zq * zq).sum(1, keepdim=True) - 2 * zq @ protos.T + (protos * protos).sum(1)[None]
    loss = torch.nn.functional.cross_entropy(-d2, Yq)
    return loss, torch.autograd.grad(loss, list(net.parameters()))
from torch.func import functional_call
names = [n for n, _ in net.named_parameters()]
def logits(params, W, b, x):
    return functional_call(net, ({**params}, dict(net.named_buffers())), (x,)) @ W + b
def fomaml_grads():
    dt = X.dtype
    params = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    W = torch.zeros(64, n_way, dtype=dt, requires_grad=True); b = torch.zeros(n_way, dtype=dt, requires_grad=True)
    for _ in range(inner):
        loss = torch.nn.functional.cross_entropy(logits(params, W, b, Xs), Ys)
        grads = torch.autograd.grad(loss, list(params.values()) + [W, b])
        params = {n: (p - alpha * g).detach().requires_grad_(True) for (n, p), g in zip(params.items(), grads)}
        W = (W - alpha * grads[-2]).detach().requires_grad_(True); b = (b - alpha * grads[-1]).detach().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(logits(params, W, b, Xq), Yq)
    return loss, torch.autograd.grad(loss, list(params.values()))
grads_of = protonet_grads if path == "protonet" else fomaml_grads
def step():
    opt.zero_grad()
    loss, grads = grads_of()
    for p, g in zip(net.parameters(), grads):
        p.grad = g
    opt.step()
    return float(loss)
times = []
for i in range(warmup + repeats):
    t = time.perf_counter()
    loss = step()
    if i >= warmup:
        times.append(time.perf_counter() - t)
peak = vmhwm()
if grad_out:       # float64 gradient at the shared starting parameters, after the timing and the memory peak
    load_theta(theta0, torch.float64)
    Xs, Xq, X = images(torch.float64)
    loss64, grads = grads_of()
    g = [x.detach().numpy() for x in grads]      # per block: conv weight (C_out, C_in, 3, 3), BN weight, BN bias
    np.savez(grad_out, loss=float(loss64), **{f"{k}{i}": (g[3 * i].transpose(2, 3, 1, 0) if k == "W" else g[3 * i + j])
                                              for i in range(len(theta0)) for j, k in enumerate(("W", "gamma", "beta"))})
print(json.dumps({"times": times, "peak_mib": peak, "loss": loss, "torch": torch.__version__}))
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
    from .. import conv
    theta = conv.conv4_init(np.random.default_rng(0))
    path = os.path.join(tmpdir, "episode.npz")
    np.savez(path, xs=xs.astype(np.float32), ys=ys, xq=xq.astype(np.float32), yq=yq, n_way=N_WAY, alpha=ALPHA,
             inner=INNER_STEPS, blocks=len(theta),
             **{f"{k}{i}": a for i, block in enumerate(theta) for k, a in zip(("W", "gamma", "beta"), block)})
    return path, source


def _worker(python, script, data, row, warmup, repeats, threads, grad_out=""):
    """Run a timed script (this module's or rl_bench's) in a fresh process with `threads` BLAS / OpenMP threads,
    confined to that many CPUs; returns the JSON dict of its last line."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out = subprocess.run([python, "-c", script, data, str(warmup), str(repeats), row, str(threads), grad_out],
                         capture_output=True, text=True, env=env, preexec_fn=_cpus.pin(threads))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker ({python}, {row}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def gradient_check(numpy_npz, torch_npz):
    """{"rel_error": max |g_numpy - g_torch| / max |g_torch| over every parameter, "loss_difference"}."""
    a, b = np.load(numpy_npz), np.load(torch_npz)
    keys = sorted(k for k in a.files if k != "loss")
    if keys != sorted(k for k in b.files if k != "loss"):
        raise ValueError(f"the two gradients hold different parameters: {keys} and {sorted(b.files)}")
    scale = max(float(np.max(np.abs(b[k]))) for k in keys)
    diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in keys)
    return {"rel_error": diff / max(scale, 1e-300), "loss_difference": abs(float(a["loss"]) - float(b["loss"])),
            "dtype": "float64"}


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
                     "cpus": _cpus.describe(threads),
                     "rounds": rounds, "warmup": warmup, "repeats": repeats, "numpy": np.__version__,
                     "load_average_before": _load()},
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
            grads = {lib: os.path.join(tmp, f"grad_{path}_{lib}.npz") for lib in per}
            for r in range(rounds):
                order = ["numpy", "torch"] if r % 2 == 0 else ["torch", "numpy"]
                for lib in order:
                    if lib == "torch" and reason:
                        continue
                    out = _worker(sys.executable if lib == "numpy" else reference_python,
                                  _NUMPY if lib == "numpy" else _TORCH, episode, path, warmup, repeats, threads,
                                  grads[lib] if r == 0 and not reason else "")
                    per[lib].append(float(np.median(out["times"])))
                    mem[lib].append(out["peak_mib"])
                    if lib == "torch":
                        res["setup"]["torch"] = out.get("torch")
            row = {lib: {"seconds": float(np.median(per[lib])), "per_round": per[lib],
                         "peak_mib": float(np.max(mem[lib]))} for lib in per if per[lib]}
            if "torch" in row:
                row["ratio_numpy_over_torch"] = row["numpy"]["seconds"] / row["torch"]["seconds"]
                row["gradient_check"] = gradient_check(grads["numpy"], grads["torch"])
            res["rows"][path] = row
    res["setup"]["load_average_after"] = _load()
    return res


def _load():
    """The machine's 1, 5 and 15 minute load averages (None where the system does not say)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def format_table(res):
    s = res["setup"]
    on = f" on {s['cpus']}" if s.get("cpus") else ""
    lines = [f"Conv-4 on {s['images']} images of 28x28 ({s['n_way']}-way {s['k_shot']}-shot, {s['k_query']} queries "
             f"per class; {s['episode']}), {s['threads']} threads{on}, median of {s['repeats']} steps per process, "
             f"median over {s['rounds']} processes",
             f"{'step':<34}{'NumPy s':>9}{'PyTorch s':>11}{'NumPy/PyTorch':>15}{'NumPy MiB':>11}{'PyTorch MiB':>13}"
             f"{'gradient rel. diff':>20}"]
    names = {"protonet": "ProtoNet training episode", "fomaml": f"FOMAML meta-step ({s['fomaml_inner_steps']} inner)"}
    for path, row in res["rows"].items():
        t = row.get("torch")
        check = row.get("gradient_check")
        lines.append(f"{names[path]:<34}{row['numpy']['seconds']:>9.3f}"
                     + (f"{t['seconds']:>11.3f}{row['ratio_numpy_over_torch']:>15.2f}" if t else f"{'-':>11}{'-':>15}")
                     + f"{row['numpy']['peak_mib']:>11.0f}" + (f"{t['peak_mib']:>13.0f}" if t else f"{'-':>13}")
                     + (f"{check['rel_error']:>20.1e}" if check else f"{'-':>20}"))
    if any(row.get("gradient_check") for row in res["rows"].values()):
        lines.append("gradient rel. diff: max |g_NumPy - g_PyTorch| / max |g_PyTorch| over all parameters, both in "
                     "float64 at the same starting parameters")
    if res.get("torch_skipped"):
        lines.append(f"PyTorch rows skipped: {res['torch_skipped']} (pass --reference-python PATH to a Python with torch)")
    ld = res.get("loader", {})
    if "cold_seconds" in ld:
        lines.append(f"loader, images_background_small1: cold (decode, downsample, write cache) {ld['cold_seconds']:.2f} s, "
                     f"warm (from cache) {ld['warm_seconds']:.3f} s: {ld['speedup']:.0f}x faster")
    else:
        lines.append(f"loader timing skipped: {ld.get('skipped')}")
    before, after = s.get("load_average_before"), s.get("load_average_after")
    if before and after:
        lines.append(f"machine load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in before)} before, "
                     f"{', '.join(f'{x:.2f}' for x in after)} after, on {os.cpu_count()} CPUs")
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
