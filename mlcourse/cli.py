"""The `mlcourse` command line (``python -m mlcourse`` is the same)."""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys

# Mistakes a user can fix (bad values, missing or existing files, a diverging run): one line, exit 1.
# Anything else (KeyError, TypeError, ...) is a bug of the package and shows its traceback.
USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, FloatingPointError, NotADirectoryError,
               PermissionError, IsADirectoryError)


class CLIError(Exception):
    """A problem with the command line the user can fix; printed as one line, exit code 2."""


# What each optional extra of pyproject.toml brings (the engine itself needs numpy, autograd and tqdm only).
ENGINE = ("numpy", "autograd", "tqdm")
EXTRAS = {
    "plots": ("matplotlib",),
    "course": ("jupyterlab", "ipywidgets", "matplotlib"),
    "grading": ("nbformat", "nbclient", "IPython", "ipykernel"),  # ipykernel: `mlcourse assign` runs notebooks
    "practice": ("fsrs",),
}


def missing_modules(names):
    """The names among `names` that cannot be imported here."""
    import importlib
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


class MissingExtra(Exception):
    """A command needs an optional extra that is not installed; printed as one line, exit code 3."""

    def __init__(self, command, extra, missing):
        super().__init__(f"mlcourse {command}: needs the {extra} extra ({', '.join(missing)} not installed): "
                         f"pip install 'mlcourse[{extra}]'")


