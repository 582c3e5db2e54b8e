"""End to end in a real browser: JupyterLab + ipywidgets in headless Chromium, driven by Playwright.

Opens a fresh copy of notebook 02, runs all cells, moves the theta slider one step with the
keyboard, and checks that the meta-gradient table now shows what the engine computes for the new
theta.  A screenshot is saved in the test's tmp folder.  Notebook 03: the animation's speed
buttons show their whole labels ("0.25x", "1x"), not a truncated "0....".  Notebook 02's gate keeps its practice
attempts across a kernel restart; notebook 00's diagnostic form judges what is typed into it.  Skipped only when
/usr/bin/chromium is missing (install it with `apt-get install -y --no-install-recommends chromium`).
"""
import contextlib
import os
import re
from pathlib import Path

import nbformat
import pytest

from mlcourse import checks
from mlcourse.viz import meta_gradient

from labtools import CHROME_ARGS, CHROMIUM, jupyter_lab, run_all_and_wait, wait_kernel_idle

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "02_meta_gradient_1d.ipynb"
ROWS = {"theta_prime": 0, "exact": 3, "autograd": 4}   # row index i of td.mg-i in the readout table

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent: apt-get install -y --no-install-recommends chromium")


def fresh_copy(dest, notebook=NOTEBOOK):
    """The notebook without outputs, so that "[n]:" prompts only appear once this run executes them."""
    nb = nbformat.read(notebook, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nbformat.write(nb, dest)
    src = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    seed = int(re.search(r"^SEED = (\d+)", src, re.M).group(1))
    return sum(c.cell_type == "code" for c in nb.cells), seed


@contextlib.contextmanager
def notebook_page(tmp_path, name, notebook=NOTEBOOK):
    """A fresh copy of `notebook` as `name` in JupyterLab, all cells run: (page, the notebook's SEED)."""
    from playwright.sync_api import sync_playwright
    root, home = tmp_path / "course", tmp_path / "home"
    root.mkdir(), home.mkdir()
    n_code, seed = fresh_copy(root / name, notebook)
    with jupyter_lab(root, home) as (base, token, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{name}?token={token}")
            wait_kernel_idle(page)
            run_all_and_wait(page, n_code)
            yield page, seed
        finally:
            browser.close()


def test_theta_slider_updates_the_meta_gradient(tmp_path):
    with notebook_page(tmp_path, "02.ipynb") as (page, seed):
        slider = page.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text="θ")).first
        slider.scroll_into_view_if_needed()
        readout = slider.locator(".widget-readout")
        cell = page.locator(".mg-3 code").first
        page.wait_for_function("() => !!document.querySelector('.mg-3 code')", timeout=30_000)
        theta0, before = float(readout.text_content()), cell.text_content()
        img_before = page.locator(".widget-image").first.get_attribute("src")

        slider.locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("old => { const e = document.querySelector('.mg-3 code'); "
                               "return e && e.textContent !== old; }", arg=before, timeout=30_000)
        wait_kernel_idle(page)

        theta = float(readout.text_content())
        alpha = float(page.locator(".widget-slider").filter(
            has=page.locator(".widget-label", has_text="α")).first.locator(".widget-readout").text_content())
        assert theta == pytest.approx(theta0 + 0.05), "ArrowRight should move theta by one step (0.05)"
        ref = checks.check_worked_example_1(theta, meta_gradient.example_task(seed), alpha)
        shown = {k: page.locator(f".mg-{i} code").first.text_content().strip() for k, i in ROWS.items()}
        assert shown["exact"] == f"{ref['closed_form']:+.6f}"
        assert shown["autograd"] == f"{ref['autograd']:+.6f}"
        assert shown["theta_prime"] == f"{ref['theta_prime']:+.6f}"
        assert page.locator(".widget-image").first.get_attribute("src") != img_before, "figure not redrawn"
        shot = tmp_path / "notebook02_after_slider.png"
        page.locator(".widget-image").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        print(f"\ntheta {theta0:.2f} -> {theta:.2f}: exact meta-gradient {before.strip()} -> {shown['exact']}; "
              f"screenshot {shot}")


