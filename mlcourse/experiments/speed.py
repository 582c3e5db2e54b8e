"""Benchmark: time and peak memory of one meta-iteration for every engine path, each in a plain process.

    mlcourse bench [--steps 1,5] [--repeats 300] [--rounds 3] [--reference-python PATH] [--json PATH] [--no-rl]
    python -m mlcourse.experiments.speed ...                            (the same)

After this table, and unless --paths picks rows or --no-rl is given, it prints the MAML-RL table of
``rl_bench`` (``mlcourse bench rl``: the meta-gradient and the rollouts of 2D navigation against
PyTorch, at 1 and 2 threads), with the same --rounds and --reference-python.

The paper setup: MLP 1-40-40-1, meta-batch 25, K = 10 support + 10 query, float32, one thread.
Every path (MAML through the public API ``maml.maml_grad``, FOMAML ``maml.fomaml_grad``, Reptile,
MAML through autograd vectorised and as a per-task loop, Meta-SGD and ANIL through their public
API and through autograd, JAX jit + vmap for MAML, Meta-SGD and ANIL, PyTorch torch.func vmap)
runs in its own fresh Python process that imports only what that path needs, loads theta and the
batch from a file the parent wrote (the same data for every path), warms up, times `repeats`
calls one by one and reports the median, its memory and its gradient; the parent checks each
gradient against the public API's (largest difference relative to the largest entry).  Meta-SGD
rows differentiate theta and log alpha jointly (step sizes drawn once per entry from the paper's
U[0.005, 0.1]); the public API's gradient is checked against autograd's, computed in the parent.
ANIL's public API is checked against the mean of its single-task gradients through autograd.
Each JAX row computes the same meta-iteration as its package rows, and "x JAX" divides a row's
time by that JAX row's (Meta-SGD rows by JAX's Meta-SGD, ANIL rows by JAX's ANIL, the rest by
JAX's MAML).
A round runs every path once, in an order drawn afresh (seeded) for every round; the table gives
the median over rounds and the spread (min - max of the per-round medians).

Every measured process gets one BLAS / OpenMP thread (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
MKL_NUM_THREADS = 1), JAX also ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` and PyTorch ``torch.set_num_threads(1)``, and runs confined to one
CPU (``_cpus``: JAX's runtime otherwise borrows a second core despite those flags); the "cpu/wall"
column shows each worker's CPU time per wall second of its timed loop.  The mlcourse rows
run with what ``import mlcourse`` does (glibc malloc tuned, see ``mlcourse/_runtime.py``).

Memory (Linux /proc/self/status, MiB):

- peak RSS: the whole process's peak resident set size (VmHWM): interpreter, imports, data,
  compilation and the timed loop - what the process costs its user.  The comparison with JAX
  ("x JAX mem") uses this one: it is measured the same way for every library and hides nothing.
- added: the peak RSS the computation adds on top of the process after its imports and data
  (VmHWM reset through /proc/self/clear_refs, then warm-up, compilation and the timed loop).
- traced: the peak of Python / NumPy allocations during one call (tracemalloc), NumPy rows only;
  JAX's and PyTorch's buffers are invisible to it.

Absolute times on a shared machine drift by tens of percent from run to run; compare rows of
one run.  Speed is reported, never asserted.  JAX and PyTorch rows run in this interpreter when
it has them, else in ``--reference-python`` (which needs only numpy, jax, torch - not mlcourse);
without either the rows are skipped and the reason printed.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

# path key -> (label, library it needs, share of --repeats it runs, gradient it is checked against)
PATHS = {
    "maml": ("MAML  public API maml.maml_grad", "mlcourse", 1.0, "maml"),
    "fomaml": ("FOMAML public API maml.fomaml_grad", "mlcourse", 1.0, "fomaml"),
    "reptile": ("Reptile reptile.reptile_direction", "mlcourse", 1.0, "reptile"),
    "maml_autograd": ("MAML  autograd, vectorised batch", "mlcourse", 0.1, "maml"),
    "maml_loop": ("MAML  autograd, per-task loop", "mlcourse", 0.01, "maml"),
    "metasgd": ("Meta-SGD metasgd.metasgd_value_and_grad", "mlcourse", 1.0, "metasgd_autograd"),
    "metasgd_autograd": ("Meta-SGD autograd, vectorised batch", "mlcourse", 0.1, "metasgd"),
    "metasgd_jax": ("Meta-SGD JAX jit + vmap (reference)", "jax", 1.0, "metasgd"),
    "anil": ("ANIL  anil.anil_value_and_grad", "mlcourse", 1.0, "anil_autograd"),
    "anil_autograd": ("ANIL  autograd, vectorised batch", "mlcourse", 0.1, "anil"),
    "anil_jax": ("ANIL  JAX jit + vmap (reference)", "jax", 1.0, "anil"),
    "jax": ("MAML  JAX jit + vmap (reference)", "jax", 1.0, "maml"),
    "torch": ("MAML  PyTorch torch.func vmap (reference)", "torch", 0.3, "maml"),
}
SIZES = (1, 40, 40, 1)
# the JAX row of the same computation, for "x JAX" (every other row: "jax", MAML's)
JAX_ROW = {"metasgd": "metasgd_jax", "metasgd_autograd": "metasgd_jax", "metasgd_jax": "metasgd_jax",
           "anil": "anil_jax", "anil_autograd": "anil_jax", "anil_jax": "anil_jax"}


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


# ---------------------------------------------------------------- in-process costs (notebook 04)

def _step_functions(alpha, inner_steps, backend):
    """name -> function(theta, batch) computing one meta-iteration's direction."""
    from .. import maml, reptile
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


