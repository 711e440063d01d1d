"""The budget-control figure: where a forced end did not bite."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from evalharness.plots.common import (
    STYLE,
    BudgetAxis,
    FigureSpec,
    TaskView,
    base_level,
    figure,
    figure_title,
    finite_or,
    model_colors,
    model_label,
    model_order,
    new_figure,
    params_of,
    slug,
)

_CONTROL_PANELS = (
    ("forced_rate", "thinking forced to end at T\n(share of records)"),
    ("forced_answer_cut_rate", "answer cut by --max-answer-tokens\n(share of forced ends)"),
    ("reopened_rate", "thinking re-opened in the answer\n(share of forced ends)"),
    ("forced_no_answer_rate", "no extractable answer\n(share of forced ends)"),
)
# each panel's share as (count column, denominator column) of the diagnostics table
_CONTROL_COUNTS = {
    "forced_rate": ("forced", "n"),
    "forced_answer_cut_rate": ("forced_answer_cut", "forced"),
    "reopened_rate": ("reopened", "forced"),
    "forced_no_answer_rate": ("forced_no_answer", "forced"),
}
# a share over fewer records than this is labelled with its count even when it is 0
_FEW_RECORDS = 10


def _count_labels(ax, x: np.ndarray, g: pd.DataFrame, col: str, color, seen: set) -> int:
    """Write "k/d" beside each point of one model's share curve that rests on fewer than
    `_FEW_RECORDS` records (100% of 2 forced ends is not 100% of 200) or, in a failure panel,
    whose share is above 0; a label already written at the same spot (`seen`) is not written
    again. Returns how many it wrote."""
    num, den = _CONTROL_COUNTS[col]
    if num not in g or den not in g:
        return 0
    wrote = 0
    for xi, (_, r) in zip(x, g.iterrows(), strict=True):
        k, d, v = (finite_or(r[c], math.nan) for c in (num, den, col))
        if not (math.isfinite(k) and math.isfinite(d) and math.isfinite(v)) or d <= 0:
            continue
        failure = col != "forced_rate"  # the forced share itself is no failure
        text = f"{k:.0f}/{d:.0f}"
        if (d < _FEW_RECORDS or (failure and v > 0)) and (xi, round(v, 3), text) not in seen:
            seen.add((xi, round(v, 3), text))
            ax.annotate(text, (xi, v), xytext=(3, 4), textcoords="offset points",
                        fontsize=6, color=color, ha="left", va="bottom")
            wrote += 1
    return wrote


def plot_budget_control(
    diagnostics: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
    warn_share: float = 0.05,
) -> Figure:
    """Did budget forcing bite? Per model vs the thinking budget T: the share of records whose
    thinking was forced to end, and among those forced ends the share whose answer was cut by
    ``--max-answer-tokens``, that re-opened thinking, or that gave no extractable answer; the
    dotted line is the warning threshold (`warn_share`).

    `diagnostics`: analysis ``diagnostics`` rows of one task (model, budget, the ``*_rate``
    columns of :func:`evalharness.diagnostics.budget_control`)."""
    with mpl.rc_context(STYLE):
        fig, axes = new_figure(3.3 * len(_CONTROL_PANELS), 3.9, ncols=len(_CONTROL_PANELS),
                                sharey=True)
        params = params_of(diagnostics, params)
        colors = model_colors(params)
        bax = BudgetAxis(diagnostics["budget"])
        handles, counted, seen = [], 0, {}
        for m in model_order(params):
            g = diagnostics[diagnostics["model"] == m].sort_values("budget")
            st = dict(color=colors[m], marker="o", ms=4, lw=1.6)
            for ax, (col, _) in zip(axes, _CONTROL_PANELS, strict=True):
                ax.plot(bax.x(g["budget"]), g[col].astype(float), label=model_label(m, params), **st)
                counted += _count_labels(ax, bax.x(g["budget"]), g, col, colors[m],
                                         seen.setdefault(col, set()))
            handles.append(Line2D([], [], label=model_label(m, params), **st))
        for i, (ax, (_, title)) in enumerate(zip(axes, _CONTROL_PANELS, strict=True)):
            if i > 0:
                ax.axhline(warn_share, color="crimson", lw=0.9, ls=":", zorder=0)
            bax.apply(ax, "thinking budget T (log₂)")
            ax.set_title(title)
            ax.set_ylim(-0.03, 1.03)
        axes[0].set_ylabel("share")
        handles.append(Line2D([], [], color="crimson", lw=0.9, ls=":",
                              label=f"warning above {100 * warn_share:.0f}%"))
        if counted:
            handles.append(Line2D([], [], ls="none", label=(
                f"k/d: k of d records (failures above 0, any d < {_FEW_RECORDS})")))
        fig.suptitle(figure_title("Budget control: did forcing the end of thinking bite?", family, task))
        fig.legend(handles=handles, loc="outside lower center", frameon=False,
                   ncols=min(4, len(handles)))
    return fig


@figure("budget_control", order=80)
def control_figures(v: TaskView) -> list[FigureSpec]:
    """The budget-control figure of one task, where a forced end failed to bite at least once
    (answer cut, thinking re-opened or no answer); otherwise the report's table says so."""
    a, task, fam, P = v.analysis, v.task, v.family, v.params
    from evalharness.diagnostics import WARN_SHARE

    diag = getattr(a, "diagnostics", pd.DataFrame())
    if diag.empty:
        return []
    diag = base_level(diag[diag["task"] == task])
    failed = diag[["forced_answer_cut", "reopened", "forced_no_answer"]].astype(float)
    if diag.empty or not (failed.fillna(0).to_numpy() > 0).any():
        return []
    return [FigureSpec(
        slug("budget_control", task), "budget_control", task, fam,
        "Did budget forcing bite? Share of records whose thinking was forced to end at T, and "
        "of those forced ends the share whose answer was cut by --max-answer-tokens, that "
        "re-opened thinking, or that gave no extractable answer (dotted: the "
        f"{100 * WARN_SHARE:.0f}% warning threshold). A failure share above 0, and any share "
        f"over fewer than {_FEW_RECORDS} records, is labelled k/d: k records of d.",
        plot_budget_control(diag, task=task, family=fam, params=P, warn_share=WARN_SHARE),
    )]

