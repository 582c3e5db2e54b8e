"""Notebook 06 without the Omniglot images: it runs top to bottom, says once (in its first code cell)
that the images are missing and the one command that gets them, and still shows the shipped results."""
import json
import os

import nbformat
import pytest

from mlcourse.data import omniglot, protocol
from mlcourse.site.launch import INSTALL_MARK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB06 = os.path.join(ROOT, "notebooks", "06_few_shot_classification.ipynb")
NOTE = "Omniglot is not on this computer"


def outputs_text(cell):
    """Everything a reader sees of a code cell's outputs, as one string."""
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o["text"])
        for kind in ("text/plain", "text/markdown"):
            if kind in o.get("data", {}):
                parts.append(o["data"][kind])
    return "\n".join(parts)


WIDGET = "application/vnd.jupyter.widget-view+json"


def run_without_data(monkeypatch, tmp_path, release_url):
    """Notebook 06 executed with MLCOURSE_OMNIGLOT at an empty folder, no cache, and the release at
    release_url; its code cells."""
    from nbclient import NotebookClient
    empty = tmp_path / "omniglot"
    empty.mkdir()
    monkeypatch.setenv(omniglot.ENV_VAR, str(empty))                # a folder without the zips
    monkeypatch.setenv("MLCOURSE_CACHE", str(tmp_path / "cache"))   # and no cache
    monkeypatch.setenv(omniglot.URL_ENV_VAR, release_url)
    assert protocol.missing_splits() == protocol.SPLITS
    nb = nbformat.read(NB06, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": os.path.dirname(NB06)}}).execute()
    # the code cells after the one that installs mlcourse where it is missing (Colab, Binder: that cell prints
    # nothing) and the gate (what the notebook builds on: it needs no images)
    return [c for c in nb.cells if c.cell_type == "code" and not c.source.startswith(INSTALL_MARK)
            and c.get("id") != "gate"]


@pytest.mark.timeout(300)
def test_notebook06_runs_without_omniglot_and_says_so_once(monkeypatch, tmp_path):
    code = run_without_data(monkeypatch, tmp_path, "http://127.0.0.1:9/")   # no server there: no button
    errors = [(n, o["ename"], o["evalue"]) for n, c in enumerate(code) for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors, errors
    texts = [outputs_text(c) for c in code]
    assert sum(t.count(NOTE) for t in texts) == 1 and NOTE in texts[0], "the note belongs once, in the first code cell after the install cell and the gate"
    assert omniglot.download_command(*protocol.SPLITS) in texts[0]
    # what the shipped results carry still shows: the settings, the measured table and figure, the lesson's table
    summary = json.load(open(os.path.join(ROOT, "mlcourse", "experiments", "results", "omniglot", "summary.json")))
    shown = "\n".join(texts)
    for method, s in summary["methods"].items():
        assert f"| {method} | {100 * s['a']['error']:.1f}% ± {100 * s['a']['ci95']:.1f}%" in shown
        assert f"{method}: n_way={s['hparams']['n_way']}" in shown
    assert "| speed at meta-test | very fast |" in shown
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert figures >= 1
    assert not any(WIDGET in o.get("data", {}) for o in code[0].outputs) and "button" not in texts[0]


@pytest.mark.timeout(300)
def test_with_the_release_reachable_the_note_offers_a_download_button(monkeypatch, tmp_path):
    from test_data_cli import serve
    with serve(tmp_path) as url:   # any server that answers stands for a reachable release
        code = run_without_data(monkeypatch, tmp_path, url)
    first = code[0].outputs
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert sum(outputs_text(c).count(NOTE) for c in code) == 1
    assert "press the button below" in outputs_text(code[0])
    assert sum(WIDGET in o.get("data", {}) for o in first) == 1