def _median_seconds(call, repeats, warmup):
    """Median wall time of call() over `repeats` calls, after `warmup` untimed ones (no mlcourse import:
    the standalone worker uses it too)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _traced_peak_bytes(call):
    """Peak bytes allocated (tracemalloc; NumPy reports its buffers) during one call()."""
    import tracemalloc
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    call()
    peak = tracemalloc.get_traced_memory()[1] - base
    if not was_tracing:
        tracemalloc.stop()
    return int(peak)


def time_per_iteration(fn, theta, batch, repeats=20):
    """Median wall time (seconds) of fn(theta, batch) over `repeats` calls, after one warm-up."""
    from .._validate import check_count
    repeats = check_count(repeats, "repeats", 1)
    return _median_seconds(lambda: fn(theta, batch), repeats, warmup=1)


def peak_memory(fn, theta, batch):
    """Peak bytes allocated (tracemalloc; NumPy reports its buffers) during one call of fn."""
    return _traced_peak_bytes(lambda: fn(theta, batch))


def cost_table(rng, *, inner_steps=(1, 5), backends=("numpy", "autograd"), meta_batch_size=25, k_support=10,
               k_query=10, alpha=0.01, repeats=10, dtype=np.float32):
    """Time (median ms) and peak memory (KiB) of one meta-iteration, paper setup (MLP 1-40-40-1).

    In this process (for a notebook); ``run`` measures each path in a plain process instead.
    Returns a list of rows {"backend", "method", "inner_steps", "ms", "peak_kib"}.  Machine-dependent:
    compare the ratios between rows, not the numbers across machines.
    """
    from .. import nets, tasks
    from .._validate import check_rng
    check_rng(rng)
    theta = nets.mlp_init(rng, list(SIZES), dtype=dtype)
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


# ---------------------------------------------------------------- the worker: one path, one process
# Runs as a standalone script (``python speed.py --worker ...``) in any interpreter: nothing below
# imports mlcourse except the mlcourse paths themselves.

def _proc_status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Linux: writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _load(data_file):
    d = np.load(data_file)
    L = sum(1 for k in d.files if k.startswith("W"))
    theta = [(d[f"W{l}"], d[f"b{l}"]) for l in range(L)]
    return theta, [d[k] for k in ("x_support", "y_support", "x_query", "y_query")], float(d["alpha"])


def _load_log_alpha(data_file):
    """Meta-SGD's log step sizes [(log alpha_W, log alpha_b)] shaped like theta."""
    d = np.load(data_file)
    L = sum(1 for k in d.files if k.startswith("W"))
    return [(d[f"log_alpha_W{l}"], d[f"log_alpha_b{l}"]) for l in range(L)]


