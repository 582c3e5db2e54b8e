"""`mlcourse bench rl`: MAML-RL on 2D navigation against PyTorch: the meta-gradient on fixed rollouts, and the rollouts.

The work (the MAML paper's setup, section 5.3): a Gaussian MLP policy 2-100-100-2, 20 goals x 20
trajectories x 100 steps, one inner policy-gradient step (alpha = 0.1).  The data (the seeded initial
policy, its adapted per-goal policies, the exploration noise and the sampled trajectories with their
standardised advantages) is written once to a file that every process reads.  Two computations:

meta-gradient: the second-order meta-gradient of the REINFORCE surrogate through the inner step with
  the sampled trajectories and their advantages held fixed (what ``maml_rl.maml_rl_value_and_grad``
  differentiates after it has sampled them).  Rows:

    mlcourse   the hand-derived meta-gradient (rl.fastgrad.meta_gradient, what the public function runs)
    autograd   the same through autograd (grad of maml_rl.meta_objective)
    torch      PyTorch autograd of the same surrogate (per-task parameters, create_graph=True)

rollouts: the trajectories of one meta-iteration, D_0 with the shared initial policy and D_1 with the
  adapted per-goal policies, from the same noise (rewards, masks and positions, episodes ending in the
  0.01 box).  Rows:

    rollouts          point_navigation.rollout_policy (what maml_rl runs)
    rollouts_generic  point_navigation.rollout with policy.mean_action as its mean function
    rollouts_torch    the same loop in PyTorch (no_grad, batched matrix products)

The PyTorch rows run in --reference-python PATH (an environment with torch; never a dependency of
mlcourse).  Each row is timed in its own fresh process with --threads BLAS / PyTorch threads, confined to
that many CPUs (``_cpus``), in float32 (the training dtype): medians of the timed repeats of each process,
then the median over --rounds processes; memory is each process's peak resident set size (VmHWM).  Each
process also computes its result once in float64, and the table gives its largest difference from the
mlcourse row's (the gradient, or every position of the trajectories), relative to the largest entry.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from . import _cpus
from .omniglot_bench import SCRIPT_PRELUDE, _has_torch, _worker

__all__ = ["main", "run", "format_table", "write_rollouts", "ROWS"]

NUM_GOALS, NUM_TRAJECTORIES, HORIZON, ALPHA = 20, 20, 100, 0.1
GRADIENT_ROWS = ("mlcourse", "autograd", "torch")
ROLLOUT_ROWS = ("rollouts", "rollouts_generic", "rollouts_torch")
ROWS = GRADIENT_ROWS + ROLLOUT_ROWS
TORCH_ROWS = ("torch", "rollouts_torch")
PAUSE = 0.5   # seconds between two timed processes
REFERENCE = {"mlcourse": "mlcourse", "autograd": "mlcourse", "torch": "mlcourse",
             "rollouts": "rollouts", "rollouts_generic": "rollouts", "rollouts_torch": "rollouts"}

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
import functools
from autograd import grad
from mlcourse.rl import fastgrad, maml_rl, point_navigation, policy
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
def load_policies(dtype):   # the shared policy of phase 0 and the adapted per-goal ones of phase 1
    p = lambda pre: {"mlp": [(d[f"{pre}W{l}"].astype(dtype), d[f"{pre}b{l}"].astype(dtype)) for l in range(3)],
                     "log_std": d[f"{pre}log_std"].astype(dtype)}
    return [p(""), p("adapted_")], d["goals"], [d[f"noise{j}"].astype(dtype) for j in range(2)]
def rollouts(policies, goals, noise):
    if row == "rollouts":
        return [point_navigation.rollout_policy(th, goals, z) for th, z in zip(policies, noise)]
    return [point_navigation.rollout(functools.partial(policy.mean_action, th), goals, z, th["log_std"])
            for th, z in zip(policies, noise)]
if row in ("mlcourse", "autograd"):
    theta, phases = load(np.float32)
    times = timed(lambda: meta_grad(theta, phases))
    peak = vmhwm()
    g = meta_grad(*load(np.float64))
    out = [a.ravel() for W, b in g["mlp"] for a in (W, b)] + [g["log_std"].ravel()]
else:
    args = load_policies(np.float32)
    times = timed(lambda: rollouts(*args))
    peak = vmhwm()
    out = [ro.positions.ravel() for ro in rollouts(*load_policies(np.float64))]
np.save(grad_file, np.concatenate(out))
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
@torch.no_grad()
def rollout(p, goals, noise):   # p: [W0, b0, W1, b1, W2, b2, log_std], shared (W 2-D) or per goal (W 3-D)
    K, N, T, _ = noise.shape
    dt = noise.dtype
    shared = p[0].dim() == 2
    scaled = noise * torch.exp(p[6] if shared else p[6][:, None, None, :])
    goal = goals[:, None, :]
    positions = torch.zeros(K, N, T + 1, 2, dtype=dt)
    actions = torch.zeros(K, N, T, 2, dtype=dt)
    rewards = torch.zeros(K, N, T, dtype=dt)
    mask = torch.zeros(K, N, T, dtype=dt)
    pos = positions[:, :, 0]
    alive = torch.ones(K, N, dtype=torch.bool)
    for t in range(T):
        h = pos.reshape(K * N, 2) if shared else pos
        for l in range(3):
            h = torch.addmm(p[2 * l + 1], h, p[2 * l]) if shared else torch.baddbmm(p[2 * l + 1][:, None, :], h, p[2 * l])
            if l < 2:
                h = torch.relu_(h)
        a = h.reshape(K, N, 2) + scaled[:, :, t]
        new = pos + 0.1 * a.clamp(-1.0, 1.0)
        dd = new - goal
        r = -torch.sqrt((dd * dd).sum(-1))
        reached = (dd.abs() < 0.01).all(-1)
        new = torch.where(alive[..., None], new, pos)
        actions[:, :, t] = a
        rewards[:, :, t] = torch.where(alive, r, 0.0)
        mask[:, :, t] = alive.to(dt)
        positions[:, :, t + 1] = new
        pos = new
        alive = alive & ~reached
        if not bool(alive.any()):
            positions[:, :, t + 2:] = pos[:, :, None, :]
            break
    return positions, actions, rewards, mask
def load_policies(dtype):
    t = lambda a: torch.tensor(a, dtype=dtype)
    p = lambda pre: [t(d[f"{pre}{k}{l}"]) for l in range(3) for k in ("W", "b")] + [t(d[f"{pre}log_std"])]
    return [p(""), p("adapted_")], t(d["goals"]), [t(d[f"noise{j}"]) for j in range(2)]
def rollouts(policies, goals, noise):
    return [rollout(p, goals, z) for p, z in zip(policies, noise)]
if row == "torch":
    theta, phases = load(torch.float32)
    times = timed(lambda: meta_grad(theta, phases))
    peak = vmhwm()
    out = [a.detach().numpy().ravel() for a in meta_grad(*load(torch.float64))]
else:
    args = load_policies(torch.float32)
    times = timed(lambda: rollouts(*args))
    peak = vmhwm()
    out = [ro[0].numpy().ravel() for ro in rollouts(*load_policies(torch.float64))]
np.save(grad_file, np.concatenate(out))
print(json.dumps({"times": times, "peak_mib": peak, "torch": torch.__version__}))
'''


def write_rollouts(path, seed=0, inner_steps=1):
    """Save the seeded initial policy, its adapted per-goal policies (the last inner step's), the noise, and
    the trajectories sampled with them (float64) with their advantages."""
    from ..rl import maml_rl, policy
    rng = np.random.default_rng(seed)
    theta = policy.init(rng, (2, 100, 100, 2))
    batch = maml_rl.meta_batches(NUM_GOALS, NUM_TRAJECTORIES, inner_steps, HORIZON)(rng)
    phases, adapted = maml_rl.sample_phases(theta, batch, ALPHA, inner_steps)
    arrays = {}
    for pre, th in (("", theta), ("adapted_", adapted)):
        arrays.update({f"{pre}W{l}": W for l, (W, _) in enumerate(th["mlp"])})
        arrays.update({f"{pre}b{l}": b for l, (_, b) in enumerate(th["mlp"])})
        arrays[f"{pre}log_std"] = th["log_std"]
    arrays.update(goals=batch.goals, alpha=ALPHA, inner_steps=inner_steps)
    arrays.update({f"noise{j}": z for j, z in enumerate(batch.noise)})
    for j, (ro, adv) in enumerate(phases):
        arrays.update({f"positions{j}": ro.positions, f"actions{j}": ro.actions, f"rewards{j}": ro.rewards,
                       f"mask{j}": ro.mask, f"adv{j}": adv})
    np.savez(path, **arrays)


def run(reference_python=None, rounds=3, warmup=1, repeats=5, threads=(1, 2), rows=ROWS):
    """Time every row at every thread count; returns the result dict that --json writes."""
    reason = _has_torch(reference_python) if any(r in TORCH_ROWS for r in rows) else None
    res = {"setup": {"goals": NUM_GOALS, "trajectories": NUM_TRAJECTORIES, "horizon": HORIZON, "alpha": ALPHA,
                     "sizes": [2, 100, 100, 2], "inner_steps": 1, "dtype": "float32", "rounds": rounds,
                     "warmup": warmup, "repeats": repeats, "numpy": np.__version__,
                     "cpus": {str(n): _cpus.describe(n) for n in threads}},
           "rows": {}, "torch_skipped": reason}
    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-rl-") as tmp:
        data = os.path.join(tmp, "rollouts.npz")
        write_rollouts(data)
        libs = [r for r in ROWS if r in rows and not (r in TORCH_ROWS and reason)]
        per = {n: {r: [] for r in libs} for n in threads}
        mem = {n: {r: [] for r in libs} for n in threads}
        results = {n: {} for n in threads}
        order = np.random.default_rng(0)
        for k in range(rounds):   # a round times every row at every thread count, so a busy spell of a shared
            for n in threads:      # machine falls on all of them alike
                # in an order drawn afresh (seeded) for every round and thread count: a rotation would keep each
                # row right after the same other row, and a light row after a heavy one runs slower on a
                # shared virtual machine; a short pause before each process lets the previous one's load settle
                for row in [libs[i] for i in order.permutation(len(libs))]:
                    time.sleep(PAUSE)
                    rfile = os.path.join(tmp, f"result-{row}.npy")
                    torch_row = row in TORCH_ROWS
                    out = _worker(reference_python if torch_row else sys.executable,
                                  _TORCH if torch_row else _MLCOURSE, data, row, warmup, repeats, n, rfile)
                    per[n][row].append(float(np.median(out["times"])))
                    mem[n][row].append(out["peak_mib"])
                    results[n][row] = np.load(rfile)
                    if torch_row:
                        res["setup"]["torch"] = out.get("torch")
        for n in threads:
            block = {}
            for row in libs:
                ref = results[n].get(REFERENCE[row])
                diff = None if ref is None else float(np.max(np.abs(results[n][row] - ref)) / np.max(np.abs(ref)))
                block[row] = {"seconds": float(np.median(per[n][row])), "per_round": per[n][row],
                              "peak_mib": float(np.max(mem[n][row])), "diff_float64": diff}
            for ours, theirs in (("mlcourse", "torch"), ("rollouts", "rollouts_torch")):
                if ours in block and theirs in block:
                    block[ours]["x_torch"] = block[ours]["seconds"] / block[theirs]["seconds"]
                    block[ours]["x_torch_memory"] = block[ours]["peak_mib"] / block[theirs]["peak_mib"]
            res["rows"][str(n)] = block
    return res


NAMES = {"mlcourse": "mlcourse, hand-derived (public path)", "autograd": "mlcourse, autograd",
         "torch": "PyTorch autograd (reference)",
         "rollouts": "mlcourse, rollout_policy (public path)", "rollouts_generic": "mlcourse, rollout + mean_action",
         "rollouts_torch": "PyTorch, no_grad (reference)"}


def format_table(res):
    s = res["setup"]
    work = (f"2D navigation, policy {'-'.join(map(str, s['sizes']))}, {s['goals']} goals x {s['trajectories']} "
            f"trajectories x {s['horizon']} steps, {s['dtype']}; median of {s['repeats']} calls per process, "
            f"median over {s['rounds']} processes")
    lines = [f"MAML-RL on {work}"]
    for title, group, diff in (("second-order meta-gradient on fixed rollouts", GRADIENT_ROWS, "grad diff (f64)"),
                               ("rollouts of one meta-iteration (D_0 shared policy, D_1 adapted policies)",
                                ROLLOUT_ROWS, "pos diff (f64)")):
        blocks = [(n, {r: b[r] for r in group if r in b}) for n, b in res["rows"].items()]
        if not any(b for _, b in blocks):
            continue
        lines += ["", title,
                  f"{'threads':>7}  {'path':<40}{'seconds':>9}{'x PyTorch':>11}{'peak MiB':>10}{diff:>17}"]
        for n, block in blocks:
            t = block.get(group[2])
            for row, r in block.items():
                x = f"{r['seconds'] / t['seconds']:.2f}" if t else "-"
                d = "-" if r["diff_float64"] is None or row == group[0] else f"{r['diff_float64']:.0e}"
                lines.append(f"{n:>7}  {NAMES[row]:<40}{r['seconds']:>9.3f}{x:>11}{r['peak_mib']:>10.0f}{d:>17}")
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