def test_geometry_speed_buttons_show_their_whole_labels(tmp_path):
    from mlcourse.viz import geometry
    with notebook_page(tmp_path, "03.ipynb", NOTEBOOKS / "03_geometry_init.ipynb") as (page, _):
        page.wait_for_function("() => document.querySelectorAll('.widget-toggle-button').length > 0",
                               timeout=30_000)
        buttons = page.locator(".widget-toggle-button")
        buttons.first.scroll_into_view_if_needed()
        shown = page.evaluate("""() => [...document.querySelectorAll('.widget-toggle-button')].map(
            b => ({text: b.textContent.trim(), fits: b.scrollWidth <= b.clientWidth}))""")
        labels = [b["text"] for b in shown]
        assert all(label in labels for label in geometry.SPEEDS), labels
        assert all(b["fits"] for b in shown), f"a label is cut off: {shown}"


def _practice_widget_of_gate(notebook, progress_path):
    """The gate's practice widget as a fresh database makes it (same skills, same first problem), built here."""
    from mlcourse.practice import widget
    from mlcourse.practice.store import Progress
    from mlcourse.practice.skills import notebook_prerequisites
    todo = [s for s in notebook_prerequisites(notebook) if widget._practisable(s)]
    return widget.PracticeWidget(todo, progress=Progress(progress_path), key=f"gate {notebook}")


def _typed(values):
    import numpy as np
    return ", ".join(f"{x:.8g}" for x in np.ravel(np.asarray(values, dtype=float)))


def test_practice_in_the_gate_keeps_attempts_across_a_kernel_restart(tmp_path, monkeypatch):
    """Notebook 02's gate: a wrong answer (the mistake named), a right one, New problem; after a kernel restart
    the gate shows the attempt's effect on P(known) and the database holds both attempts."""
    from playwright.sync_api import expect
    from mlcourse.practice import problems
    from mlcourse.practice.mastery import DEFAULT
    from mlcourse.practice.store import ENV, Progress
    db = tmp_path / "progress.sqlite3"
    monkeypatch.setenv(ENV, str(db))                    # the kernel inherits it through the server
    twin = _practice_widget_of_gate("02", tmp_path / "twin.sqlite3")
    inst = twin.inst
    mistake, wrong = inst._mistake_values[0]
    ref = problems.generate(inst.generator, inst.seed)
    ref.give_up()
    with notebook_page(tmp_path, "02.ipynb") as (page, _):
        box = page.locator(".mlcourse-practice-widget").first
        box.wait_for(timeout=30_000)
        box.scroll_into_view_if_needed()
        feedback = box.locator(".mlcourse-practice-feedback")
        expect(box.locator(".mlcourse-practice-title")).to_contain_text("Practice: the chain rule", timeout=30_000)
        page.wait_for_function("() => !!document.querySelector('.mlcourse-practice-widget mjx-container')",
                               timeout=30_000)                                   # the prompt's LaTeX is typeset
        first_prompt = box.locator(".jp-OutputArea-output").first.text_content()

        box.locator(".widget-text input").fill(_typed(wrong))
        box.locator("button", has_text="Submit").click()
        feedback.filter(has_text=mistake.name).wait_for(timeout=30_000)
        text = feedback.text_content()
        assert "Not right: this looks like a common mistake" in text and f"({mistake.name})" in text
        expect(box.locator("button", has_text="Hint")).to_be_visible(timeout=30_000)

        box.locator(".widget-text input").fill(_typed(ref.answer))
        box.locator("button", has_text="Submit").click()
        feedback.filter(has_text="Right.").wait_for(timeout=30_000)
        expect(box.locator("button", has_text="Submit")).to_be_disabled(timeout=30_000)
        page.screenshot(path=str(tmp_path / "gate02_right.png"))

        box.locator("button", has_text="New problem").click()
        page.wait_for_function("old => { const b = document.querySelector('.mlcourse-practice-widget "
                               ".jp-OutputArea-output'); return b && b.textContent !== old; }",
                               arg=first_prompt, timeout=30_000)
        expect(box.locator("button", has_text="Submit")).to_be_enabled(timeout=30_000)
        expect(feedback).to_have_text("", timeout=30_000)
        wait_kernel_idle(page)
        with Progress(db) as p:
            rows = p.attempts()
        assert [(r["skill"], r["correct"], r["counted"], r["mistakes"]) for r in rows] == \
            [("chain_rule", 0, 0, mistake.name), ("chain_rule", 1, None, "")]

        page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                      ".restart(); }")                               # resolves once the new kernel is up
        wait_kernel_idle(page)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        p_known = f"{DEFAULT.update(DEFAULT.p_init, False):.2f}"                 # one counted wrong attempt
        page.wait_for_function(
            "p => [...document.querySelectorAll('.jp-RenderedMarkdown tr')].some("
            "r => r.textContent.includes('the chain rule') && r.textContent.includes(p))",
            arg=p_known, timeout=120_000)
        wait_kernel_idle(page, 180_000)
        box = page.locator(".mlcourse-practice-widget").first
        box.wait_for(timeout=30_000)
        expect(box.locator(".mlcourse-practice-title")).to_have_text(
            re.compile(re.escape(f"Practice: the chain rule (P(known) {p_known}")), timeout=30_000)
        assert box.locator(".jp-OutputArea-output").first.text_content() != first_prompt   # fresh numbers
        with Progress(db) as p:
            assert len(p.attempts()) == 2
        box.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "gate02_after_restart.png"))
        print(f"\nwrong ({mistake.name}), right, new problem, restart: P(known) of the chain rule {p_known}")