def _mlcourse_path(key, theta, data, alpha, steps, log_alpha=None):
    from mlcourse import maml, reptile, tasks, tree
    batch = tasks.TaskBatch(*data)
    if key == "maml":
        return lambda: maml.maml_grad(theta, batch, alpha, steps)
    if key == "fomaml":
        return lambda: maml.fomaml_grad(theta, batch, alpha, steps)
    if key == "reptile":
        return lambda: reptile.reptile_direction(theta, batch, alpha, steps)
    if key == "maml_autograd":
        return lambda: maml.maml_grad(theta, batch, alpha, steps, backend="autograd")
    if key in ("metasgd", "metasgd_autograd"):  # gradient [theta..., log_alpha...]
        from mlcourse import metasgd
        params = {"theta": theta, "log_alpha": log_alpha}
        backend = "auto" if key == "metasgd" else "autograd"

        def metasgd_grad():
            g = metasgd.metasgd_value_and_grad(params, batch, steps, backend=backend)[1]
            return [*g["theta"], *g["log_alpha"]]
        return metasgd_grad
    if key in ("anil", "anil_autograd"):
        from mlcourse import anil
        params = anil.split_mlp(theta)
        backend = "auto" if key == "anil" else "autograd"

        def anil_grad():
            g = anil.anil_value_and_grad(params, batch, alpha, steps, backend=backend)[1]
            return [*g["body"], g["head"]]
        return anil_grad

    def per_task_loop():  # the baseline: one autograd MAML gradient per task, then the mean
        gs = [maml.maml_grad(theta, batch.task(i), alpha, steps, backend="autograd") for i in range(batch.num_tasks)]
        return tree.scale(1.0 / len(gs), tree.tree_map(lambda *a: sum(a), *gs))
    return per_task_loop


def _jax_mlp_mse(jax, jnp):
    """loss(p, x, y): the MLP's (ReLU hidden layers, linear output) mean squared error, in JAX."""
    def f(p, x):
        for W, b in p[:-1]:
            x = jax.nn.relu(x @ W + b)
        W, b = p[-1]
        return x @ W + b

    def loss(p, x, y):
        return jnp.mean((f(p, x) - y) ** 2)
    return loss


def _jax_path(theta, data, alpha, steps):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_platform_name", "cpu")

    loss = _jax_mlp_mse(jax, jnp)

    def task_loss(p, xs, ys, xq, yq):
        for _ in range(steps):
            g = jax.grad(loss)(p, xs, ys)
            p = jax.tree_util.tree_map(lambda a, b: a - alpha * b, p, g)
        return loss(p, xq, yq)

    meta = jax.jit(jax.value_and_grad(lambda p, *d: jnp.mean(jax.vmap(task_loss, (None, 0, 0, 0, 0))(p, *d))))
    p = [(jnp.asarray(W), jnp.asarray(b)) for W, b in theta]
    arrays = [jnp.asarray(a) for a in data]

    def run():
        return jax.block_until_ready(meta(p, *arrays)[1])
    return run


def _jax_metasgd_path(theta, log_alpha, data, steps):
    """Meta-SGD's meta-iteration: theta <- theta - exp(log_alpha) * grad, differentiated for (theta, log_alpha)."""
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_platform_name", "cpu")

    loss = _jax_mlp_mse(jax, jnp)

    def task_loss(p, la, xs, ys, xq, yq):
        alpha = jax.tree_util.tree_map(jnp.exp, la)
        for _ in range(steps):
            g = jax.grad(loss)(p, xs, ys)
            p = jax.tree_util.tree_map(lambda a, s, b: a - s * b, p, alpha, g)
        return loss(p, xq, yq)

    def meta_loss(p, la, *d):
        return jnp.mean(jax.vmap(task_loss, (None, None, 0, 0, 0, 0))(p, la, *d))
    meta = jax.jit(jax.value_and_grad(meta_loss, argnums=(0, 1)))
    p = [(jnp.asarray(W), jnp.asarray(b)) for W, b in theta]
    la = [(jnp.asarray(W), jnp.asarray(b)) for W, b in log_alpha]
    arrays = [jnp.asarray(a) for a in data]

    def run():
        g_theta, g_log_alpha = jax.block_until_ready(meta(p, la, *arrays)[1])
        return [*g_theta, *g_log_alpha]
    return run


def _jax_anil_path(theta, data, alpha, steps):
    """ANIL's meta-iteration: the body (every layer but the last, ReLU after each) fixed in the inner loop,
    the linear head adapted, differentiated for (body, head)."""
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_platform_name", "cpu")

    def body(pb, x):
        for W, b in pb:
            x = jax.nn.relu(x @ W + b)
        return x

    def head_loss(h, phi, y):
        return jnp.mean((phi @ h[0] + h[1] - y) ** 2)

    def task_loss(pb, h, xs, ys, xq, yq):
        phi_s, phi_q = body(pb, xs), body(pb, xq)
        for _ in range(steps):
            g = jax.grad(head_loss)(h, phi_s, ys)
            h = (h[0] - alpha * g[0], h[1] - alpha * g[1])
        return head_loss(h, phi_q, yq)

    def meta_loss(pb, h, *d):
        return jnp.mean(jax.vmap(task_loss, (None, None, 0, 0, 0, 0))(pb, h, *d))
    meta = jax.jit(jax.value_and_grad(meta_loss, argnums=(0, 1)))
    pb = [(jnp.asarray(W), jnp.asarray(b)) for W, b in theta[:-1]]
    h = (jnp.asarray(theta[-1][0]), jnp.asarray(theta[-1][1]))
    arrays = [jnp.asarray(a) for a in data]

    def run():
        g_body, g_head = jax.block_until_ready(meta(pb, h, *arrays)[1])
        return [*g_body, g_head]
    return run


