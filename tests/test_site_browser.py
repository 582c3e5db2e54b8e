"""The course website in headless Chromium: the accessibility audit and three pages as a reader sees them.

Debian's /usr/bin/chromium through Playwright (never `playwright install`); pages are served from
127.0.0.1.  The site is built once per session (tests/site_fixture.py).
"""
from __future__ import annotations

import os
import re
import shutil

import pytest

pytest.importorskip("sphinx", reason="the [site] extra is not installed (pip install -e '.[site]')")
pytest.importorskip("axe_playwright_python", reason="the [site] extra is not installed (pip install -e '.[site]')")
if not os.path.exists(os.environ.get("MLCOURSE_CHROMIUM", "/usr/bin/chromium")):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
                allow_module_level=True)

from mlcourse.site import audit  # noqa: E402
from site_fixture import site  # noqa: E402,F401  (built once per session)

RAW_MATH = re.compile(r"\$[^$\n]{1,80}\$")


def test_audit_finds_no_violation_broken_link_or_poor_text_alternative(site):
    rows = audit.audit(site["out"])
    print("\n" + audit.table(rows))
    assert {r["page"] for r in rows} >= set(site["info"]["pages"])
    assert audit.problems(rows) == []
    images = sum(r["images"] for r in rows)
    assert images >= 20 and sum(len(r["alts"]) for r in rows) == images   # every figure was looked at


def test_audit_fails_on_a_missing_alt_a_broken_link_a_skipped_heading_and_a_remote_asset(site, tmp_path):
    """The same audit on a page with planted mistakes reports each of them."""
    out = tmp_path / "site"
    shutil.copytree(site["out"], out)
    page = out / "notebooks" / "00_welcome.html"
    text = page.read_text(encoding="utf-8")
    img = re.search(r'<img [^>]*src="(\.\./_images/[^"]+)"[^>]*>', text)
    planted = (f'<img src="{img.group(1)}"><a href="missing_page.html">gone</a>'
               f'<h4>skipped levels</h4><img src="{img.group(1)}" alt="figure">'
               '<img src="http://127.0.0.2:9/elsewhere.png" alt="A picture loaded from another host">')
    page.write_text(text.replace("</main>", planted + "</main>", 1), encoding="utf-8")
    found = audit.problems(audit.audit(str(out), pages=["notebooks/00_welcome.html"]))
    assert any("axe image-alt" in f for f in found), found
    assert any("broken link missing_page.html" in f for f in found), found
    assert any("heading order h2->h4" in f or "heading order h3->h4" in f or "heading order h1->h4" in f
               for f in found), found
    assert any("'figure': empty or generic" in f for f in found), found
    assert any("(not bundled) http://127.0.0.2:9/elsewhere.png" in f for f in found), found


def test_alt_problems_flags_empty_generic_and_duplicated_texts():
    found = audit.alt_problems({"a.html": ["Loss of MAML against steps on 3 tasks", "", "Figure", None],
                                "b.html": ["Loss of MAML against steps on 3 tasks", "Plot 3"]})
    whys = [why for _, _, why in found]
    assert whys == ["empty or generic", "empty or generic", "no alt attribute", "also on a.html", "empty or generic"]


@pytest.fixture(scope="module")
def browser_page(site):
    with audit.serve(site["out"]) as base, audit.browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 900})
        yield base, page


def _open(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")


@pytest.mark.parametrize("name, what", [("notebooks/04_maml_vs_fomaml.html", "math"),
                                        ("notebooks/02_meta_gradient_1d.html", "widgets"),
                                        ("exercises/ex02_meta_gradient.html", "exercise")])
def test_three_pages_render_math_figures_and_widget_notes(browser_page, site, name, what, tmp_path_factory):
    base, page = browser_page
    _open(page, base + name)
    shots = tmp_path_factory.mktemp("screenshots")
    path = shots / (os.path.basename(name)[:-5] + ".png")
    page.screenshot(path=str(path), full_page=True)
    print(f"\n{name}: screenshot {path} ({path.stat().st_size} bytes)")
    assert path.stat().st_size > 20_000
    main = page.inner_text("main")
    assert not RAW_MATH.search(main), RAW_MATH.search(main).group(0)    # every $...$ was typeset
    n_math = page.locator("mjx-container").count()
    assert n_math >= (30 if what == "math" else 3)
    # screen readers get MathML beside each formula (MathJax's assistive output)
    assert page.locator("mjx-container mjx-assistive-mml math").count() == n_math
    # stored figures load (naturalWidth > 0) and carry their text alternative
    imgs = page.locator("main img")
    for i in range(imgs.count()):
        assert imgs.nth(i).evaluate("e => e.complete && e.naturalWidth > 0"), f"image {i} of {name}"
        assert len(imgs.nth(i).get_attribute("alt").split()) >= 4
    nav = page.locator("nav.mlcourse-launch a")
    assert nav.count() == 3 and {nav.nth(i).inner_text() for i in range(3)} >= {"Open in Binder", "Open in Colab"}
    if what == "widgets":
        assert "Live widget:" in main and "model not found" not in main.lower()
    if what == "exercise":
        assert "check(" in main and "BEGIN SOLUTION" not in main
    # previous / next navigation
    assert page.locator(".prev-next-area a").count() == 2


def test_search_finds_hessian_vector(browser_page):
    base, page = browser_page
    page.goto(base + "search.html?q=Hessian-vector", wait_until="load")
    page.wait_for_selector("#search-results li", timeout=30_000)
    hits = page.locator("#search-results li a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    print(f"\nsearch 'Hessian-vector': {hits}")
    assert any("04_maml_vs_fomaml" in h for h in hits)
    # and from the search box of an ordinary page
    page.goto(base + "index.html", wait_until="load")
    box = page.locator("form[action*='search'] input[name='q']").first
    assert box.get_attribute("aria-label") or page.locator(f"label[for='{box.get_attribute('id')}']").count()