def require(command, extra, modules=None):
    """Raise MissingExtra unless every module the command needs from `extra` imports."""
    missing = missing_modules(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise MissingExtra(command, extra, missing)


def _int_at_least(minimum, example):
    """argparse type: an integer >= minimum (the message names the option's rule and an example)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum} (for example {example}), got {value}")
        return value
    return parse


def course_root():
    """Folder holding notebooks/ and exercises/: the source checkout, or the installed copy."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (here, os.path.join(sys.prefix, "share", "mlcourse")):
        if os.path.isdir(os.path.join(root, "notebooks")):
            return root
    raise FileNotFoundError("the course notebooks were not found next to the package or in "
                            f"{os.path.join(sys.prefix, 'share', 'mlcourse')}; reinstall mlcourse.")


def init_course(dest, overwrite=False):
    """Copy notebooks/ and exercises/ into dest (a private, writable copy); return the paths copied."""
    root = course_root()
    if os.path.abspath(dest) == os.path.abspath(root):
        raise CLIError("the destination is the course source itself; choose another folder.")
    copied = []
    for sub in ("notebooks", "exercises"):
        src = os.path.join(root, sub)
        if not os.path.isdir(src):
            continue
        for dirpath, _, files in os.walk(src):
            rel = os.path.relpath(dirpath, root)
            if ".ipynb_checkpoints" in rel:
                continue
            os.makedirs(os.path.join(dest, rel), exist_ok=True)
            for fn in sorted(files):
                target = os.path.join(dest, rel, fn)
                if os.path.exists(target) and not overwrite:
                    continue  # never clobber a learner's work
                shutil.copy2(os.path.join(dirpath, fn), target)
                copied.append(target)
    return copied


def cmd_init(args):
    copied = init_course(args.dir, overwrite=args.overwrite)
    print(f"copied {len(copied)} file(s) into {os.path.abspath(args.dir)} "
          f"(existing files kept{'' if not args.overwrite else ', except with --overwrite'}).")
    return 0


def cmd_course(args):
    require("course", "course")
    target = args.dir
    if target is None:
        target = os.path.join(course_root(), "notebooks")
    elif not os.path.isdir(os.path.join(target, "notebooks")):
        init_course(target)
        print(f"made a private copy of the course in {os.path.abspath(target)}")
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={os.path.abspath(target)}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root; Jupyter refuses without this
        cmd.append("--allow-root")
    cmd += args.lab_args
    print("starting:", " ".join(cmd), flush=True)
    os.execv(sys.executable, cmd)  # become JupyterLab: Ctrl-C and signals reach the server itself


def job_modules(suffix):
    """{name: module name} of the experiment modules ``mlcourse/experiments/<name><suffix>.py``.

    ``mlcourse train NAME`` runs ``<NAME>_job`` and ``mlcourse bench NAME`` runs ``<NAME>_bench`` (each
    parses its own options); the sinusoid job and the sinusoid benchmark are the defaults.
    """
    import pkgutil

    from . import experiments
    found = {}
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.endswith(suffix) and info.name != "sinusoid" + suffix:
            found[info.name[:-len(suffix)]] = f"mlcourse.experiments.{info.name}"
    return found


def own_parser_command(command, name, module_name, argv):
    """(args, one_thread) for ``mlcourse COMMAND NAME ...`` handled by a job module with its own options.

    The module defines ``add_arguments(parser)``, ``cli(args) -> exit code`` and, optionally,
    ``ONE_THREAD`` (default True: the command re-runs itself with one BLAS thread, like the sinusoid job).
    """
    import importlib
    mod = importlib.import_module(module_name)
    p = argparse.ArgumentParser(prog=f"mlcourse {command} {name}", description=(mod.__doc__ or "").split("\n")[0])
    mod.add_arguments(p)
    args = p.parse_args(argv)
    args.command, args.func = f"{command} {name}", mod.cli
    return args, getattr(mod, "ONE_THREAD", True)


def cmd_train(args):
    from .experiments import sinusoid_job
    if args.task != "sinusoid":
        raise CLIError(f"unknown task {args.task!r}; available: {', '.join(['sinusoid', *job_modules('_job')])}")
    out = args.out or os.path.join("runs", "sinusoid-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    overrides = {}
    for key in ("iterations", "pretrain_iterations", "seed", "alpha", "beta", "inner_steps", "meta_batch_size",
                "k_support", "eval_tasks", "maml_loss"):
        v = getattr(args, key)
        if v is not None:
            overrides[key] = v
    methods = tuple(args.methods.split(",")) if args.methods else sinusoid_job.DEFAULT_METHODS
    bad = [m for m in methods if m not in sinusoid_job.METHODS]
    if bad:
        raise CLIError(f"unknown method(s) {bad}; use a comma list of {', '.join(sinusoid_job.METHODS)}.")
    if len(set(methods)) < len(methods):
        raise CLIError(f"--methods names a method twice ({args.methods}); list each once.")
    figure = None
    if not missing_modules(EXTRAS["plots"]):  # without matplotlib: train anyway, say how to get the figure
        from .viz.sinusoid import main_job_figure as figure
    summary = sinusoid_job.run(out, progress=not args.no_progress, overwrite=args.overwrite, methods=methods,
                               workers=args.workers, figure=figure, **overrides)
    print(sinusoid_job.format_table(summary))
    print("\n" + sinusoid_job.format_k_table(summary))
    written = [os.path.join(out, "summary.json")] + ([summary["figure"]] if "figure" in summary else [])
    print(f"\nwrote {', '.join(written)} and the checkpoints in {out}")
    if figure is None:
        print("no figure written: matplotlib is not installed; pip install 'mlcourse[plots]' and run again for "
              "sinusoid.png")
    return 0


def cmd_refresh_results(args):
    from .experiments import direction_trace, shipped, sinusoid_job
    if not shipped.is_source_checkout():
        raise CLIError("refresh-results rewrites the shipped results of a source checkout; this mlcourse is an "
                       f"installed package ({shipped.PACKAGE_DIR}). Use `mlcourse train sinusoid --out DIR` instead.")
    names = args.names or list(shipped.TRAINED)
    bad = [n for n in names if n not in shipped.COMMANDS]
    if bad:
        raise CLIError(f"unknown result(s) {bad}; choose from {', '.join(shipped.COMMANDS)}.")
    if "speed" in names and not args.reference_python:
        raise CLIError("refreshing speed needs --reference-python PATH: a Python with jax and torch, so that the "
                       "shipped table has its JAX and PyTorch rows.")
    require("refresh-results", "plots")  # the shipped results include their figures
    from .viz.sinusoid import main_job_figure
    for name in names:
        print(f"refreshing {name} -> {shipped.path(name)}", flush=True)
        if name == "speed":
            import json

            from .experiments import speed
            from .experiments import rl_bench
            # 0 inner steps too: the README compares ANIL's cost without any inner step with JAX's meta-iteration
            table = speed.run(steps=(0, 1, 5), reference_python=args.reference_python, progress=print)
            if table.get("skipped"):
                raise CLIError(f"not refreshed: reference rows were skipped ({table['skipped']}).")
            table["rl"] = rl_bench.run(args.reference_python)   # the MAML-RL table, as plain `mlcourse bench`
            if table["rl"].get("torch_skipped"):
                raise CLIError(f"not refreshed: the PyTorch rows were skipped ({table['rl']['torch_skipped']}).")
            tmp = shipped.path(name) + ".tmp"
            with open(tmp, "w") as f:
                json.dump(table, f, indent=1)
            os.replace(tmp, shipped.path(name))
            speed.print_table(table)
            print("\n" + rl_bench.format_table(table["rl"]))
        elif name in shipped.EXTERNAL:
            shipped.refresh(name, progress=not args.no_progress, reference_python=args.reference_python)
        elif name == "directions":
            direction_trace.make_results(os.path.dirname(shipped.path(name)), progress=not args.no_progress)
        else:
            summary = sinusoid_job.run(shipped.path(name), progress=not args.no_progress, overwrite=True,
                                       figure=main_job_figure, refresh_shipped=True, **shipped.REFRESH_OPTIONS[name])
            print(sinusoid_job.format_table(summary))
    return 0


def cmd_check(args):
    import platform
    import numpy as np
    from . import checks, maml, nets, tasks
    print(f"python {platform.python_version()}  numpy {np.__version__}")
    ok = True
    for mod in ENGINE:
        try:
            m = __import__(mod)
            print(f"  {mod:<12} {getattr(m, '__version__', 'ok')}")
        except ImportError as e:
            ok = False
            print(f"  {mod:<12} MISSING ({e}); the engine needs it: pip install mlcourse")
    missing_extras = []
    for extra, mods in EXTRAS.items():
        missing = missing_modules(mods)
        if missing:
            missing_extras.append(extra)
            print(f"  [{extra}] extra: {', '.join(missing)} missing; pip install 'mlcourse[{extra}]'")
        else:
            print(f"  [{extra}] extra: installed ({', '.join(mods)})")
    rng = np.random.default_rng(0)
    batch = tasks.Sinusoid().sample(rng, 3, 5, 5)
    theta = nets.mlp_init(rng, [1, 8, 1])
    err = checks.rel_error(maml.maml_grad(theta, batch, 0.01, 2), maml.maml_grad(theta, batch, 0.01, 2,
                                                                                   backend="autograd"))
    print(f"  MAML fast path vs autograd: relative error {err:.1e}")
    ok &= err < 1e-10
    try:
        print(f"  course files  {course_root()}")
    except FileNotFoundError as e:
        ok = False
        print(f"  course files  MISSING: {e}")
    if not ok:
        print("installation has problems (see above)")
    elif missing_extras:
        print(f"installation OK for the engine; extras not installed: {', '.join(missing_extras)} (see above)")
    else:
        print("installation OK")
    return 0 if ok else 1


def cmd_data(args):
    from .data import omniglot
    if args.dataset is None:
        print(f"Omniglot: looked in {omniglot.ENV_VAR}={os.environ.get(omniglot.ENV_VAR) or '(not set)'}, then the "
              f"cache {omniglot.default_cache_dir() / 'omniglot'}")
        width = max(len(n) for n, _ in omniglot.locate_all())
        for name, path in omniglot.locate_all():
            if path is not None:
                print(f"  {name:<{width}}  found: {path}")
            else:
                print(f"  {name:<{width}}  missing: run `{omniglot.download_command(name)}`, or put {name}.zip "
                      f"(or the folder {name}/) into ${omniglot.ENV_VAR} or the cache folder")
        return 0
    for split in args.split:
        if split not in (*omniglot.SPLITS, omniglot.BENCHMARK):
            raise CLIError(f"unknown split {split!r}; choose from {', '.join((*omniglot.SPLITS, omniglot.BENCHMARK))}.")
    if args.url and args.url.lower().endswith(".zip") and len(set(args.split)) > 1:
        raise CLIError("--url names one zip; with several splits give the folder that holds them (a base URL).")
    dest = args.dest or (omniglot.default_cache_dir() / "omniglot")
    for split in dict.fromkeys(args.split):   # each named split once, in the order given
        path = omniglot.download(split, dest=dest, url=args.url, overwrite=args.overwrite,
                                 progress=lambda text: print(text, flush=True))
        print(f"{split}: {path}")
    return 0


def _interval(errors):
    """(mean, 1.96 * sd / sqrt(n)) of per-run errors (sd with ddof=1; 0 for a single run)."""
    import numpy as np
    e = np.asarray(errors, dtype=float)
    return float(e.mean()), float(1.96 * e.std(ddof=1) / np.sqrt(len(e))) if len(e) > 1 else 0.0


def write_json_atomically(path, obj):
    """json.dump to path via a temporary file in the same folder and os.replace: never half-written."""
    import json
    import tempfile
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder of --json {path} does not exist; create it first or choose another.")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cmd_eval_oneshot(args):
    import importlib
    from .data.oneshot import load_runs
    if args.json and os.path.isdir(args.json):
        raise CLIError(f"--json {args.json} is a folder; name a file, for example {os.path.join(args.json, 'oneshot.json')}.")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise FileNotFoundError(f"the folder of --json {args.json} does not exist; create it first or choose another.")
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint {args.checkpoint} does not exist; pass a file written by "
                                "`mlcourse train omniglot`, or leave --checkpoint out for the shipped ProtoNet.")
    runs = load_runs(args.path)
    job = importlib.import_module("mlcourse.experiments.omniglot_job")
    result = dict(job.evaluate_oneshot(runs, args.checkpoint))
    errors = [float(e) for e in result["errors"]]
    if len(errors) != len(runs):
        raise RuntimeError(f"evaluate_oneshot returned {len(errors)} errors for {len(runs)} runs")
    mean, ci95 = _interval(errors)
    model = result.get("checkpoint") or args.checkpoint or "the shipped ProtoNet"
    print(f"one-shot benchmark {args.path}: {len(runs)} runs of {runs[0].n_way}-way 1-shot, model: {model}"
          + (f" ({result['method']})" if result.get("method") else ""))
    for run, e in zip(runs, errors):
        print(f"  {run.name}  error {100 * e:5.1f}%")
    print(f"overall error {100 * mean:.1f}% +- {100 * ci95:.1f}% (95% interval over the {len(runs)} runs)")
    if args.json:
        out = {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
        out.update(benchmark=os.path.abspath(args.path), runs=[r.name for r in runs], errors=errors, error=mean,
                   ci95=ci95, checkpoint=result.get("checkpoint") or args.checkpoint)
        write_json_atomically(args.json, out)
        print(f"wrote {args.json}")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="mlcourse", description="Meta-learning, hands-on: the course and its engine.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("course", help="open the course in JupyterLab (DIR: make/use a private copy there)")
    s.add_argument("dir", nargs="?", help="folder for your own copy of the course (created if missing)")
    s.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    s.add_argument("lab_args", nargs=argparse.REMAINDER, help="further arguments for jupyter lab")
    s.set_defaults(func=cmd_course)

    s = sub.add_parser("init", help="copy the notebooks and exercises into DIR, a private writable copy")
    s.add_argument("dir")
    s.add_argument("--overwrite", action="store_true", help="replace files that already exist in DIR")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("train", help="meta-train and evaluate (default: the MAML paper's sinusoid protocol)")
    s.add_argument("task", nargs="?", default="sinusoid", help="task family (default: sinusoid; the others, "
                   "for example `mlcourse train omniglot --help`, have options of their own)")
    s.add_argument("--out", help="output folder (default: runs/sinusoid-<time>)")
    from .experiments.sinusoid_job import DEFAULT_METHODS, METHODS
    s.add_argument("--methods", help=f"comma list of {','.join(METHODS)} (default: {','.join(DEFAULT_METHODS)})")
    s.add_argument("--iterations", type=int, help="meta-iterations per method (default 30000)")
    s.add_argument("--pretrain-iterations", type=int, help="iterations for the baseline (default 30000)")
    s.add_argument("--seed", type=_int_at_least(0, 1), help="random seed, an integer >= 0 (default 0)")
    s.add_argument("--alpha", type=float, help="inner step size (default 0.01)")
    s.add_argument("--beta", type=float, help="outer Adam learning rate (default 0.001)")
    s.add_argument("--inner-steps", type=int, help="inner steps during meta-training (default 1, the paper)")
    s.add_argument("--maml-loss", choices=("multistep", "last"),
                   help="MAML's query loss: after the last inner step (default, the paper) or the mean over them")
    s.add_argument("--meta-batch-size", type=int, help="tasks per meta-batch (default 25)")
    s.add_argument("--k-support", type=int, help="support points per task during meta-training (default 10, the "
                   "paper; meta-test uses K = 5, 10 and 20)")
    s.add_argument("--eval-tasks", type=_int_at_least(1, 600), help="fresh meta-test tasks (default 2000)")
    s.add_argument("--workers", type=_int_at_least(1, 2), help="processes training methods side by side (default: "
                   "one per method, up to the number of cores)")
    s.add_argument("--overwrite", action="store_true", help="replace checkpoints already in --out")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("refresh-results", help="developer command: recompute the shipped results and REWRITE "
                       "them inside this source checkout (mlcourse/experiments/results/)",
                       description="Developer command. Recomputes the results the notebooks load and overwrites "
                       "the files under mlcourse/experiments/results/ of this source checkout (refused on an "
                       "installed package). Users who want their own run: mlcourse train sinusoid --out DIR.")
    s.add_argument("names", nargs="*", help="results to refresh (default: sinusoid, sinusoid_reptile5, "
                   "sinusoid_variants, directions and the other jobs' results); speed (the benchmark table) only "
                   "when named")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--reference-python", metavar="PATH",
                   help="for speed: a Python with jax and torch installed (the benchmark's reference rows)")
    s.set_defaults(func=cmd_refresh_results)

    s = sub.add_parser("check", help="check the installation (packages, a gradient check, course files)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("data", help="where each data set was found, or how to get it; `data omniglot` downloads",
                       description="Without an argument: for each Omniglot split, where it was found or the one "
                       "command that provides it.  `mlcourse data omniglot --split NAME [NAME ...]` downloads each "
                       "NAME.zip from the official release into the cache (checksum verified, written atomically).")
    s.add_argument("dataset", nargs="?", choices=("omniglot",), help="download this data set (omniglot)")
    s.add_argument("--split", nargs="+", default=["images_background_small1"], metavar="NAME",
                   help="which zips (one or more): images_background, images_evaluation, images_background_small1 "
                   "(default), images_background_small2, or all_runs (the 2015 one-shot benchmark)")
    s.add_argument("--url", help="the zip's URL, or a base URL holding the release (default: $MLCOURSE_OMNIGLOT_URL, "
                   "else the official GitHub release)")
    s.add_argument("--dest", help="folder to write into (default: the cache folder, where loading looks)")
    s.add_argument("--overwrite", action="store_true", help="download again even if the zip is already there")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("eval-oneshot", help="error of a trained model on the 2015 one-shot benchmark (20 runs)")
    s.add_argument("path", help="the benchmark: a folder or zip (all_runs.zip) holding run01..run20")
    s.add_argument("--checkpoint", metavar="FILE", help="a checkpoint of `mlcourse train omniglot` (default: the "
                   "shipped ProtoNet)")
    s.add_argument("--json", metavar="FILE", help="also write the per-run errors and the summary as JSON")
    s.set_defaults(func=cmd_eval_oneshot)

    sub.add_parser("bench", help="time a meta-iteration of every engine path (mlcourse bench --help)",
                   add_help=False)

    s = sub.add_parser("site", help="build the course as a static website in OUT (default _site); --check audits it")
    s.add_argument("out", nargs="?", default="_site", metavar="OUT",
                   help="output folder (replaced when it holds an earlier build; default: _site)")
    s.add_argument("--check", action="store_true",
                   help="then audit every page in headless Chromium: axe-core WCAG 2.1 A/AA, links, images, headings")
    s.add_argument("--repository-url", default=None,
                   help="repository the launch links open (default: [project.urls] Repository of pyproject.toml)")
    s.add_argument("--branch", default="main", help="branch the Binder and Colab links open (default: main)")
    s.add_argument("--source", default=None, help="course folder holding notebooks/, exercises/ and README.md")
    s.set_defaults(func=cmd_site)

    from .grading.commands import add_commands  # listed always; each says which extra it needs when missing
    add_commands(sub)
    from .practice.subcommands import add_commands as add_practice_commands  # practice, progress
    add_practice_commands(sub)
    return p


def cmd_site(args):
    """mlcourse site [OUT] [--check]: the static website (needs the [site] extra)."""
    require("site", "site", ("sphinx", "myst_nb", "sphinx_book_theme", "ipywidgets", "matplotlib")
            + (("playwright", "axe_playwright_python") if args.check else ()))
    from .site import build as site_build
    r = site_build.build(args.out, root=args.source or course_root(), repo_url=args.repository_url,
                         branch=args.branch)
    print(f"built {len(r['pages'])} pages in {r['seconds']:.1f} s: {os.path.join(r['out'], 'index.html')}")
    if not args.check:
        return 0
    from .site import audit
    rows = audit.audit(r["out"])
    print(audit.table(rows))
    found = audit.problems(rows)
    for line in found:
        print(f"FAIL {line}")
    print(f"{len(rows)} pages audited (axe-core WCAG 2.1 A/AA, internal links, images, headings, text "
          f"alternatives): {len(found)} problem(s)")
    return 1 if found else 0


def main(argv=None):
    from ._runtime import tune_allocator
    tune_allocator()  # recycle the engine's ~160 KB temporaries from the heap (see mlcourse/_runtime.py)
    from_command_line = argv is None  # only then may the process re-run itself (one BLAS thread)
    argv = list(sys.argv[1:] if argv is None else argv)
    benches = job_modules("_bench") if argv[:1] == ["bench"] and argv[1:2] else {}
    if argv[1:2] and argv[1] in benches:  # e.g. mlcourse bench omniglot
        import importlib
        return importlib.import_module(benches[argv[1]]).main(argv[2:])
    if argv[:1] == ["bench"]:  # the benchmark has its own parser (and re-runs itself with one thread)
        from .experiments import speed
        return speed.main(argv[1:], reexec=from_command_line)
    one_thread = True
    jobs = job_modules("_job") if argv[:1] == ["train"] and argv[1:2] else {}
    if argv[1:2] and argv[1] in jobs:  # a job with its own options
        args, one_thread = own_parser_command("train", argv[1], jobs[argv[1]], argv[2:])
        parser = None
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
    if args.command == "refresh-results":
        from .experiments import shipped
        one_thread = shipped.wants_one_thread(args.names or shipped.TRAINED)
    if (args.command or "").split()[:1] in (["train"], ["refresh-results"]) and one_thread and from_command_line:
        from .experiments.speed import ensure_one_thread
        ensure_one_thread("mlcourse", argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        need = getattr(args, "needs", None)  # (extra, modules) a grading command declares
        if callable(need):
            need = need(args)
        if need:
            require(args.command, *need)
        return args.func(args) or 0
    except MissingExtra as e:
        print(e, file=sys.stderr)
        return 3
    except CLIError as e:
        print(f"mlcourse {args.command}: error: {e}", file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        msg = e.args[0] if len(e.args) == 1 else str(e)
        print(f"mlcourse {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlcourse {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
