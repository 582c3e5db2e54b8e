"""Build the course website: Sphinx + MyST-NB over the committed, executed notebooks (never executed here).

The source tree is generated in a temporary folder: a home page made from the README's course map,
a copy of every ``notebooks/*.ipynb`` and ``exercises/*.ipynb`` (found by glob, in name order), each
with its launch links, its widget cells turned into a static figure plus one line about the live
widget, and for exercises the learner version only (``solutions/`` is never read).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import glob
import json
import os
import re
import shutil
import tempfile
import time
import warnings

from . import launch

TITLE = "Meta-learning, hands-on"
MARKER = ".mlcourse-site"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STORED_WIDGET_TEXT = "[interactive widget"          # what a stripped widget output holds
LIVE_LINE = ("Open this notebook in Binder or Colab (links at the top of the page) or run "
             "`mlcourse course` to use it.")


def course_files(root):
    """(notebooks, exercises): sorted paths relative to root, found by glob."""
    nbs = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "notebooks", "*.ipynb")))
    exs = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "exercises", "*.ipynb")))
    if not nbs:
        raise FileNotFoundError(f"no notebooks in {os.path.join(root, 'notebooks')}; pass the course folder "
                                "(the one holding notebooks/, exercises/ and README.md) with --source.")
    return nbs, exs


def title_of(nb):
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", _src(cell), re.M)
            if m:
                return m.group(1).strip()
    return None


def _src(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def course_map(readme_text, notebooks):
    """The README's "Course map" table, each notebook name turned into a link to its page."""
    m = re.search(r"^## Course map\s*\n(.*?)(?=^## |\Z)", readme_text, re.M | re.S)
    lines = [l for l in (m.group(1).splitlines() if m else []) if l.startswith("|")]
    stems = {os.path.splitext(os.path.basename(p))[0]: p for p in notebooks}
    out, linked = [], set()
    for line in lines:
        def link(mm):
            stem = mm.group(1)
            if stem in stems:
                linked.add(stem)
                return f"[{stem}]({stems[stem]})"
            return mm.group(0)
        out.append(re.sub(r"`(\d\d_[A-Za-z0-9_]+)`", link, line))
    missing = [s for s in stems if s not in linked]
    return "\n".join(out), missing


def widget_description(cell):
    """The one line a live widget's stored output gives, or the one its constructor registers."""
    for o in cell.get("outputs", []):
        text = o.get("data", {}).get("text/plain")
        text = "".join(text) if isinstance(text, list) else (text or "")
        if text.startswith("Live widget:"):
            return text.strip()
    try:
        from mlcourse.viz._alt import LIVE_WIDGETS
    except ImportError:   # matplotlib missing: the [site] extra brings it
        LIVE_WIDGETS = {}
    src = _src(cell)
    for name, what in LIVE_WIDGETS.items():
        if re.search(rf"\b{re.escape(name)}\s*\(", src):
            return f"Live widget: {what}"
    return "Live widget: an interactive view of this section's computation."


def is_widget_cell(cell):
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        text = data.get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        if WIDGET_MIME in data or text.startswith(STORED_WIDGET_TEXT) or text.startswith("Live widget:"):
            return True
    return False


def static_widget_outputs(cell):
    """A widget cell's outputs on a static page: its stored figure or Markdown rendering (if any: a practice
    problem and a gate's table are Markdown), and one line about the widget."""
    line = widget_description(cell)
    outputs = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        if "image/png" in data:
            alt = o.get("metadata", {}).get("image/png", {}).get("alt") or line
            outputs.append({"output_type": "display_data", "data": {"image/png": data["image/png"]},
                            "metadata": {"image/png": {"alt": alt}}})
        elif "text/markdown" in data:
            outputs.append({"output_type": "display_data", "data": {"text/markdown": data["text/markdown"]},
                            "metadata": {}})
    outputs.append({"output_type": "display_data", "metadata": {},
                    "data": {"text/markdown": f"*{line}* {LIVE_LINE}"}})
    return outputs


def fallback_alt(nb_title, heading, cell_source, index):
    """Text alternative for a stored figure made without one (outputs older than mlcourse.viz's alt texts)."""
    call = next((l.strip() for l in cell_source.splitlines() if l.strip() and not l.strip().startswith("#")), "")
    call = call.rstrip(";")[:120]
    where = f"section \u201c{heading}\u201d of \u201c{nb_title}\u201d" if heading else f"\u201c{nb_title}\u201d"
    return f"Figure {index} of {where}, drawn by {call}"


