"""Audit a built site: axe-core at WCAG 2.1 A and AA in headless Chromium, internal links and images, headings.

The pages are served from 127.0.0.1 by a local HTTP server (no network); the browser is Debian's
``/usr/bin/chromium`` (or ``$MLCOURSE_CHROMIUM``) driven by Playwright; nothing is downloaded.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import posixpath
import threading
import urllib.parse

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
GENERIC_ALT = {"", "image", "figure", "plot", "png", "output", "picture", "graph", "chart", "img", "alt",
               "<figure>", "none", "untitled"}


def chromium_path():
    path = os.environ.get("MLCOURSE_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no Chromium at {path}: install Debian's chromium (apt-get install chromium) "
                                "or point MLCOURSE_CHROMIUM at a Chromium binary.")
    return path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder, handler_class=QuietHandler):
    """Serve `folder` on a free port of 127.0.0.1 (handler_class answers the requests); yield the base URL."""
    handler = functools.partial(handler_class, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def browser():
    """A headless Debian Chromium through Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROME_ARGS)
        try:
            yield b
        finally:
            b.close()


def html_pages(out):
    pages = []
    for dirpath, _, files in os.walk(out):
        for f in files:
            if f.endswith(".html"):
                pages.append(os.path.relpath(os.path.join(dirpath, f), out).replace(os.sep, "/"))
    return sorted(pages)


def _target_exists(out, page, url):
    """(is_internal, exists) for a link or image URL found on `page`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https", "mailto", "data", "javascript") or parts.netloc:
        return False, True
    if not parts.path:
        return True, True   # "#anchor" on the same page (anchors are checked by the browser, not here)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), urllib.parse.unquote(parts.path)))
    full = os.path.join(out, target)
    if os.path.isdir(full):
        full = os.path.join(full, "index.html")
    return True, os.path.isfile(full)


def static_checks(out, page):
    """Broken internal links and images, heading-level jumps and text alternatives of one page."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.links, self.images, self.headings, self.in_main = [], [], [], 0

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "a" and a.get("href"):
                self.links.append(a["href"])
            if tag in ("img", "script") and a.get("src"):
                (self.images if tag == "img" else self.links).append(a["src"])
            if tag == "img":
                self.alts.append(a.get("alt"))
            if tag == "link" and a.get("href"):
                self.links.append(a["href"])
            if tag == "main":
                self.in_main += 1
            if self.in_main and len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
                self.headings.append(int(tag[1]))

        def handle_endtag(self, tag):
            if tag == "main":
                self.in_main -= 1

    p = P()
    p.alts = []
    with open(os.path.join(out, page), encoding="utf-8") as f:
        p.feed(f.read())
    broken_links = [u for u in p.links if _target_exists(out, page, u) == (True, False)]
    broken_images = [u for u in p.images if _target_exists(out, page, u) != (False, True)
                     and not _target_exists(out, page, u)[1]]
    jumps = [f"h{a}->h{b}" for a, b in zip(p.headings, p.headings[1:]) if b > a + 1]
    if p.headings and p.headings[0] != 1:
        jumps.insert(0, f"first heading h{p.headings[0]}")
    return {"links": len(p.links), "broken_links": broken_links, "images": len(p.images),
            "broken_images": broken_images, "heading_jumps": jumps, "alts": p.alts}


def alt_problems(alts_by_page):
    """Empty, generic or duplicated text alternatives across the site: [(page, alt, why)]."""
    problems, seen = [], {}
    for page, alts in alts_by_page.items():
        for alt in alts:
            text = (alt or "").strip()
            if alt is None:
                problems.append((page, alt, "no alt attribute"))
            elif text.lower().rstrip(".") in GENERIC_ALT or len(text.split()) < 4:
                problems.append((page, alt, "empty or generic"))
            elif text in seen and seen[text] != page:
                problems.append((page, alt, f"also on {seen[text]}"))
            elif text in seen:
                problems.append((page, alt, "twice on this page"))
            seen.setdefault(text, page)
    return problems


def audit(out, pages=None):
    """Audit every HTML page of the built site `out`; return one row per page."""
    from axe_playwright_python.sync_playwright import Axe
    pages = pages or html_pages(out)
    axe, rows = Axe(), []
    with serve(out) as base, browser() as b:
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        failed_requests, external = [], []
        page.on("requestfailed", lambda r: failed_requests.append(r.url))
        page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:", "about:"))
                else external.append(r.url))
        page.on("response", lambda r: failed_requests.append(r.url) if r.status >= 400 else None)
        for rel in pages:
            failed_requests.clear()
            external.clear()
            page.goto(base + rel, wait_until="load")
            if page.locator("mjx-container, .math").count():
                page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
                page.evaluate("() => window.MathJax && MathJax.startup.promise")
            # what the page itself failed to load (axe's own stylesheet fetches, which resolve a CSS
            # @import against the page instead of the stylesheet, come after this)
            failed = [u for u in failed_requests if u.startswith(base)] + [f"(not bundled) {u}" for u in external]
            res = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                         "resultTypes": ["violations"]})
            violations = res.response["violations"]
            row = static_checks(out, rel)
            row.update(page=rel, violations=[(v["id"], v["impact"], len(v["nodes"]), v["help"]) for v in violations],
                       failed_requests=failed)
            rows.append(row)
        ctx.close()
    return rows


def table(rows):
    """One line per page: axe violations, links (broken), images (broken), heading jumps, failed requests."""
    w = max(len(r["page"]) for r in rows)
    lines = [f"{'page':<{w}}  {'axe':>3}  {'links':>5} {'broken':>6}  {'images':>6} {'broken':>6}  "
             f"{'heading jumps':>13}  {'failed loads':>12}"]
    for r in rows:
        lines.append(f"{r['page']:<{w}}  {len(r['violations']):>3}  {r['links']:>5} {len(r['broken_links']):>6}  "
                     f"{r['images']:>6} {len(r['broken_images']):>6}  {len(r['heading_jumps']):>13}  "
                     f"{len(r['failed_requests']):>12}")
        for v in r["violations"]:
            lines.append(f"    axe {v[0]} ({v[1]}, {v[2]} element(s)): {v[3]}")
        for u in r["broken_links"] + r["broken_images"] + r["failed_requests"]:
            lines.append(f"    broken: {u}")
        for j in r["heading_jumps"]:
            lines.append(f"    heading order: {j}")
    return "\n".join(lines)


def problems(rows):
    """Every failure the audit found (an empty list means the site passes)."""
    found = []
    for r in rows:
        found += [f"{r['page']}: axe {v[0]}: {v[3]}" for v in r["violations"]]
        found += [f"{r['page']}: broken link {u}" for u in r["broken_links"]]
        found += [f"{r['page']}: broken image {u}" for u in r["broken_images"]]
        found += [f"{r['page']}: failed to load {u}" for u in r["failed_requests"]]
        found += [f"{r['page']}: heading order {j}" for j in r["heading_jumps"]]
    found += [f"{p}: text alternative {a!r}: {why}" for p, a, why in alt_problems({r["page"]: r["alts"] for r in rows})]
    return found
