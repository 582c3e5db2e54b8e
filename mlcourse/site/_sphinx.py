"""Sphinx extension of the course site: the text alternative of every stored figure.

MyST-NB names each output image by the sha256 of its bytes and reads only width and height from
the output's metadata; the builder writes ``alt_texts.json`` (sha256 -> text) beside conf.py, and
this extension puts each text on its image node.
"""
from __future__ import annotations

import json
import os

from docutils import nodes


def _set_alts(app, doctree):
    path = os.path.join(app.srcdir, "alt_texts.json")
    if not os.path.exists(path):
        return
    if not hasattr(app, "_mlcourse_alts"):
        with open(path, encoding="utf-8") as f:
            app._mlcourse_alts = json.load(f)
    for img in doctree.findall(nodes.image):
        stem = os.path.splitext(os.path.basename(img.get("uri", "")))[0]
        if stem in app._mlcourse_alts:
            img["alt"] = app._mlcourse_alts[stem]


def _drop_macro_templates(app, exc):
    """The themes copy their Jinja macro files into _static; they are not pages of the site."""
    if exc is None:
        static = os.path.join(app.outdir, "_static")
        for name in os.listdir(static):
            if name.endswith("macros.html"):
                os.remove(os.path.join(static, name))


def setup(app):
    app.connect("doctree-read", _set_alts)
    app.connect("build-finished", _drop_macro_templates)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
