"""The course website: the build (offline, every page, never a solution), launch links, the install cell.

The site is built once per session (fixture ``site``) and shared with tests/test_site_browser.py.
"""
from __future__ import annotations

import functools
import glob
import html
import json
import os
import re
import subprocess
import sys
import venv

import pytest

pytest.importorskip("sphinx", reason="the [site] extra is not installed (pip install -e '.[site]')")

from mlcourse.site import build, launch  # noqa: E402
from site_fixture import REPO, site  # noqa: E402,F401  (built once per session)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def page_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def visible_text(markup):
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_every_notebook_and_exercise_has_a_page_in_order(site):
    out, info = site["out"], site["info"]
    print(f"\nsite built in {info['seconds']:.1f} s ({len(info['pages'])} pages)")
    nbs = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    exs = sorted(glob.glob(os.path.join(ROOT, "exercises", "*.ipynb")))
    want = [os.path.relpath(p, ROOT)[:-len(".ipynb")] + ".html" for p in nbs + exs]
    assert info["pages"] == ["index.html"] + want
    for page in want:
        assert os.path.isfile(os.path.join(out, page)), page
    home = page_text(os.path.join(out, "index.html"))
    for p in nbs:   # the course map links every notebook
        assert f'href="notebooks/{os.path.basename(p)[:-6]}.html"' in home
    # previous / next navigation follows the order of the files
    for prev, page, nxt in zip(want, want[1:], want[2:]):
        text = page_text(os.path.join(out, page))
        rel = lambda target: os.path.relpath(target, os.path.dirname(page)).replace(os.sep, "/")  # noqa: E731
        assert f'href="{rel(prev)}"' in text and f'href="{rel(nxt)}"' in text, page


def test_the_site_is_self_contained(site):
    """No page loads anything from another host: math, fonts, scripts and styles are bundled."""
    out = site["out"]
    for page in site["info"]["pages"]:
        text = page_text(os.path.join(out, page))
        for tag, attr in re.findall(r"<(script|link|img)\b[^>]*\b(?:src|href)=\"(https?:[^\"]*)\"", text):
            pytest.fail(f"{page} loads {attr} from the network")
    assert os.path.isfile(os.path.join(out, "_static", "mathjax", "tex-chtml.js"))
    assert os.path.isfile(os.path.join(out, "_static", "mathjax", "a11y", "assistive-mml.js"))
    assert os.path.isfile(os.path.join(out, "searchindex.js"))


def solution_lines():
    """{exercise page: lines of the answers that the learner version does not contain}."""
    found = {}
    for sol in sorted(glob.glob(os.path.join(ROOT, "solutions", "*.ipynb"))):
        name = os.path.basename(sol)
        ex = os.path.join(ROOT, "exercises", name)
        ex_src = "\n".join("".join(c["source"]) for c in json.load(open(ex, encoding="utf-8"))["cells"])
        lines = set()
        for cell in json.load(open(sol, encoding="utf-8"))["cells"]:
            for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", "".join(cell["source"]), re.S):
                lines |= {l.strip() for l in block.splitlines() if len(l.strip()) >= 20 and l.strip() not in ex_src}
        found[f"exercises/{name[:-6]}.html"] = lines
    return found


def test_no_page_shows_or_links_a_solution(site):
    out, answers = site["out"], solution_lines()
    assert answers and any(answers.values()), "the solutions hold answers to look for"
    for page in site["info"]["pages"]:
        text = page_text(os.path.join(out, page))
        assert "BEGIN SOLUTION" not in text and "solutions/" not in text, page
        shown = visible_text(text)
        for line in answers.get(page, ()):
            assert line not in shown, f"{page} shows the answer line {line!r}"
    assert not os.path.exists(os.path.join(out, "solutions"))
    assert not glob.glob(os.path.join(out, "**", "*solution*"), recursive=True)


def test_widget_cells_show_one_line_and_never_a_missing_model(site):
    out = site["out"]
    for p in sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))):
        nb = json.load(open(p, encoding="utf-8"))
        n_widgets = sum(build.is_widget_cell(c) for c in nb["cells"] if c["cell_type"] == "code")
        text = visible_text(page_text(os.path.join(out, "notebooks", os.path.basename(p)[:-6] + ".html")))
        assert text.count("Live widget:") == n_widgets, p
        assert "model not found" not in text.lower() and "[interactive widget" not in text
    assert sum(visible_text(page_text(os.path.join(out, p))).count("Live widget:")
               for p in site["info"]["pages"]) >= 8


