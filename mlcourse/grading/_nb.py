"""nbformat, imported without a multi-second detour.

nbformat validates with jsonschema, which at import time tries the optional package
``rfc3987_syntax`` for its "iri" format checker; that package builds a parser grammar when
imported (2-8 s here).  Notebook schemas never use the "iri" format, so when nothing has imported
it yet we mark it unavailable (jsonschema then skips that one checker) and every grading command
starts in well under a second.
"""
import sys

sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

__all__ = ["nbformat"]