def launch_block(rel_path, repo_url, branch):
    urls = launch.launch_urls(repo_url, rel_path, branch)
    name = os.path.basename(rel_path)
    links = [f'<a href="../downloads/{rel_path}" download="{name}">Download {name}</a>',
             f'<a href="{urls["binder"]}">Open in Binder</a>']
    if urls["colab"]:
        links.append(f'<a href="{urls["colab"]}">Open in Colab</a>')
    items = "".join(f"<li>{l}</li>" for l in links)
    return (f'<nav class="mlcourse-launch" aria-label="Run this notebook">\n<ul>{items}</ul>\n</nav>\n')


def _png_sha(b64):
    b64 = "".join(b64) if isinstance(b64, list) else b64
    return hashlib.sha256(base64.b64decode(b64)).hexdigest()


def page_notebook(nb, rel_path, repo_url, branch, exercise, alts):
    """The copy of a notebook that the site renders; records each figure's text alternative in `alts`."""
    nb = copy.deepcopy(nb)
    title = title_of(nb) or os.path.basename(rel_path)
    cells, heading, figure = [], None, 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            hs = re.findall(r"^#{1,6}\s+(.+)$", _src(cell), re.M)
            heading = hs[-1].strip() if hs else heading
        if cell["cell_type"] == "code":
            if is_widget_cell(cell):
                cell["outputs"] = static_widget_outputs(cell)
                if any("text/markdown" in o["data"] for o in cell["outputs"]):   # tables and $math$, as MyST
                    cell.setdefault("metadata", {}).setdefault("mystnb", {})["markdown_format"] = "myst"
                for o in cell["outputs"]:
                    if "image/png" in o["data"]:
                        alts[_png_sha(o["data"]["image/png"])] = o["metadata"]["image/png"]["alt"]
            else:
                outs = []
                for o in cell.get("outputs", []):
                    if o.get("output_type") == "error":
                        if exercise:   # the learner version's "not implemented yet": say it in one line
                            outs.append({"output_type": "stream", "name": "stderr",
                                         "text": f"{o.get('ename')}: {o.get('evalue') or 'your code goes here'}\n"})
                        continue
                    data = o.get("data", {})
                    if "image/png" in data:
                        figure += 1
                        md = o.setdefault("metadata", {}).setdefault("image/png", {})
                        if not md.get("alt"):
                            md["alt"] = fallback_alt(title, heading, _src(cell), figure)
                        alts[_png_sha(data["image/png"])] = md["alt"]
                    outs.append(o)
                cell["outputs"] = outs
        cells.append(cell)
    block = {"cell_type": "markdown", "metadata": {}, "source": launch_block(rel_path, repo_url, branch)}
    first_h1 = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                     and re.search(r"^#\s", _src(c), re.M)), -1)
    cells.insert(first_h1 + 1, block)
    nb["cells"] = cells
    nb.setdefault("metadata", {})["mystnb"] = {"execution_mode": "off"}
    return nb, title


def download_notebook(nb, repo_url):
    """The notebook offered for download: as committed, its install cell (added first when it lacks one)
    installing from repo_url."""
    nb = copy.deepcopy(nb)
    source = launch.install_cell_source(launch.install_requirement(repo_url))
    for c in nb["cells"]:
        if c["cell_type"] == "code" and launch.INSTALL_MARK in _src(c):
            c["source"] = source
            break
    else:
        cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
        first_h1 = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"), -1)
        nb["cells"].insert(first_h1 + 1, cell)
    return nb


CONF = '''\
project = {title!r}
author = "mlcourse"
copyright = "mlcourse authors"
extensions = ["myst_nb", "sphinx-mathjax-offline", "mlcourse.site._sphinx"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"   # Markdown outputs (the practice problems) with their $...$ math
html_theme = "sphinx_book_theme"
html_title = {title!r}
html_static_path = ["_static"]
html_css_files = ["mlcourse.css"]
html_extra_path = ["_extra"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
html_theme_options = {{
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}}
mathjax3_config = {{
    "loader": {{"load": ["a11y/assistive-mml"]}},
    "options": {{"menuOptions": {{"settings": {{"assistiveMml": True}}}}}},
}}
exclude_patterns = ["_build", "_extra", "**.ipynb_checkpoints", "alt_texts.json"]
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header", "misc.highlighting_failure"]
'''

CSS = '''\
/* launch links under each notebook's title */
nav.mlcourse-launch ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.5rem 1.2rem; }
nav.mlcourse-launch a { text-decoration: underline; }
/* the stored figures scale down on a phone */
.cell_output img { max-width: 100%; height: auto; }
'''