def test_launch_links_on_every_notebook_page(site):
    out = site["out"]
    for page in site["info"]["pages"][1:]:
        rel = page[:-len(".html")] + ".ipynb"
        urls = launch.launch_urls(REPO, rel)
        text = page_text(os.path.join(out, page))
        assert f'href="{urls["binder"]}"' in text and f'href="{urls["colab"]}"' in text, page
        assert f'href="../downloads/{rel}"' in text, page
        download = json.load(open(os.path.join(out, "downloads", rel), encoding="utf-8"))
        first_code = next(c for c in download["cells"] if c["cell_type"] == "code")
        assert launch.INSTALL_MARK in "".join(first_code["source"])
        assert f"git+{REPO}" in "".join(first_code["source"])


def test_launch_urls_from_the_repository_url():
    urls = launch.launch_urls("https://github.com/org/course/", "notebooks/05_maml_sinusoid.ipynb", branch="v1")
    assert urls == {"binder": "https://mybinder.org/v2/gh/org/course/v1?labpath=notebooks/05_maml_sinusoid.ipynb",
                    "colab": "https://colab.research.google.com/github/org/course/blob/v1/notebooks/05_maml_sinusoid.ipynb"}
    other = launch.launch_urls("https://gitlab.com/org/course", "exercises/ex02_meta_gradient.ipynb")
    assert other["binder"] == ("https://mybinder.org/v2/git/https%3A%2F%2Fgitlab.com%2Forg%2Fcourse/main"
                               "?labpath=exercises/ex02_meta_gradient.ipynb")
    assert other["colab"] is None           # Colab opens GitHub notebooks only
    with pytest.raises(ValueError, match="OWNER/NAME"):
        launch.launch_urls("github.com/org/course", "notebooks/a.ipynb")
    with pytest.raises(ValueError, match="relative"):
        launch.launch_urls("https://github.com/org/course", "../a.ipynb")
    # the default comes from pyproject's [project.urls] Repository
    assert launch.repository_url().startswith("https://")


