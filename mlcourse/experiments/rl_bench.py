"""`mlcourse bench rl`: the MAML-RL meta-gradient of 2D navigation against PyTorch autograd, on fixed rollouts.

The work (the MAML paper's setup, section 5.3): a Gaussian MLP policy 2-100-100-2, 20 goals x 20
trajectories x 100 steps, one inner policy-gradient step (alpha = 0.1), the second-order meta-gradient
of the REINFORCE surrogate through the inner step with the sampled trajectories and their
standardised advantages held fixed (what ``maml_rl.maml_rl_value_and_grad`` differentiates after it
has sampled them).  The rollouts are those of the seeded initial policy, written once to a file that
every process reads.

Rows, each timed in its own fresh process with --threads BLAS / PyTorch threads:

    mlcourse   the hand-derived meta-gradient (rl.fastgrad.meta_gradient, what the public function runs)
    autograd   the same through autograd (grad of maml_rl.meta_objective)
    torch      PyTorch autograd of the same surrogate (per-task parameters, create_graph=True), from
               --reference-python PATH (an environment with torch; never a dependency of mlcourse)

Times are in float32 (the training dtype), medians of the timed repeats of each process, then the median
over --rounds processes; memory is each process's peak resident set size (VmHWM).  Each process also
computes its gradient once in float64, and the table gives its largest difference from the mlcourse
row's, relative to the largest entry.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from .omniglot_bench import SCRIPT_PRELUDE

__all__ = ["main", "run", "format_table", "write_rollouts"]

NUM_GOALS, NUM_TRAJECTORIES, HORIZON, ALPHA = 20, 20, 100, 0.1
ROWS = ("mlcourse", "autograd", "torch")

_COMMON = SCRIPT_PRELUDE + r'''
data, warmup, repeats, row, threads, grad_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
d = np.load(data)
alpha, m = float(d["alpha"]), int(d["inner_steps"])
def timed(fn):
    times = []
    for i in range(warmup + repeats):
        t = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times
'''

_MLCOURSE = _COMMON + r'''
from autograd import grad
from mlcourse.rl import fastgrad, maml_rl
from mlcourse.rl.point_navigation import Rollouts
def load(dtype):
    theta = {"mlp": [(d[f"W{l}"].astype(dtype), d[f"b{l}"].astype(dtype)) for l in range(3)],
             "log_std": d["log_std"].astype(dtype)}
    phases = [(Rollouts(*(d[f"{k}{j}"].astype(dtype) for k in ("positions", "actions", "rewards", "mask")),
                        d["goals"].astype(dtype)), d[f"adv{j}"].astype(dtype)) for j in range(m + 1)]
    return theta, phases
def meta_grad(theta, phases):
    if row == "mlcourse":
        return fastgrad.meta_gradient(theta, lambda j, th: phases[j], [alpha] * m)[1]
    return grad(maml_rl.meta_objective)(theta, phases, alpha)
theta, phases = load(np.float32)
times = timed(lambda: meta_grad(theta, phases))
peak = vmhwm()
g = meta_grad(*load(np.float64))
np.save(grad_file, np.concatenate([a.ravel() for W, b in g["mlp"] for a in (W, b)] + [g["log_std"].ravel()]))
print(json.dumps({"times": times, "peak_mib": peak}))
'''

_TORCH = _COMMON + r'''
import torch
torch.set_num_threads(threads)
def load(dtype):
    t = lambda a: torch.tensor(a, dtype=dtype)
    theta = [t(d[f"{k}{l}"]).requires_grad_() for l in range(3) for k in ("W", "b")] + [t(d["log_std"]).requires_grad_()]
    K = d["goals"].shape[0]
    phases = [(t(d[f"positions{j}"][:, :, :-1].reshape(K, -1, 2)), t(d[f"actions{j}"].reshape(K, -1, 2)),
               t(d[f"adv{j}"].reshape(K, -1)), t(d[f"mask{j}"].reshape(K, -1))) for j in range(m + 1)]
    return theta, phases
def surrogate(p, obs, act, adv, mask):   # per-task parameters p (leading axis K); -> (K,)
    h = obs
    for l in range(3):
        h = torch.baddbmm(p[2 * l + 1].unsqueeze(1), h, p[2 * l])
        if l < 2:
            h = torch.relu(h)
    ls = p[6].unsqueeze(1)
    z = (act - h) * torch.exp(-ls)
    logp = -0.5 * (z * z).sum(-1) - ls.sum(-1) - float(np.log(2 * np.pi))
    return -(logp * adv * mask).sum(1) / mask.sum(1)
def meta_grad(theta, phases):
    K = phases[0][0].shape[0]
    p = [a.unsqueeze(0).expand(K, *a.shape) for a in theta]
    for j in range(m):
        g = torch.autograd.grad(surrogate(p, *phases[j]).sum(), p, create_graph=True)
        p = [a - alpha * b for a, b in zip(p, g)]
    return torch.autograd.grad(surrogate(p, *phases[m]).mean(), theta)
theta, phases = load(torch.float32)
times = timed(lambda: meta_grad(theta, phases))
peak = vmhwm()
g = meta_grad(*load(torch.float64))
np.save(grad_file, np.concatenate([a.detach().numpy().ravel() for a in g]))
print(json.dumps({"times": times, "peak_mib": peak, "torch": torch.__version__}))
'''


def write_rollouts(path, seed=0, inner_steps=1):
    """Sample the fixed rollouts (float64) of the seeded initial policy and save them with the policy."""
    from ..rl import maml_rl, policy
    rng = np.random.default_rng(seed)
    theta = policy.init(rng, (2, 100, 100, 2))
    batch = maml_rl.meta_batches(NUM_GOALS, NUM_TRAJECTORIES, inner_steps, HORIZON)(rng)
    phases, _ = maml_rl.sample_phases(theta, batch, ALPHA, inner_steps)
    arrays = {f"W{l}": W for l, (W, _) in enumerate(theta["mlp"])}
    arrays.update({f"b{l}": b for l, (_, b) in enumerate(theta["mlp"])})
    arrays.update(log_std=theta["log_std"], goals=batch.goals, alpha=ALPHA, inner_steps=inner_steps)
    for j, (ro, adv) in enumerate(phases):
        arrays.update({f"positions{j}": ro.positions, f"actions{j}": ro.actions, f"rewards{j}": ro.rewards,
                       f"mask{j}": ro.mask, f"adv{j}": adv})
    np.savez(path, **arrays)


def _worker(python, script, data, row, warmup, repeats, threads, grad_file):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out = subprocess.run([python, "-c", script, data, str(warmup), str(repeats), row, str(threads), grad_file],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker ({python}, {row}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_torch(python):
    if not python:
        return "no --reference-python given"
    if not os.path.exists(python):
        return f"{python} does not exist"
    r = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"torch is not installed in {python}"


def run(reference_python=None, rounds=3, warmup=1, repeats=5, threads=(1, 2), rows=ROWS):
    """Time every row at every thread count; returns the result dict that --json writes."""
    reason = _has_torch(reference_python) if "torch" in rows else None
    res = {"setup": {"goals": NUM_GOALS, "trajectories": NUM_TRAJECTORIES, "horizon": HORIZON, "alpha": ALPHA,
                     "sizes": [2, 100, 100, 2], "inner_steps": 1, "dtype": "float32", "rounds": rounds,
                     "warmup": warmup, "repeats": repeats, "numpy": np.__version__},
           "rows": {}, "torch_skipped": reason}
    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-rl-") as tmp:
        data = os.path.join(tmp, "rollouts.npz")
        write_rollouts(data)
        libs = [r for r in rows if not (r == "torch" and reason)]
        for n in threads:
            per, mem, grads = {r: [] for r in libs}, {r: [] for r in libs}, {}
            for k in range(rounds):
                shift = k % len(libs)
                for row in libs[shift:] + libs[:shift]:   # the order rotates from round to round
                    gfile = os.path.join(tmp, f"grad-{row}.npy")
                    out = _worker(reference_python if row == "torch" else sys.executable,
                                  _TORCH if row == "torch" else _MLCOURSE, data, row, warmup, repeats, n, gfile)
                    per[row].append(float(np.median(out["times"])))
                    mem[row].append(out["peak_mib"])
                    grads[row] = np.load(gfile)
                    if row == "torch":
                        res["setup"]["torch"] = out.get("torch")
            ref = grads.get("mlcourse")
            block = {}
            for row in libs:
                diff = None if ref is None else float(np.max(np.abs(grads[row] - ref)) / np.max(np.abs(ref)))
                block[row] = {"seconds": float(np.median(per[row])), "per_round": per[row],
                              "peak_mib": float(np.max(mem[row])), "grad_diff_float64": diff}
            if "torch" in block and "mlcourse" in block:
                block["mlcourse"]["x_torch"] = block["mlcourse"]["seconds"] / block["torch"]["seconds"]
                block["mlcourse"]["x_torch_memory"] = block["mlcourse"]["peak_mib"] / block["torch"]["peak_mib"]
            res["rows"][str(n)] = block
    return res


def format_table(res):
    s = res["setup"]
    lines = [f"MAML-RL second-order meta-gradient, 2D navigation: policy {'-'.join(map(str, s['sizes']))}, "
             f"{s['goals']} goals x {s['trajectories']} trajectories x {s['horizon']} steps, fixed rollouts, "
             f"{s['dtype']}; median of {s['repeats']} calls per process, median over {s['rounds']} processes",
             f"{'threads':>7}  {'path':<40}{'seconds':>9}{'x PyTorch':>11}{'peak MiB':>10}{'grad diff (f64)':>17}"]
    names = {"mlcourse": "mlcourse, hand-derived (public path)", "autograd": "mlcourse, autograd",
             "torch": "PyTorch autograd (reference)"}
    for n, block in res["rows"].items():
        t = block.get("torch")
        for row, r in block.items():
            x = f"{r['seconds'] / t['seconds']:.2f}" if t else "-"
            d = "-" if r["grad_diff_float64"] is None or row == "mlcourse" else f"{r['grad_diff_float64']:.0e}"
            lines.append(f"{n:>7}  {names[row]:<40}{r['seconds']:>9.3f}{x:>11}{r['peak_mib']:>10.0f}{d:>17}")
    if res.get("torch_skipped"):
        lines.append(f"PyTorch rows skipped: {res['torch_skipped']} (pass --reference-python PATH to a Python with torch)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="mlcourse bench rl", description=__doc__.split("\n")[0])
    p.add_argument("--reference-python", default=None, metavar="PATH", help="a Python with torch (side environment)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per row and thread count")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per process (after one warm-up call)")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    p.add_argument("--paths", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    args = p.parse_args(argv)
    rows = [x for x in args.paths.split(",") if x]
    try:
        threads = [int(x) for x in args.threads.split(",") if x]
    except ValueError:
        threads = []
    bad = [x for x in rows if x not in ROWS]
    if bad or not rows or not threads or min(threads) < 1 or args.rounds < 1 or args.repeats < 1:
        print("mlcourse bench rl: error: " + (f"unknown path(s) {bad}; use {', '.join(ROWS)}" if bad or not rows
                                              else "--threads, --rounds and --repeats must be integers >= 1"),
              file=sys.stderr)
        return 1
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"mlcourse bench rl: error: the folder of --json {args.json} does not exist", file=sys.stderr)
        return 1
    res = run(args.reference_python, rounds=args.rounds, repeats=args.repeats, threads=threads, rows=rows)
    print(format_table(res))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=1)
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
