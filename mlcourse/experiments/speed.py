"""Benchmark: time and peak memory of one meta-iteration for every engine path, side by side.

    python -m mlcourse.experiments.speed [--repeats N] [--quick]      (same as: mlcourse bench)

The paper setup: MLP 1-40-40-1, meta-batch 25, K = 10 support + 10 query, float32, one thread,
1 and 5 inner steps.  Each path computes (meta-loss, meta-gradient) for the same batch; the table
gives the median over repeats, the ratio to the fastest path, the peak of NumPy allocations
(tracemalloc; n/a for JAX and PyTorch, whose buffers it cannot see) and the largest difference of
the gradient from the fast path's, relative to its largest entry (float32).  JAX (jit + vmap) and PyTorch
(torch.func) are timed too when they are installed.  Speed is reported, never asserted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

from .. import maml, nets, reptile, tasks
from .._validate import check_count, check_rng

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def ensure_one_thread(module, argv):
    """BLAS reads its thread count at import: re-run `python -m module argv` with one thread if needed.

    The engine's matrices are tiny (40 x 40): BLAS threads only add overhead, and on a busy machine
    they make a meta-iteration many times slower.
    """
    if all(os.environ.get(v) == "1" for v in _THREAD_VARS):
        return
    env = dict(os.environ, **{v: "1" for v in _THREAD_VARS})
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def _step_functions(alpha, inner_steps, backend):
    """name -> function(theta, batch) computing one meta-iteration's direction."""
    if backend == "autograd":
        return {
            "MAML (2nd order)": lambda th, b: maml.maml_value_and_grad(th, b, alpha, inner_steps, backend="autograd"),
            "FOMAML": lambda th, b: maml.fomaml_value_and_grad(th, b, alpha, inner_steps, backend="autograd"),
        }
    return {
        "MAML (2nd order)": lambda th, b: maml.maml_value_and_grad(th, b, alpha, inner_steps),
        "FOMAML": lambda th, b: maml.fomaml_value_and_grad(th, b, alpha, inner_steps),
        "Reptile": lambda th, b: reptile.reptile_direction(th, b, alpha, inner_steps),
    }


