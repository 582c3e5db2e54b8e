"""The package's layers, read from the imports of every module (``ast``, imports inside functions too).

    engine        mlcourse/*.py (but cli, __main__) and mlcourse/data/   numpy, autograd, tqdm, the standard library
    experiments   mlcourse/experiments/
    course        mlcourse/viz/, mlcourse/grading/ and mlcourse/practice/ (viz and grading do not import each
                  other; practice reads grading's question bank and mistakes catalogue)
    site          mlcourse/site/: the website of the course (reads viz's widget descriptions)
    top           mlcourse/cli.py, mlcourse/__main__.py

A module may import its own layer and the layers below it, never one above.  The one import the
engine makes outside its dependencies is Pillow, inside the Omniglot loader's PNG decoder (lazily:
importing ``mlcourse.data.omniglot`` works without it).
"""
import ast
import os
import sys
from pathlib import Path

import pytest

import mlcourse

from labtools import run_without

PKG = Path(mlcourse.__file__).resolve().parent
RANK = {"engine": 0, "experiments": 1, "viz": 2, "grading": 2, "practice": 2, "site": 3, "top": 4}
ENGINE_DEPENDENCIES = {"numpy", "autograd", "tqdm"}
LAZY_EXCEPTIONS = {("mlcourse.data.omniglot", "PIL")}   # Pillow decodes Omniglot's PNGs, imported on first use
COURSE_STACK = {"matplotlib", "ipywidgets", "jupyterlab", "jupyter", "jupyter_client", "jupyter_core",
                "jupyter_server", "notebook", "IPython", "ipykernel", "nbformat", "nbclient", "PIL"}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def layer(module):
    """The layer of a module of the package, by its dotted name."""
    parts = module.split(".")
    if parts[:2] in (["mlcourse", "cli"], ["mlcourse", "__main__"]):
        return "top"
    if len(parts) > 1 and parts[1] in ("experiments", "viz", "grading", "practice", "site"):
        return parts[1]
    return "engine"


def modules_of(pkg=PKG):
    """{dotted name: (source, is_package)} for every .py file of the package."""
    found = {}
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg.parent).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path.read_text(), is_package)
    return found