def _torch_path(theta, data, alpha, steps):
    import torch
    from torch.func import grad, vmap
    torch.set_num_threads(1)
    p = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in theta]
    arrays = [torch.tensor(a) for a in data]

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
        meta = vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(p, *arrays).mean()
        return torch.autograd.grad(meta, [t for layer in p for t in layer])
    return run


def _flat(out):
    """A gradient (nested lists / tuples of numpy, jax or torch arrays) as one float64 vector."""
    def leaves(t):
        if isinstance(t, (list, tuple)):
            return [x for s in t for x in leaves(s)]
        return [np.asarray(t.detach() if hasattr(t, "detach") else t, dtype=np.float64).ravel()]
    return np.concatenate(leaves(out))


def worker(key, data_file, steps, repeats, warmup, grad_file):
    """Time one path in this process; return a dict of its measurements (the worker's JSON line)."""
    rss_start = _proc_status_kib("VmRSS")
    theta, data, alpha = _load(data_file)
    if key == "jax":
        fn = _jax_path(theta, data, alpha, steps)
    elif key == "metasgd_jax":
        fn = _jax_metasgd_path(theta, _load_log_alpha(data_file), data, steps)
    elif key == "anil_jax":
        fn = _jax_anil_path(theta, data, alpha, steps)
    elif key == "torch":
        fn = _torch_path(theta, data, alpha, steps)
    else:
        fn = _mlcourse_path(key, theta, data, alpha, steps,
                            _load_log_alpha(data_file) if key.startswith("metasgd") else None)
    rss_setup = _proc_status_kib("VmRSS")
    hwm_setup = _proc_status_kib("VmHWM")
    resettable = _reset_peak_rss()
    wall0, cpu0 = time.perf_counter(), time.process_time()   # process_time: every thread of this process
    median = _median_seconds(fn, repeats, warmup)
    cpu_per_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    hwm_end = _proc_status_kib("VmHWM")
    grad = _flat(fn())
    np.save(grad_file, grad)
    traced = None if PATHS[key][1] != "mlcourse" else _traced_peak_bytes(fn) / 2**20
    if hwm_end is None:  # no /proc (not Linux): the whole-process peak from getrusage
        import resource
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak, added = (r / 2**20 if sys.platform == "darwin" else r / 1024), None
    else:
        peak = max(hwm_setup, hwm_end) / 1024
        added = (hwm_end - rss_setup) / 1024 if resettable else None
    versions = {"python": sys.version.split()[0], "numpy": np.__version__}
    for lib in ("jax", "jaxlib", "torch", "mlcourse"):
        if lib in sys.modules:
            versions[lib] = getattr(sys.modules[lib], "__version__", "?")
    return {"key": key, "steps": steps, "ms": 1e3 * median, "runs": repeats, "cpu_per_wall": cpu_per_wall,
            "peak_rss_mib": peak, "added_rss_mib": added, "traced_mib": traced,
            "rss_start_mib": None if rss_start is None else rss_start / 1024, "versions": versions}


# ---------------------------------------------------------------- the parent

def _env(one_thread_jax=True):
    env = dict(os.environ, **{v: "1" for v in _THREAD_VARS})
    if one_thread_jax and "XLA_FLAGS" not in env:
        env["XLA_FLAGS"] = _XLA_ONE_THREAD
    env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _has(python, lib):
    """(True, version) if `python` imports lib, else (False, reason)."""
    code = f"import {lib}; print({lib}.__version__)"
    try:
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{python} could not be run ({e})"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["failed"])[-1]
        return False, f"{lib} does not import in {python} ({last})"
    return True, r.stdout.strip()