def time_per_iteration(fn, theta, batch, repeats=20):
    """Median wall time (seconds) of fn(theta, batch) over `repeats` calls, after one warm-up."""
    repeats = check_count(repeats, "repeats", 1)
    fn(theta, batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(theta, batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def peak_memory(fn, theta, batch):
    """Peak bytes allocated (tracemalloc; NumPy reports its buffers) during one call of fn."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn(theta, batch)
    peak = tracemalloc.get_traced_memory()[1] - base
    if not was_tracing:
        tracemalloc.stop()
    return int(peak)


def cost_table(rng, *, inner_steps=(1, 5), backends=("numpy", "autograd"), meta_batch_size=25, k_support=10,
               k_query=10, alpha=0.01, repeats=10, dtype=np.float32):
    """Time (median ms) and peak memory (KiB) of one meta-iteration, paper setup (MLP 1-40-40-1).

    Returns a list of rows {"backend", "method", "inner_steps", "ms", "peak_kib"}.  Machine-dependent:
    compare the ratios between rows, not the numbers across machines.
    """
    check_rng(rng)
    theta = nets.mlp_init(rng, [1, 40, 40, 1], dtype=dtype)
    batch = tasks.Sinusoid().sample(rng, meta_batch_size, k_support, k_query, dtype=dtype)
    rows = []
    for backend in backends:
        for m in inner_steps:
            for name, fn in _step_functions(alpha, m, backend).items():
                reps = repeats if backend == "numpy" else max(1, repeats // 4)
                rows.append({"backend": backend, "method": name, "inner_steps": int(m),
                             "ms": 1e3 * time_per_iteration(fn, theta, batch, reps),
                             "peak_kib": peak_memory(fn, theta, batch) / 1024})
    return rows



def _paths(theta, batch, alpha, steps):
    import numpy as np

    from .. import fastpath, maml, reptile, tree

    def per_task_loop():  # the baseline: one autograd MAML gradient per task, then the mean
        gs = [maml.maml_grad(theta, batch.task(i), alpha, steps, backend="autograd") for i in range(batch.num_tasks)]
        return tree.scale(1.0 / len(gs), tree.tree_map(lambda *a: sum(a), *gs))

    paths = {
        "MAML  fast path (hand-derived HVP)": lambda: fastpath.maml_value_and_grad(theta, batch, alpha, steps),
        "MAML  public API maml.maml_grad": lambda: maml.maml_grad(theta, batch, alpha, steps),
        "MAML  autograd, vectorised batch": lambda: maml.maml_grad(theta, batch, alpha, steps, backend="autograd"),
        "MAML  autograd, per-task loop": per_task_loop,
        "FOMAML fast path": lambda: fastpath.fomaml_value_and_grad(theta, batch, alpha, steps),
        "FOMAML autograd, vectorised batch": lambda: maml.fomaml_grad(theta, batch, alpha, steps,
                                                                      backend="autograd"),
        "Reptile (fast-path inner loop)": lambda: reptile.reptile_direction(theta, batch, alpha, steps),
    }
    paths.update(_jax_paths(theta, batch, alpha, steps))
    paths.update(_torch_paths(theta, batch, alpha, steps))
    del np
    return paths


def _jax_paths(theta, batch, alpha, steps):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    jax.config.update("jax_platform_name", "cpu")

    def f(p, x):
        for W, b in p[:-1]:
            x = jax.nn.relu(x @ W + b)
        W, b = p[-1]
        return x @ W + b

    def loss(p, x, y):
        return jnp.mean((f(p, x) - y) ** 2)

    def task_loss(p, xs, ys, xq, yq):
        for _ in range(steps):
            g = jax.grad(loss)(p, xs, ys)
            p = jax.tree_util.tree_map(lambda a, b: a - alpha * b, p, g)
        return loss(p, xq, yq)

    meta = jax.jit(jax.value_and_grad(lambda p, *d: jnp.mean(jax.vmap(task_loss, (None, 0, 0, 0, 0))(p, *d))))
    p = [(jnp.asarray(W), jnp.asarray(b)) for W, b in theta]
    data = [jnp.asarray(a) for a in (batch.x_support, batch.y_support, batch.x_query, batch.y_query)]

    def run():
        v, g = meta(p, *data)
        return jax.block_until_ready(g)
    return {"MAML  JAX jit + vmap (reference)": run}


def _torch_paths(theta, batch, alpha, steps):
    try:
        import torch
        from torch.func import functional_call, grad, vmap  # noqa: F401
    except ImportError:
        return {}
    torch.set_num_threads(1)
    p = [(torch.tensor(W), torch.tensor(b)) for W, b in theta]
    for W, b in p:
        W.requires_grad_(True)
        b.requires_grad_(True)
    data = [torch.tensor(a) for a in (batch.x_support, batch.y_support, batch.x_query, batch.y_query)]

    def f(params, x):
        for W, b in params[:-1]:
            x = torch.relu(x @ W + b)
        W, b = params[-1]
        return x @ W + b

    def loss(params, x, y):
        return ((f(params, x) - y) ** 2).mean()

    def task_loss(params, xs, ys, xq, yq):
        for _ in range(steps):
            g = grad(loss)(params, xs, ys)
            params = [(W - alpha * gW, b - alpha * gb) for (W, b), (gW, gb) in zip(params, g)]
        return loss(params, xq, yq)

    def run():
        meta = vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(p, *data).mean()
        return torch.autograd.grad(meta, [t for layer in p for t in layer])
    return {"MAML  PyTorch torch.func vmap (reference)": run}


def _flat(out):
    """Any path's result (grad, (loss, grad), jax / torch arrays) as one float64 vector."""
    import numpy as np
    if isinstance(out, tuple) and len(out) == 2 and np.ndim(out[0]) == 0 and isinstance(out[1], list):
        out = out[1]  # (loss, grad)

    def leaves(t):
        if isinstance(t, (list, tuple)):
            return [x for s in t for x in leaves(s)]
        return [np.asarray(t.detach() if hasattr(t, "detach") else t, dtype=np.float64).ravel()]
    return np.concatenate(leaves(out))


def measure(fn, repeats, warmup=2):
    """(median seconds, peak traced bytes) of fn()."""
    import time
    import tracemalloc

    import numpy as np
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(np.median(times)), peak


def main(argv=None, reexec=None):
    """Run the benchmark; re-runs itself with one BLAS thread when started as a program."""
    reexec = argv is None if reexec is None else reexec
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="mlcourse bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per fast path (median reported)")
    parser.add_argument("--steps", default="1,5", help="comma list of inner step counts (default 1,5)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats for the slow autograd paths")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    try:
        step_list = [int(s) for s in args.steps.split(",")]
    except ValueError:
        parser.error(f"--steps must be a comma list of integers, got {args.steps!r}")
    if reexec:
        ensure_one_thread("mlcourse.experiments.speed", argv)

    import platform

    import numpy as np

    from .._runtime import tune_allocator
    tuned = tune_allocator()

    from .. import nets, tasks
    rng = np.random.default_rng(0)
    theta = nets.mlp_init(rng, [1, 40, 40, 1], dtype=np.float32)
    batch = tasks.Sinusoid().sample(rng, num_tasks=25, k_support=10, k_query=10, dtype=np.float32)
    print(f"meta-iteration: MLP 1-40-40-1, meta-batch 25, K=10+10, float32, one thread "
          f"(python {platform.python_version()}, numpy {np.__version__}, "
          f"glibc malloc tuned: {'yes' if tuned else 'no'})")
    results = {}
    for steps in step_list:
        paths = _paths(theta, batch, 0.01, steps)
        rows = []
        reference = {"MAML": _flat(paths["MAML  fast path (hand-derived HVP)"]()),
                     "FOMAML": _flat(paths["FOMAML fast path"]())}
        for name, fn in paths.items():
            slow = "autograd" in name
            reps = max(3, args.repeats // (10 if slow and args.quick else 3 if slow else 1))
            t, peak = measure(fn, reps, warmup=1 if slow else 3)
            ref = reference.get(name.split()[0])
            err = "" if ref is None else f"{np.max(np.abs(_flat(fn()) - ref)) / np.max(np.abs(ref)):.0e}"
            rows.append((name, t, "n/a" if "reference" in name else f"{peak / 2**20:.2f}", reps, err))
        best = min(r[1] for r in rows)
        print(f"\n{steps} inner step{'s' if steps > 1 else ''}, second order unless marked")
        print(f"{'path':<44}{'median ms':>10}{'x fastest':>11}{'peak MiB':>10}{'runs':>6}{'grad diff':>11}")
        for name, t, peak, reps, err in rows:
            print(f"{name:<44}{t * 1e3:>10.2f}{t / best:>11.1f}{peak:>10}{reps:>6}{err:>11}")
        results[steps] = {r[0]: r[1] for r in rows}
    return 0


if __name__ == "__main__":
    sys.exit(main())
