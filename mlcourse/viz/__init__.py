"""Figures and widgets the notebooks use (course machinery: above the engine and the experiments)."""