def make_wheel(folder):
    """A wheel of this checkout's package (what `pip wheel .` makes, without needing the `wheel` tool)."""
    import base64
    import hashlib
    import zipfile
    folder.mkdir()
    path = folder / "mlcourse-0.1.0-py3-none-any.whl"
    dist = "mlcourse-0.1.0.dist-info"
    files = {f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: mlcourse\nVersion: 0.1.0\n",
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    for p in glob.glob(os.path.join(ROOT, "mlcourse", "**", "*"), recursive=True):
        if os.path.isfile(p) and "__pycache__" not in p:
            files[os.path.relpath(p, ROOT)] = open(p, "rb").read()
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        z.writestr(f"{dist}/RECORD", "\n".join(record + [f"{dist}/RECORD,,"]) + "\n")
    return path


def _run_cell(python, source, env, cwd=None):
    return subprocess.run([python, "-c", source], capture_output=True, text=True, env=env, timeout=600, cwd=cwd)


def test_install_cell_installs_when_missing_and_is_silent_when_present(tmp_path):
    """Against a wheel of this checkout in a fresh venv: never the network (no index, no dependencies)."""
    wheel = make_wheel(tmp_path / "wheels")
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_NO_DEPS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    check = "import importlib.util; print(importlib.util.find_spec('mlcourse') is not None)"
    run = functools.partial(_run_cell, cwd=tmp_path)   # not in the checkout, where mlcourse/ is importable
    assert run(python, check, env).stdout.strip() == "False"
    cell = launch.install_cell_source(str(wheel))
    first = run(python, cell, env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.strip() == "Installing mlcourse (once per environment) ..."
    assert run(python, check, env).stdout.strip() == "True"
    again = run(python, cell, env)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    # where the package is already installed (this environment) the cell prints nothing and runs no pip
    here = _run_cell(sys.executable, cell.replace('"-m", "pip"', '"-c", "raise SystemExit(9)"'), dict(os.environ))
    assert here.returncode == 0 and here.stdout == "" and here.stderr == ""


def test_install_cell_rejects_a_bad_requirement():
    with pytest.raises(ValueError, match="one pip requirement"):
        launch.install_cell_source("a\nb")


def test_course_map_links_each_notebook_and_lists_unmapped_ones():
    readme = "## Course map\n\n| # | notebook |\n|---|---|\n| 00 | `00_welcome` |\n\n## Next\n"
    table, missing = build.course_map(readme, ["notebooks/00_welcome.ipynb", "notebooks/10_new.ipynb"])
    assert "[00_welcome](notebooks/00_welcome.ipynb)" in table and "## Next" not in table
    assert missing == ["10_new"]


def test_page_keeps_a_figure_s_own_alt_text_and_gives_others_a_specific_one():
    png = "iVBORw0KGgo="
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Title\n## Section one"},
                    {"cell_type": "code", "metadata": {}, "source": "viz.plot_it(x);", "outputs": [
                        {"output_type": "display_data", "data": {"image/png": png},
                         "metadata": {"image/png": {"alt": "Loss against steps for two tasks"}}}]},
                    {"cell_type": "code", "metadata": {}, "source": "# comment\nfig = other(y)", "outputs": [
                        {"output_type": "display_data", "data": {"image/png": "AAECAwQF"}, "metadata": {}}]},
                    {"cell_type": "code", "metadata": {}, "source": "w = adaptation_widget(models)\nw", "outputs": [
                        {"output_type": "display_data", "metadata": {},
                         "data": {"text/plain": "[interactive widget: run this notebook in JupyterLab to use it]"}}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    alts = {}
    page, title = build.page_notebook(nb, "notebooks/x.ipynb", REPO, "main", exercise=False, alts=alts)
    assert title == "Title"
    assert sorted(alts.values()) == ["Figure 2 of section \u201cSection one\u201d of \u201cTitle\u201d, drawn by fig = other(y)",
                                     "Loss against steps for two tasks"]
    widget_md = page["cells"][-1]["outputs"][-1]["data"]["text/markdown"]
    assert widget_md.startswith("*Live widget: draw a new task") and "Binder" in widget_md
    assert "mlcourse-launch" in page["cells"][1]["source"]


def test_cli_says_which_extra_is_missing_and_refuses_to_replace_a_foreign_folder(tmp_path):
    from labtools import mlcourse_without
    r = mlcourse_without({"sphinx"}, "site", str(tmp_path / "out"))
    assert r.returncode == 3 and "pip install 'mlcourse[site]'" in r.stderr.strip().splitlines()[-1]
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("not a site")
    r = mlcourse_without(set(), "site", str(keep))
    assert r.returncode == 1 and "does not hold an earlier build" in r.stderr
    assert (keep / "mine.txt").read_text() == "not a site"


def test_a_freshly_executed_notebook_gives_the_site_its_alt_texts_and_widget_picture(tmp_path, monkeypatch):
    """Execute notebook 02 as `mlcourse assign` does, build a one-notebook site from it, read the page."""
    pytest.importorskip("nbclient")
    monkeypatch.delenv("MPLBACKEND", raising=False)   # the kernel draws inline, as a learner's does
    import nbformat
    from mlcourse.grading.assign import clean_metadata, execute
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "02_meta_gradient_1d.ipynb"), as_version=4)
    execute(nb, str(course / "notebooks"), timeout=120)
    nbformat.write(clean_metadata(nb), str(course / "notebooks" / "02_meta_gradient_1d.ipynb"))
    (course / "README.md").write_text("## Course map\n\n| # | notebook |\n|---|---|\n| 02 | `02_meta_gradient_1d` |\n")
    stored = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    alts = [o["metadata"]["image/png"]["alt"] for o in stored]
    assert len(alts) >= 2 and all(len(a.split()) >= 8 for a in alts)          # the figure and the widget's picture
    assert any(a.startswith("First view of the live widget") for a in alts)
    out = tmp_path / "site"
    build.build(str(out), str(course), repo_url=REPO)
    text = page_text(out / "notebooks" / "02_meta_gradient_1d.html")
    shown = [html.unescape(a) for a in re.findall(r'<img [^>]*alt="([^"]*)"', text)]
    assert sorted(shown) == sorted(alts)
    assert "Live widget: move θ, α and the number of inner steps" in visible_text(text)


def test_cli_builds_and_rebuilds_into_its_own_folder(tmp_path, capsys):
    from mlcourse.cli import main
    out = tmp_path / "web"
    for _ in range(2):    # the second build replaces the first (the folder holds the build's marker)
        assert main(["site", str(out), "--repository-url", REPO, "--branch", "v2"]) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert re.match(r"built \d+ pages in [\d.]+ s: ", line), line
    assert (out / build.MARKER).exists() and (out / "index.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web"]       # nothing written beside it
    assert "/blob/v2/notebooks/05_maml_sinusoid.ipynb" in page_text(out / "notebooks" / "05_maml_sinusoid.html")


def test_a_gate_shows_its_table_and_its_problem_with_typeset_math(site):
    """The gate cell of notebook 02 (a widget cell): its table of skills is a table, its practice problem's
    LaTeX is math, and the one line about the live widget follows."""
    text = page_text(os.path.join(site["out"], "notebooks", "02_meta_gradient_1d.html"))
    start = text.index("Before notebook 02")
    cell = text[start:text.index('<div class="cell', start)]
    assert re.search(r"<table.*<th[^>]*><p>skill</p></th>.*<td><p>the chain rule</p></td>", cell, re.S)
    assert "Practice: the chain rule" in cell and '<span class="math' in cell and "$" not in cell
    assert "Live widget: answer a fresh problem" in visible_text(cell)
