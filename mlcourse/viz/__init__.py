"""Figures and widgets used by the notebooks (imports matplotlib; the engine never imports this)."""