def _reference_interpreters(reference_python):
    """lib -> interpreter for the JAX and PyTorch rows, and lib -> reason for the skipped ones."""
    import importlib.util
    found, skipped = {}, {}
    for lib in ("jax", "torch"):
        if importlib.util.find_spec(lib) is not None:
            found[lib] = sys.executable
        elif reference_python:
            ok, why = _has(reference_python, lib)
            if ok:
                found[lib] = reference_python
            else:
                skipped[lib] = why
        else:
            skipped[lib] = (f"{lib} is not installed in {sys.executable}; pass --reference-python PATH "
                            f"(an interpreter with numpy and {lib}) to time it")
    return found, skipped


def _write_data(path, seed, alpha, meta_batch_size, k_support, k_query):
    from .. import metasgd, nets, tasks
    rng = np.random.default_rng(seed)
    theta = nets.mlp_init(rng, list(SIZES), dtype=np.float32)
    batch = tasks.Sinusoid().sample(rng, meta_batch_size, k_support, k_query, dtype=np.float32)
    # Meta-SGD's step sizes from a stream of their own: theta and the batch stay those of earlier tables
    log_alpha = metasgd.params_from_alpha(theta, metasgd.init_alpha(np.random.default_rng([seed, 1]), theta))
    log_alpha = log_alpha["log_alpha"]
    arrays = {f"W{l}": W for l, (W, _) in enumerate(theta)}
    arrays.update({f"b{l}": b for l, (_, b) in enumerate(theta)})
    arrays.update({f"log_alpha_W{l}": W for l, (W, _) in enumerate(log_alpha)})
    arrays.update({f"log_alpha_b{l}": b for l, (_, b) in enumerate(log_alpha)})
    arrays.update(x_support=batch.x_support, y_support=batch.y_support, x_query=batch.x_query,
                  y_query=batch.y_query, alpha=np.float64(alpha))
    np.savez(path, **arrays)
    return theta, batch


def _reptile_reference(theta, batch, alpha, steps):
    """Reptile's direction by autograd's inner loop: a second implementation to check the row against."""
    from .. import maml, nets, tree
    theta_tasks = maml._adapt_autograd(theta, batch.x_support, batch.y_support, alpha, steps, nets.mlp_apply,
                                       nets.mse)
    f64 = functools.partial(tree.tree_map, lambda a: np.asarray(a, np.float64))   # the mean of equal entries exact:
    return _flat(tree.sub(tree.task_mean(f64(theta_tasks)), f64(theta)))          # a zero direction at 0 steps


