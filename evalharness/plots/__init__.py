"""Figures from the analysis tables, one topic module each; `build_figures` draws every
registered figure that applies (see `common.figure`), `make_plots` saves them.

Topics: `budget` (accuracy and thinking tokens vs budget), `sampling` (pass@k / majority@k),
`emergence` (across sizes and seeds), `compute` (FLOPs frontier, iso-accuracy, cost vs
queries), `efficiency` (needed vs natural thinking, allocation, sequential vs parallel),
`diagnostics` (budget control), `scaling` (loss law, emergence over training), `threeway`
(total cost vs queries per kind, iso-accuracy over (N, D) and (N, T)). Importing a topic module
registers its figures.
"""

from __future__ import annotations

from pathlib import Path

# the topic modules register their figures on import (order: their `order=`)
from evalharness.plots import (  # noqa: F401
    budget,
    compute,
    diagnostics,
    efficiency,
    emergence,
    sampling,
    scaling,
    threeway,
)
from evalharness.plots.budget import plot_accuracy_vs_budget, plot_thinking_usage
from evalharness.plots.common import (
    DPI,
    FIGURE_FORMATS,
    FIGURES,
    FigureSpec,
    TaskView,
    analysis_params,
    base_level,
    curves_with_budgets,
    families_label,
    family_name,
    figure,
    figure_kinds,
    finite_or,
    format_params,
    model_colors,
    save_figure,
    slug,
    split_model,
)
from evalharness.plots.compute import plot_cost_vs_queries, plot_flops_frontier, plot_iso_accuracy
from evalharness.plots.diagnostics import plot_budget_control
from evalharness.plots.efficiency import headline_config
from evalharness.plots.emergence import plot_emergence, plot_seed_emergence
from evalharness.plots.sampling import plot_pass_maj_at_k

__all__ = [
    "DPI", "FIGURE_FORMATS", "FigureSpec", "TaskView", "analysis_params", "base_level",
    "curves_with_budgets", "build_figures", "headline_config", "family_name", "figure", "figure_kinds", "finite_or", "format_params",
    "load_analysis", "make_plots", "model_colors", "plot_accuracy_vs_budget",
    "plot_budget_control", "plot_cost_vs_queries", "plot_emergence", "plot_flops_frontier",
    "plot_iso_accuracy", "plot_pass_maj_at_k", "plot_seed_emergence", "plot_thinking_usage",
    "save_figure", "slug", "split_model",
]


# ----------------------------------------------------------------------------- assembly


def build_figures(analysis, x_axes: tuple[str, ...] = ("params", "train_flops")
                  ) -> list[FigureSpec]:
    """Every figure that applies to `analysis` (an :class:`evalharness.analysis.Analysis`):
    per task, each registered builder in order. `x_axes`: the axes of the emergence-over-
    training figure (params, train_flops, tokens)."""
    a = analysis
    params = analysis_params(a)
    specs: list[FigureSpec] = []
    for task in sorted(set(a.budgets["task"]) if not a.budgets.empty else set()):
        bud = base_level(a.budgets[a.budgets["task"] == task])
        view = TaskView(a, task, bud, families_label(bud, a.emergence, task), params,
                        tuple(x_axes))
        for _, _, build in FIGURES:
            specs += build(view)
    return specs


def load_analysis(results_dir: Path):
    """(scores, analysis) for a results folder: ``load_scores`` then ``analyze``."""
    from evalharness.analysis import analyze
    from evalharness.scoring import load_scores

    scores = load_scores(Path(results_dir))
    return scores, analyze(scores)


def make_plots(results_dir: Path, out_dir: Path | None = None, *, analysis=None,
               x_axes: tuple[str, ...] = ("params", "train_flops")) -> list[Path]:
    """Write every applicable figure as PNG + SVG into `out_dir` (default
    ``results_dir/plots``) and return the paths. Pure function of ``results_dir``: works on a
    copy of ``results/`` alone, offline. `analysis` skips re-analysis when the caller has one.
    Figures of ours left from an earlier call that no longer apply are removed."""
    results_dir = Path(results_dir)
    out_dir = results_dir / "plots" if out_dir is None else Path(out_dir)
    if analysis is None:
        _, analysis = load_analysis(results_dir)
    paths: list[Path] = []
    for spec in build_figures(analysis, x_axes):
        paths += save_figure(spec.figure, out_dir / spec.name)
    if out_dir.is_dir():
        for old in out_dir.iterdir():
            ours = old.suffix[1:] in FIGURE_FORMATS and old.stem.startswith(figure_kinds())
            if ours and old not in paths:
                old.unlink()
    return paths

