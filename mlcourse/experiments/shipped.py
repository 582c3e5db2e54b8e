"""Results the package computed and ships, so that notebooks load in seconds what took minutes.

    load("sinusoid")            -> {"summary": dict (summary.json), "theta": {method: params}, "hparams", "dir"}
                                   the main job (``sinusoid_job.DEFAULTS``): the paper's protocol (K = 10,
                                   one inner step, 70000 iterations), meta-tested from K = 5, 10, 20;
                                   MAML with the paper's objective and with the multi-step loss, FOMAML
                                   on the paper's objective, the pretrained baseline (``DEFAULT_METHODS``)
    load("sinusoid_reptile5")   -> the same for Reptile meta-trained with five inner steps (notebook 05)
    load("sinusoid_variants")   -> MAML, Meta-SGD and ANIL with one setting of their own
                                   (``VARIANTS_SETTINGS``: K = 5, 2 inner steps, the multi-step loss;
                                   notebook 07)
    load("directions")          -> dict of arrays from ``direction_trace.make_results``: the main job's
                                   MAML run, with directions compared along it (notebook 04)

``COMMANDS[name]`` is the command that recomputes each (run from the repository root).

Files are found inside the installed package (``RESULTS_DIR``); ``path(name)`` tells where.
"""
from __future__ import annotations

import json
import os

import numpy as np

__all__ = ["RESULTS_DIR", "COMMANDS", "SINUSOID_RUNS", "EXTERNAL", "refresh", "available", "path", "load", "load_sinusoid", "load_directions", "load_speed", "TRAINED",
           "theta_from_flat"]

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# How each shipped result is recomputed: `mlcourse refresh-results NAME` (a developer command: it
# rewrites the files under RESULTS_DIR, in a source checkout only).  The equivalent user command,
# which writes elsewhere, is `mlcourse train sinusoid` with the options in REFRESH_OPTIONS.
COMMANDS = {name: f"mlcourse refresh-results {name}" for name in
            ("sinusoid", "sinusoid_reptile5", "sinusoid_variants", "directions")}
# The benchmark table the README quotes (machine-dependent; JAX and PyTorch in a side environment).
COMMANDS["speed"] = "mlcourse refresh-results speed --reference-python /path/to/venv-with-jax-and-torch/bin/python"
TRAINED = ("sinusoid", "sinusoid_reptile5", "sinusoid_variants", "directions")   # what `refresh-results` redoes by default
# The Meta-SGD / ANIL comparison of notebook 07 keeps a setting of its own (MAML's multi-step loss with 2 inner
# steps, K = 5 at training and at test, 30000 iterations), stated here rather than inherited from the main job.
VARIANTS_SETTINGS = dict(k_support=5, eval_k_shot=5, inner_steps=2, maml_loss="multistep", iterations=30000)
REFRESH_OPTIONS = {
    "sinusoid": dict(methods=("maml", "maml_multistep", "fomaml", "pretrain")),   # sinusoid_job.DEFAULT_METHODS
    "sinusoid_reptile5": dict(methods=("reptile",), inner_steps=5),
    "sinusoid_variants": dict(methods=("maml", "metasgd", "anil"), **VARIANTS_SETTINGS),
}

SINUSOID_RUNS = ("sinusoid", "sinusoid_reptile5", "sinusoid_variants")  # folders written by `mlcourse train sinusoid`

# Results of the other jobs, each in the folder RESULTS_DIR/<name>/: name -> the module of
# mlcourse.experiments that writes and reads it, through
#     refresh_shipped(folder, progress=True, reference_python=None)   (recompute, overwrite the folder)
#     load_shipped(folder) -> dict                                   (what the notebooks use)
# and ONE_THREAD (optional, default True: the refresh runs with one BLAS thread).
# A name counts once its module exists.
EXTERNAL = {name: module for name, module in {
    "omniglot": "omniglot_job",
    "overfitting": "overfitting_job",
    "navigation": "navigation_job",
}.items() if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), module + ".py"))}
for _name in EXTERNAL:
    COMMANDS[_name] = f"mlcourse refresh-results {_name}"
TRAINED = TRAINED + tuple(EXTERNAL)


def _external(name):
    import importlib
    return importlib.import_module(f"{__package__}.{EXTERNAL[name]}")


def refresh(name, progress=True, reference_python=None):
    """Recompute the external result `name` into its folder (the developer command refresh-results)."""
    _external(name).refresh_shipped(path(name), progress=progress, reference_python=reference_python)


def wants_one_thread(names):
    """Whether refreshing `names` should run with one BLAS thread (every sinusoid run does)."""
    return any(n not in EXTERNAL or getattr(_external(n), "ONE_THREAD", True) for n in names)