def test_the_diagnostic_form_judges_typed_answers_and_records_them(tmp_path, monkeypatch):
    """Notebook 00's diagnostic: a right answer, a common mistake and an unreadable answer typed into the form; Check
    shows each problem's verdict, the mistake named, where to learn the prerequisite, and the database holds the two
    judged attempts (the unreadable one is reported, not recorded)."""
    from playwright.sync_api import expect
    from mlcourse.practice import problems
    from mlcourse.practice.diagnostic import Diagnostic
    from mlcourse.practice.skills import SKILLS
    from mlcourse.practice.store import ENV, Progress
    db = tmp_path / "progress.sqlite3"
    monkeypatch.setenv(ENV, str(db))                    # the kernel inherits it through the server
    twin = Diagnostic(seed=0, path=tmp_path / "twin.sqlite3")     # the notebook's diagnostic(): seed 0
    right = problems.generate(twin.instances[0].generator, twin.instances[0].seed)
    right.give_up()
    k = next(i for i, inst in enumerate(twin.instances) if inst.skill != twin.instances[0].skill
             and inst.kind != "choice" and inst._mistake_values)
    mistake, wrong = twin.instances[k]._mistake_values[0]
    with notebook_page(tmp_path, "00.ipynb", NOTEBOOKS / "00_welcome.ipynb") as (page, _):
        form = page.locator(".widget-vbox", has_text="Your answers").last
        form.wait_for(timeout=60_000)
        form.scroll_into_view_if_needed()
        boxes = form.locator(".widget-text input")
        assert boxes.count() == len(twin.instances)
        boxes.nth(0).fill(_typed(right.answer))
        boxes.nth(k).fill(_typed(wrong))
        boxes.nth(k + 1).fill("two")
        form.locator("button", has_text="Check").click()
        form.filter(has_text="Where to learn it").wait_for(timeout=30_000)
        text = form.text_content()
        page.screenshot(path=str(tmp_path / "diagnostic_checked.png"))
        marks = [m.text_content() for m in form.locator(".widget-hbox .widget-html").all()]
        assert marks[0] == "Right." and marks[k].startswith(f"Not right: this looks like a common mistake ({mistake.name})")
        assert marks[k + 1].startswith("Could not read that:") and marks[1] == "Not answered."
        assert "*" not in marks[k] or "*" in mistake.says.replace("*", "", 2)          # Markdown emphasis rendered
        name = SKILLS[twin.instances[k].skill].name
        assert f"the common mistake '{mistake.name}'" in text and name[0].upper() + name[1:] in text
        assert "`mlcourse practice SKILL`" not in text and "mlcourse practice SKILL" in text   # code font, not ticks
        wait_kernel_idle(page)
    with Progress(db) as p:
        rows = [r for r in p.attempts() if r["source"] != "check"]    # section 5's check("q5") records one too
    assert [(r["skill"], r["correct"], r["counted"], r["mistakes"]) for r in rows] == [
        (twin.instances[0].skill, 1, 1, ""), (twin.instances[k].skill, 0, 0, mistake.name)]
    print(f"\ndiagnostic: right (problem 1), '{mistake.name}' (problem {k + 1}), unreadable (problem {k + 2})")