def _run_worker(python, key, data_file, steps, repeats, warmup, grad_file, timeout):
    from . import _cpus
    cmd = [python, os.path.abspath(__file__), "--worker", key, data_file, str(steps), str(repeats), str(warmup),
           grad_file]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout, preexec_fn=_cpus.pin(1))
    if r.returncode != 0:
        raise RuntimeError(f"the {key} worker failed ({' '.join(cmd)}):\n{r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(*, steps=(1, 5), repeats=300, rounds=3, quick=False, reference_python=None, paths=None, seed=0,
        alpha=0.01, meta_batch_size=25, k_support=10, k_query=10, progress=None):
    """Time every path in plain processes; return the whole table as a dict (what --json writes).

    paths: keys of PATHS to run (default all); rows of libraries that are not available are skipped
    with the reason in result["skipped"].  progress(message) is called before each process.
    """
    from .. import __version__
    from .._runtime import TUNE_ENV
    from .._validate import check_count
    from . import _cpus
    steps = [check_count(s, "steps") for s in steps]
    if not steps:
        raise ValueError("steps must name at least one inner step count, e.g. steps=(1, 5).")
    repeats = check_count(repeats, "repeats", 1)
    rounds = check_count(rounds, "rounds", 1)
    paths = list(PATHS) if paths is None else list(paths)
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise ValueError(f"unknown path(s) {unknown}; choose from {list(PATHS)}.")
    if reference_python is not None and not os.path.exists(reference_python):
        raise ValueError(f"--reference-python {reference_python!r} does not exist; give the path of an "
                         "interpreter with numpy, jax and torch (e.g. a virtualenv's bin/python).")
    found, skipped = _reference_interpreters(reference_python if any(PATHS[p][1] != "mlcourse" for p in paths)
                                             else None)
    skipped = {lib: why for lib, why in skipped.items() if lib in paths}
    run_paths = [p for p in paths if PATHS[p][1] == "mlcourse" or PATHS[p][1] in found]
    interpreter = {p: found.get(PATHS[p][1], sys.executable) for p in run_paths}

    def reps(key):
        share = PATHS[key][2] / (10 if quick and share_slow(key) else 1)
        return max(2 if quick else 3, int(round(repeats * share)))

    def share_slow(key):
        return PATHS[key][2] < 1

    per = {(p, m): [] for p in run_paths for m in steps}
    grads, workers = {}, {}
    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-") as tmp:
        data_file = os.path.join(tmp, "data.npz")
        theta, batch = _write_data(data_file, seed, alpha, meta_batch_size, k_support, k_query)
        jobs = [(p, m) for m in steps for p in run_paths]
        order = np.random.default_rng(0)
        for r in range(rounds):
            # an order drawn afresh (seeded) for every round: a rotation would keep each path right after the same
            # other path, and a light path after a heavy one runs slower on a shared virtual machine
            for i in order.permutation(len(jobs)):
                p, m = jobs[i]
                if progress:
                    progress(f"round {r + 1}/{rounds}: {PATHS[p][0].split('(')[0].strip()}, {m} inner step{'s' if m != 1 else ''}")
                grad_file = os.path.join(tmp, f"grad-{p}-{m}-{r}.npy")
                slow = share_slow(p)
                w = _run_worker(interpreter[p], p, data_file, m, reps(p), 1 if slow else 20, grad_file,
                                timeout=3600)
                per[(p, m)].append(w)
                grads[(p, m)] = np.load(grad_file)
                workers[p] = w
        log_alpha = _load_log_alpha(data_file)
        metasgd_rows = any(PATHS[p][3] in ("metasgd", "metasgd_autograd") for p in run_paths)
        anil_rows = any(PATHS[p][3] in ("anil", "anil_autograd") for p in run_paths)
        reference = {}
        for m in steps:
            ref = reference[m] = {"maml": grads.get(("maml", m)), "fomaml": grads.get(("fomaml", m)),
                                  "reptile": _reptile_reference(theta, batch, alpha, m)}
            if metasgd_rows:
                ref["metasgd_autograd"] = _metasgd_reference(theta, log_alpha, batch, m, "autograd")
                ref["metasgd"] = (grads[("metasgd", m)] if ("metasgd", m) in grads
                                  else _metasgd_reference(theta, log_alpha, batch, m, "auto"))
            if anil_rows:
                ref["anil_autograd"] = _anil_reference(theta, batch, alpha, m)
                ref["anil"] = (grads[("anil", m)] if ("anil", m) in grads
                               else _anil_public(theta, batch, alpha, m))
    rows = []
    for m in steps:
        block = []
        for p in run_paths:
            ws = per[(p, m)]
            ms_rounds = [w["ms"] for w in ws]
            ref = reference[m].get(PATHS[p][3])
            g = grads[(p, m)]
            diff = None if ref is None else float(np.max(np.abs(g - ref)) / max(np.max(np.abs(ref)), 1e-30))

            def med(field):
                vals = [w[field] for w in ws if w[field] is not None]
                return float(np.median(vals)) if vals else None
            block.append({"key": p, "path": PATHS[p][0], "library": PATHS[p][1], "inner_steps": m,
                          "ms": float(np.median(ms_rounds)), "ms_rounds": ms_rounds,
                          "ms_min": min(ms_rounds), "ms_max": max(ms_rounds), "runs": ws[0]["runs"],
                          "peak_rss_mib": med("peak_rss_mib"), "added_rss_mib": med("added_rss_mib"),
                          "traced_mib": med("traced_mib"), "grad_diff": diff, "cpu_per_wall": med("cpu_per_wall"),
                          "interpreter": interpreter[p]})
        fastest = min(r["ms"] for r in block)
        for r in block:
            jax_row = next((j for j in block if j["key"] == JAX_ROW.get(r["key"], "jax")), None)
            r["jax_row"] = None if jax_row is None else jax_row["key"]
            r["x_fastest"] = r["ms"] / fastest
            r["x_jax"] = None if jax_row is None else r["ms"] / jax_row["ms"]
            r["x_jax_memory"] = (None if jax_row is None or not r["peak_rss_mib"] or not jax_row["peak_rss_mib"]
                                 else r["peak_rss_mib"] / jax_row["peak_rss_mib"])
            r["x_jax_added_memory"] = (None if jax_row is None or r["added_rss_mib"] is None
                                       or not jax_row["added_rss_mib"]
                                       else r["added_rss_mib"] / jax_row["added_rss_mib"])
        rows += block
    versions = {}
    for w in workers.values():
        versions.update({k: v for k, v in w["versions"].items() if k in ("jax", "jaxlib", "torch")})
    versions.update(python=sys.version.split()[0], numpy=np.__version__, mlcourse=__version__)
    summary = {}
    for m in steps:
        get = {r["key"]: r for r in rows if r["inner_steps"] == m}
        if "maml" in get and "jax" in get:
            summary[str(m)] = {"maml_ms": get["maml"]["ms"], "jax_ms": get["jax"]["ms"],
                               "maml_x_jax": get["maml"]["x_jax"],
                               "maml_peak_rss_mib": get["maml"]["peak_rss_mib"],
                               "jax_peak_rss_mib": get["jax"]["peak_rss_mib"],
                               "maml_x_jax_memory": get["maml"]["x_jax_memory"]}
        for key in ("metasgd", "anil"):
            if key in get and f"{key}_jax" in get:
                summary.setdefault(str(m), {}).update({
                    f"{key}_ms": get[key]["ms"], f"{key}_jax_ms": get[f"{key}_jax"]["ms"],
                    f"{key}_x_jax": get[key]["x_jax"], f"{key}_x_jax_memory": get[key]["x_jax_memory"],
                    f"{key}_grad_diff_jax": get[f"{key}_jax"]["grad_diff"]})
    return {
        "settings": {"sizes": list(SIZES), "meta_batch_size": meta_batch_size, "k_support": k_support,
                     "k_query": k_query, "alpha": alpha, "dtype": "float32", "inner_steps": steps,
                     "repeats": repeats, "rounds": rounds, "quick": bool(quick), "seed": seed,
                     "threads": 1, "cpus": _cpus.describe(1), "xla_flags": _env()["XLA_FLAGS"],
                     "malloc_tuned_on_import": os.environ.get(TUNE_ENV, "1") != "0",
                     "reference_python": reference_python},
        "memory": {"compared": "peak_rss_mib",
                   "peak_rss_mib": "whole-process peak resident set size (VmHWM): interpreter, imports, data, "
                                   "compilation and the timed loop",
                   "added_rss_mib": "peak RSS added on top of the process after imports and data (VmHWM reset "
                                    "via /proc/self/clear_refs): warm-up, compilation and the timed loop",
                   "traced_mib": "tracemalloc peak of one call (Python / NumPy allocations; mlcourse rows only)"},
        "versions": versions,
        "skipped": skipped,
        "rows": rows,
        "summary": summary,
    }