def imports(module, source, is_package=False, known=()):
    """[(imported module, line, inside a function)] of one module, relative imports made absolute.

    ``from . import x`` names the submodule ``pkg.x`` when it is one of the `known` modules.
    """
    tree = ast.parse(source)
    package = module.split(".") if is_package else module.split(".")[:-1]
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[:len(package) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module
                for a in child.names:
                    sub = f"{target}.{a.name}"
                    out.append((sub if sub in known else target, child.lineno, in_function))
            visit(child, nested)
    visit(tree, False)
    return out


def violations(mods):
    """Every import that breaks the layering rules, as readable lines (empty when all is well)."""
    bad = []
    for module, (source, is_package) in mods.items():
        mine = layer(module)
        for target, line, lazy in imports(module, source, is_package, known=mods):
            top = target.split(".")[0]
            where = f"{module}:{line} imports {target}"
            if top == "mlcourse":
                theirs = layer(target)
                if RANK[theirs] > RANK[mine]:
                    bad.append(f"{where}: the {mine} layer may not import the {theirs} layer above it")
                elif {mine, theirs} == {"viz", "grading"}:
                    bad.append(f"{where}: viz and grading do not import each other")
            elif mine == "engine" and top not in STDLIB | ENGINE_DEPENDENCIES:
                if not ((module, top) in LAZY_EXCEPTIONS and lazy):
                    bad.append(f"{where}: the engine needs only numpy, autograd and tqdm")
            elif mine == "experiments" and top in COURSE_STACK:
                bad.append(f"{where}: experiments run without the plotting and Jupyter stack")
    return bad


def test_dependencies_point_down_only():
    assert violations(modules_of()) == []


def test_the_scanner_finds_bad_imports():
    """Imports a layering mistake would add, at top level and inside functions: each is flagged."""
    bad_engine = ("import numpy as np\nfrom .viz import sinusoid\n"
                  "def f():\n    import matplotlib.pyplot as plt\n    from .experiments import shipped\n"
                  "    from PIL import Image\n")
    mods = {
        "mlcourse.tasks": (bad_engine, False),
        "mlcourse.viz.sinusoid": ("from ..grading import bank\n", False),
        "mlcourse.grading.bank": ("from .. import cli\n", False),
        "mlcourse.experiments.shipped": ("import ipywidgets\nfrom .. import maml\n", False),
        "mlcourse.data.omniglot": ("from PIL import Image\n", False),   # Pillow at import time: not lazy
        "mlcourse.maml": ("from .practice import skills\n", False),      # the engine never imports practice
        "mlcourse.cli": ("from .viz import sinusoid\nfrom .grading import bank\nimport matplotlib\n", False),
    }
    found = violations(mods)
    assert sorted(line.split(" imports ")[0] for line in found) == [
        "mlcourse.data.omniglot:1", "mlcourse.experiments.shipped:1", "mlcourse.grading.bank:1", "mlcourse.maml:1",
        "mlcourse.tasks:2", "mlcourse.tasks:4", "mlcourse.tasks:5", "mlcourse.tasks:6", "mlcourse.viz.sinusoid:1"]
    assert any("mlcourse.grading.bank:1 imports mlcourse.cli" in line for line in found)


def test_relative_imports_are_resolved():
    src = "from . import bank\nfrom .. import maml, tree\nfrom ..tasks import TaskBatch\nimport numpy.linalg\n"
    known = {"mlcourse.grading.bank": None, "mlcourse.maml": None, "mlcourse.tree": None}
    assert [t for t, _, _ in imports("mlcourse.grading.commands", src, known=known)] == [
        "mlcourse.grading.bank", "mlcourse.maml", "mlcourse.tree", "mlcourse.tasks", "numpy.linalg"]
    assert [t for t, _, _ in imports("mlcourse.grading", "from .feedback import check\n", is_package=True)] == [
        "mlcourse.grading.feedback"]
    assert layer("mlcourse") == layer("mlcourse.data.omniglot") == layer("mlcourse._runtime") == "engine"
    assert layer("mlcourse.grading.questions.ex03") == "grading" and layer("mlcourse.__main__") == "top"
    assert layer("mlcourse.practice.store") == "practice"


def test_no_two_modules_share_a_file_name():
    names = {}
    for path in PKG.rglob("*.py"):
        if path.name != "__init__.py":
            names.setdefault(path.name, []).append(str(path.relative_to(PKG)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}


def engine_modules():
    return [m for m in modules_of() if layer(m) == "engine"]


def test_the_engine_imports_and_runs_without_the_course_stack():
    """A fresh Python where matplotlib, ipywidgets, Jupyter, IPython, nbformat, nbclient and Pillow are
    missing imports every engine module, computes meta-gradients and shows the progress bar."""
    assert "mlcourse.maml" in engine_modules() and "mlcourse.data.omniglot" in engine_modules()
    code = (f"import importlib\nfor m in {engine_modules()!r}:\n    importlib.import_module(m)\n"
            "import numpy as np\nfrom tqdm.auto import tqdm\nfrom mlcourse import maml, nets, reptile, tasks\n"
            "rng = np.random.default_rng(0)\n"
            "theta, batch = nets.mlp_init(rng, [1, 8, 1]), tasks.Sinusoid().sample(rng, 2, 5, 5)\n"
            "for _ in tqdm(range(3), desc='meta-train'):\n"
            "    v, g = maml.maml_value_and_grad(theta, batch, 0.01, 2)\n"
            "    theta = [(W - 1e-3 * gW, b - 1e-3 * gb) for (W, b), (gW, gb) in zip(theta, g)]\n"
            "    theta = reptile.reptile_update(theta, batch, 0.01, 1, 0.1)\n"
            "assert np.isfinite(v)\n"
            f"leaked = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(COURSE_STACK)!r})\n"
            "print('engine ok', leaked)\n")
    r = run_without(COURSE_STACK, code, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "engine ok []" in r.stdout
    assert "meta-train" in r.stderr   # tqdm.auto fell back to the text bar


def test_hiding_a_package_really_hides_it():
    """The subprocess above proves something only if the hidden packages cannot be imported there."""
    r = run_without({"matplotlib"}, "import matplotlib")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr
    r = run_without({"matplotlib"}, "import numpy; print('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok"


@pytest.mark.parametrize("folder", ["experiments", "viz", "grading"])
def test_every_layer_folder_is_scanned(folder):
    assert any(m.startswith(f"mlcourse.{folder}.") for m in modules_of()), os.listdir(PKG)