def write_source(src, root, repo_url, branch):
    """Write the Sphinx source tree for the course at `root` into `src`; return the page list."""
    nbs, exs = course_files(root)
    readme_path = os.path.join(root, "README.md")
    readme = open(readme_path, encoding="utf-8").read() if os.path.exists(readme_path) else ""
    os.makedirs(os.path.join(src, "_static"), exist_ok=True)
    with open(os.path.join(src, "_static", "mlcourse.css"), "w") as f:
        f.write(CSS)
    pages, alts = [], {}
    for rel in nbs + exs:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            nb = json.load(f)
        page, title = page_notebook(nb, rel, repo_url, branch, exercise=rel.startswith("exercises"), alts=alts)
        os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(src, rel), "w", encoding="utf-8") as f:
            json.dump(page, f)
        dl = os.path.join(src, "_extra", "downloads", rel)
        os.makedirs(os.path.dirname(dl), exist_ok=True)
        with open(dl, "w", encoding="utf-8") as f:
            json.dump(download_notebook(nb, repo_url), f, indent=1, ensure_ascii=False)
        pages.append((rel, title))
    table, unmapped = course_map(readme, nbs)
    titles = dict(pages)
    home = [f"# {TITLE}", "",
            "A course on meta-learning (\u201clearning to learn\u201d): task distributions, MAML and its "
            "first-order relatives, Meta-SGD and ANIL, Prototypical Networks and MAML for reinforcement "
            "learning, each formula computed, plotted and checked. Read the notebooks in order; every page "
            "can be downloaded or opened in Binder or Colab to run it.", "", "## Course map", ""]
    home += [table, ""] if table else []
    if unmapped:
        home += ["More notebooks:", ""] + [f"- [{titles[r]}]({r})" for r in nbs
                                            if os.path.splitext(os.path.basename(r))[0] in unmapped] + [""]
    if exs:
        home += ["## Exercises", "", "Graded exercises (learner versions): write the code, then run "
                 "`check(\"qN\")` in the notebook for instant feedback.", ""]
        home += [f"- [{titles[r]}]({r})" for r in exs] + [""]
    home += ["```{toctree}", ":hidden:", ":caption: Notebooks", ""] + nbs + ["```", ""]
    if exs:
        home += ["```{toctree}", ":hidden:", ":caption: Exercises", ""] + exs + ["```", ""]
    with open(os.path.join(src, "index.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(home))
    with open(os.path.join(src, "alt_texts.json"), "w", encoding="utf-8") as f:
        json.dump(alts, f)
    with open(os.path.join(src, "conf.py"), "w") as f:
        f.write(CONF.format(title=TITLE))
    return [("index.md", TITLE)] + pages


def build(out, root, repo_url=None, branch="main", quiet=True):
    """Build the site of the course folder `root` (notebooks/, exercises/, README.md) into `out`.

    `out` is created, or replaced when it holds an earlier build.  Returns {"pages", "titles", "seconds", "out"}.
    """
    try:
        from sphinx.application import Sphinx
        import myst_nb  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{e.name} is not installed: pip install 'mlcourse[site]'") from None
    repo_url = launch.check_repository_url(repo_url or launch.repository_url())
    t0 = time.perf_counter()
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"{out} exists and is not a folder; choose another output folder.")
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(os.path.join(out, MARKER)):
        raise FileExistsError(f"{out} is a folder that does not hold an earlier build of the site; choose an empty "
                              "or new output folder (it is replaced by each build).")
    with tempfile.TemporaryDirectory(prefix="mlcourse-site-") as tmp:
        src = os.path.join(tmp, "src")
        pages = write_source(src, root, repo_url, branch)
        # built inside tmp (MyST-NB writes beside the output folder), moved to `out` once it succeeded
        html_dir = os.path.join(tmp, "build", "html")
        import io
        sink = io.StringIO()
        app = Sphinx(src, src, html_dir, os.path.join(tmp, "doctrees"), "html",
                     status=sink if quiet else None, warning=sink if quiet else None,
                     freshenv=True, parallel=1)
        with warnings.catch_warnings():   # nbformat: "cell is missing an id field" (ids are stripped on commit)
            warnings.simplefilter("ignore")
            app.build(force_all=True)
        if app.statuscode:
            raise RuntimeError(f"the site build failed:\n{sink.getvalue()[-3000:]}")
        with open(os.path.join(html_dir, MARKER), "w") as f:
            f.write("built by `mlcourse site`; the next build replaces this folder\n")
        if os.path.isdir(out):
            shutil.rmtree(out)
        shutil.move(html_dir, out)
    return {"pages": [os.path.splitext(p)[0] + ".html" for p, _ in pages], "titles": dict(pages),
            "seconds": time.perf_counter() - t0, "out": out}