def _anil_reference(theta, batch, alpha, steps):
    """ANIL's gradient as the mean of single-task gradients through autograd: a second computation to check
    the public API against."""
    from .. import anil, tree
    params = anil.split_mlp(theta)
    gs = [anil.anil_value_and_grad(params, batch.task(i), alpha, steps, backend="autograd")[1]
          for i in range(batch.num_tasks)]
    g = tree.scale(1.0 / len(gs), tree.tree_map(lambda *a: sum(a), *gs))
    return _flat([*g["body"], g["head"]])


def _anil_public(theta, batch, alpha, steps):
    from .. import anil
    g = anil.anil_value_and_grad(anil.split_mlp(theta), batch, alpha, steps)[1]
    return _flat([*g["body"], g["head"]])


def _metasgd_reference(theta, log_alpha, batch, steps, backend):
    """Meta-SGD's gradient [theta..., log_alpha...] in this process (backend "auto": the public API)."""
    from .. import metasgd
    g = metasgd.metasgd_value_and_grad({"theta": theta, "log_alpha": log_alpha}, batch, steps, backend=backend)[1]
    return _flat([*g["theta"], *g["log_alpha"]])


def _fmt(v, spec, missing="n/a"):
    return missing if v is None else format(v, spec)


def _pinned(settings):
    return f" ({settings['cpus']})" if settings.get("cpus") else ""


