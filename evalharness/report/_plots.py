"""The one place the report reaches into `evalharness.plots`.

Three of these are private helpers of plots.py, re-exported here under public names so the
report modules never spell ``plots._x``; once plots publishes them, only this file changes.
"""

from __future__ import annotations

from evalharness import plots

# public in plots already
DPI = plots.DPI
FigureSpec = plots.FigureSpec
analysis_params = plots.analysis_params
build_figures = plots.build_figures
format_params = plots.format_params
slug = plots.slug
split_model = plots.split_model

# private in plots (to be made public there)
finite_or = plots._finite_or  # float(x) if finite, else the default
curves = plots._curves  # rows of the models with a budget curve (>= 2 budgets)
base_level = plots._base_level  # rows of each model's lowest "Wait"-extension level

__all__ = ["DPI", "FigureSpec", "analysis_params", "base_level", "build_figures", "curves",
           "finite_or", "format_params", "slug", "split_model"]