def inside_package(p):
    """True when path p lies inside the mlcourse package folder (installed or in the source checkout)."""
    p, pkg = os.path.realpath(os.fspath(p)), os.path.realpath(PACKAGE_DIR)
    return p == pkg or p.startswith(pkg + os.sep)


def check_out_dir(out_dir, refresh_shipped=False):
    """Refuse to write a run into the package, except for the developer refresh of the shipped results."""
    if inside_package(out_dir) and not refresh_shipped:
        raise ValueError(f"--out {out_dir} lies inside the mlcourse package; choose a folder of your own "
                         "(the shipped results are rewritten only by the developer command "
                         "`mlcourse refresh-results`).")


def is_source_checkout():
    """The package sits in a git checkout of the project (where refreshed results can be committed)."""
    root = os.path.dirname(PACKAGE_DIR)
    # .git is a folder in a clone and a file in a `git worktree`
    return os.path.exists(os.path.join(root, "pyproject.toml")) and os.path.exists(os.path.join(root, ".git"))


def path(name):
    """Where result `name` lives: a folder for the sinusoid runs, a file for "directions"."""
    if name in SINUSOID_RUNS:
        return os.path.join(RESULTS_DIR, name)
    if name == "directions":
        return os.path.join(RESULTS_DIR, "directions.npz")
    if name == "speed":
        return os.path.join(RESULTS_DIR, "speed.json")
    if name in EXTERNAL:
        return os.path.join(RESULTS_DIR, name)
    raise ValueError(f"unknown result {name!r}; available: {', '.join(COMMANDS)}.")


def load_speed(file=None):
    """The benchmark table of ``mlcourse bench --json`` (``speed.run``) that the README quotes."""
    file = file or path("speed")
    if not os.path.exists(file):
        raise _missing("speed")
    with open(file) as f:
        return json.load(f)


def available():
    """Names whose files are present."""
    return [n for n in COMMANDS if os.path.exists(path(n))]


def _missing(name):
    return FileNotFoundError(f"the shipped result {name!r} is missing at {path(name)}; "
                             f"recompute it with: {COMMANDS[name]}")


def load_sinusoid(folder=None):
    """summary.json and every checkpoint of a sinusoid run folder (default: the shipped one)."""
    from .. import train
    folder = folder or path("sinusoid")
    summary_path = os.path.join(folder, "summary.json")
    if not os.path.exists(summary_path):
        shipped = {path(n): n for n in SINUSOID_RUNS}
        raise _missing(shipped[folder]) if folder in shipped else FileNotFoundError(
            f"no summary.json in {folder}; run `mlcourse train sinusoid --out {folder}` first.")
    with open(summary_path) as f:
        summary = json.load(f)
    theta, hparams = {}, {}
    for method, fname in summary.get("checkpoints", {}).items():
        theta[method], hparams[method], _ = train.load_checkpoint(os.path.join(folder, fname))
    return {"summary": summary, "theta": theta, "hparams": hparams, "dir": folder}


def load_directions(file=None):
    """The direction trace of ``direction_trace.direction_trace`` as a dict of arrays (and its config)."""
    file = file or path("directions")
    if not os.path.exists(file):
        raise _missing("directions")
    with np.load(file, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["config"] = dict(zip(out.pop("config_keys").tolist(), out.pop("config_values").tolist()))
    return out


def load(name):
    """Load a shipped result by name: "sinusoid", "sinusoid_reptile5", "sinusoid_variants", "directions",
    "speed", or one of EXTERNAL (through its module's load_shipped)."""
    if name in SINUSOID_RUNS:
        return load_sinusoid(path(name))
    if name == "directions":
        return load_directions()
    if name == "speed":
        return load_speed()
    if name in EXTERNAL:
        if not os.path.isdir(path(name)):
            raise _missing(name)
        return _external(name).load_shipped(path(name))
    raise ValueError(f"unknown result {name!r}; available: {', '.join(COMMANDS)}.")


def theta_from_flat(vec, sizes=(1, 40, 40, 1), dtype=np.float32):
    """Rebuild MLP parameters [(W, b), ...] from a flat vector (the order of tree.flatten)."""
    vec = np.asarray(vec)
    need = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if vec.ndim != 1 or vec.size != need:
        raise ValueError(f"a flat vector of shape {vec.shape} does not fit an MLP of sizes {list(sizes)} "
                         f"({need} parameters); pass one snapshot (1-D) and the sizes it was trained with.")
    theta, i = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        W = vec[i:i + fan_in * fan_out].reshape(fan_in, fan_out).astype(dtype)
        i += fan_in * fan_out
        b = vec[i:i + fan_out].astype(dtype)
        i += fan_out
        theta.append((W, b))
    return theta