def print_table(result, file=None):
    s = result["settings"]
    file = file or sys.stdout
    v = result["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("numpy", "jax", "torch") if k in v)
    print(f"meta-iteration: MLP {'-'.join(map(str, s['sizes']))}, meta-batch {s['meta_batch_size']}, "
          f"K={s['k_support']}+{s['k_query']}, float32, one thread{_pinned(s)}; each path in its own fresh process, "
          f"median of its runs, median over {s['rounds']} round(s) (python {v['python']}, {libs})", file=file)
    print("memory: peak RSS = whole process (VmHWM, MiB; 'x JAX mem' compares this); added = peak RSS the "
          "computation adds after imports and data; traced = tracemalloc peak of one call", file=file)
    print("x JAX: time / the JAX row of the same computation (Meta-SGD's, ANIL's, else MAML's); grad diff: "
          "largest difference to the public API's gradient of that computation, relative (Meta-SGD's and ANIL's "
          "public API: to autograd's, computed in this process)", file=file)
    if s.get("cpus"):
        print("cpu/wall: the worker's CPU time (every thread) per wall second of its timed loop; 1.00 = one core busy",
              file=file)
    for m in s["inner_steps"]:
        block = [r for r in result["rows"] if r["inner_steps"] == m]
        print(f"\n{m} inner step{'s' if m != 1 else ''}, second order unless marked", file=file)
        print(f"{'path':<42}{'median ms':>10}{'spread':>17}{'x JAX':>7}{'x fastest':>10}{'peak RSS':>9}"
              f"{'x JAX mem':>10}{'added':>7}{'traced':>7}{'runs':>6}{'grad diff':>10}{'cpu/wall':>9}", file=file)
        for r in block:
            spread = f"{r['ms_min']:.2f}-{r['ms_max']:.2f}"
            print(f"{r['path']:<42}{r['ms']:>10.3f}{spread:>17}{_fmt(r['x_jax'], '.2f', '-'):>7}"
                  f"{r['x_fastest']:>10.1f}{_fmt(r['peak_rss_mib'], '.1f'):>9}"
                  f"{_fmt(r['x_jax_memory'], '.2f', '-'):>10}{_fmt(r['added_rss_mib'], '.1f'):>7}"
                  f"{_fmt(r['traced_mib'], '.2f', '-'):>7}{r['runs']:>6}{_fmt(r['grad_diff'], '.0e', '-'):>10}"
                  f"{_fmt(r.get('cpu_per_wall'), '.2f'):>9}",
                  file=file)
    for lib, why in result["skipped"].items():
        print(f"\n{lib} rows skipped: {why}", file=file)


def main(argv=None, reexec=None):
    """Run the benchmark; re-runs itself with one BLAS thread when started as a program."""
    reexec = argv is None if reexec is None else reexec
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="mlcourse bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300,
                        help="timed calls per process for the fast rows (median reported; autograd rows run "
                             "a tenth, the per-task loop a hundredth, at least 3)")
    parser.add_argument("--steps", default="1,5", help="comma list of inner step counts (default 1,5)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of fresh processes, each in its own (seeded) order (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="one round, fewer repeats for the slow autograd rows")
    parser.add_argument("--reference-python", metavar="PATH", default=None,
                        help="interpreter with numpy + jax + torch for the reference rows, when this one lacks them")
    parser.add_argument("--paths", default=None, help=f"comma list of rows to run (default all: {','.join(PATHS)})")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the whole table as JSON")
    parser.add_argument("--no-rl", action="store_true",
                        help="leave out the MAML-RL table (mlcourse bench rl), which runs after the sinusoid "
                             "table unless --paths is given")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    try:
        step_list = [int(s) for s in args.steps.split(",")]
    except ValueError:
        parser.error(f"--steps must be a comma list of integers, got {args.steps!r}")
    if any(s < 0 for s in step_list):
        parser.error(f"--steps must be >= 0, got {args.steps!r}")
    paths = None if args.paths is None else [p.strip() for p in args.paths.split(",") if p.strip()]
    if paths is not None and any(p not in PATHS for p in paths):
        parser.error(f"--paths: unknown row(s) {[p for p in paths if p not in PATHS]}; choose from {','.join(PATHS)}")
    if args.reference_python is not None and not os.path.exists(args.reference_python):
        parser.error(f"--reference-python {args.reference_python!r} does not exist; give an interpreter with "
                     "numpy, jax and torch, e.g. /path/to/venv/bin/python")
    if reexec:
        ensure_one_thread("mlcourse.experiments.speed", argv)
    result = run(steps=step_list, repeats=args.repeats, rounds=rounds, quick=args.quick,
                 reference_python=args.reference_python, paths=paths,
                 progress=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    print_table(result)
    if paths is None and not args.no_rl:   # MAML-RL: the meta-gradient and the rollouts, 1 and 2 threads
        from . import rl_bench
        print(f"\n  MAML-RL rows ({rounds} round(s), 1 and 2 threads) ...", file=sys.stderr, flush=True)
        result["rl"] = rl_bench.run(args.reference_python, rounds=rounds, repeats=2 if args.quick else 5)
        print("\n" + rl_bench.format_table(result["rl"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # python speed.py --worker KEY DATA STEPS REPEATS WARMUP GRAD_FILE
        _key, _data, _steps, _reps, _warm, _grad = sys.argv[2:8]
        print(json.dumps(worker(_key, _data, int(_steps), int(_reps), int(_warm), _grad)))
        sys.exit(0)
    sys.exit(main())
