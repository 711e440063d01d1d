"""Figures of accuracy and thinking tokens vs the thinking budget."""

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
    add_legend,
    curves_with_budgets,
    figure,
    figure_title,
    finite_or,
    model_colors,
    model_label,
    model_order,
    new_figure,
    params_of,
    parse_budgets,
    slug,
    split_model,
)

# ----------------------------------------------------------------------------- figures


def plot_accuracy_vs_budget(
    budgets: pd.DataFrame,
    fits: pd.DataFrame | None = None,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Accuracy vs thinking budget T (log₂ x axis; T = 0 at its own tick left of a dotted
    break): one line per model with its bootstrap CI band (over problems), and the fitted
    a + b·log₂T line (dashed) over the budgets the fit used, its gain per doubling [CI] and R²
    in the legend.

    `budgets`: analysis ``budgets`` rows of one task (model, budget, accuracy, acc_lo, acc_hi,
    params). `fits`: analysis ``fits`` rows (model, status, a, b, b_lo, b_hi, r2, budgets)."""
    budgets = curves_with_budgets(budgets)
    with mpl.rc_context(STYLE):
        n_models = budgets["model"].nunique()
        fig, (ax,) = new_figure(8.4, max(4.6, 1.3 + 0.36 * n_models))  # room for the legend
        params = params_of(budgets, params)
        colors = model_colors(params)
        bax = BudgetAxis(budgets["budget"])
        handles = []
        for m in model_order(params):
            g = budgets[budgets["model"] == m].sort_values("budget")
            x = bax.x(g["budget"])
            sampled = bool(split_model(m)[1])
            (h,) = ax.plot(
                x, g["exact_match"], marker="s" if sampled else "o", ms=4, lw=1.1 if sampled else 1.6,
                color=colors[m], label=model_label(m, params),
            )
            handles.append(h)
            if {"exact_match_lo", "exact_match_hi"} <= set(g.columns):
                ax.fill_between(x, g["exact_match_lo"], g["exact_match_hi"], color=colors[m], alpha=0.14, lw=0)
            fit = _fit_row(fits, m)
            why = _no_fit_reason(fits, m) if fit is None else None
            if why:
                handles.append(Line2D([], [], ls="none", label=f"   {why}" if why.startswith("no fit") else f"   no fit: {why}"))
            if fit is not None:
                tb = [t for t in parse_budgets(fit.get("budgets")) if t > 0]
                if len(tb) >= 2:
                    tt = np.geomspace(min(tb), max(tb), 50)
                    yy = float(fit["a"]) + float(fit["b"]) * np.log2(tt)
                    (h,) = ax.plot(
                        np.log2(tt), yy, ls="--", lw=1.4, color=colors[m], label=_fit_label(fit)
                    )
                    handles.append(h)
        bax.apply(ax)
        ax.set_ylabel("exact match (share of problems)")
        ax.set_ylim(-0.02, 1.02)
        fig.suptitle(figure_title("Accuracy vs thinking budget", family, task))
        ax.legend(
            handles=handles,
            frameon=False,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title="model (band: 95% CI)\n   dashed: fit a + b·log₂T",
            fontsize=8.5 if len(handles) <= 16 else 7.5,
        )
    return fig


def _fit_row(fits: pd.DataFrame | None, model: str):
    if fits is None or fits.empty or "model" not in fits:
        return None
    rows = fits[fits["model"] == model]
    if "status" in rows:
        rows = rows[rows["status"] == "ok"]
    if rows.empty or not math.isfinite(finite_or(rows.iloc[0].get("b"), math.nan)):
        return None
    return rows.iloc[0]


def _no_fit_reason(fits: pd.DataFrame | None, model: str) -> str | None:
    if fits is None or fits.empty or "status" not in fits:
        return None
    rows = fits[(fits["model"] == model) & (fits["status"] != "ok")]
    return str(rows.iloc[0]["status"]) if not rows.empty else None


def _fit_label(fit) -> str:
    b = float(fit["b"])
    s = f"   {100 * b:+.1f} pts/doubling"
    blo, bhi = finite_or(fit.get("b_lo"), None), finite_or(fit.get("b_hi"), None)
    if blo is not None and bhi is not None:
        s += f" [{100 * blo:+.1f}, {100 * bhi:+.1f}]"
    r2 = finite_or(fit.get("r2"), None)
    if r2 is not None:
        s += f", R²={r2:.2f}"
    return s


def plot_thinking_usage(
    budgets: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Thinking tokens actually used vs the budget T (both log₂; T = 0 at its own tick): mean
    per model with a p10–p90 band, and the y = x line (a model that used its whole budget).
    Where a curve leaves y = x, the model stops thinking by itself before the budget.

    `budgets`: analysis ``budgets`` rows of one task (model, budget, think_mean, think_p10,
    think_p90, params)."""
    budgets = curves_with_budgets(budgets)
    with mpl.rc_context(STYLE):
        fig, (ax,) = new_figure(8.4, max(4.6, 1.6 + 0.2 * budgets["model"].nunique()))
        params = params_of(budgets, params)
        colors = model_colors(params)
        bax = BudgetAxis(budgets["budget"])
        pos = [t for t in bax.budgets if t > 0]
        # p10-p90 bands of many models overlap into a grey mass: bands for up to 4 models
        band = {"think_p10", "think_p90"} <= set(budgets.columns) and len(params) <= 4
        if pos:
            tt = np.geomspace(pos[0], pos[-1], 60)
            ax.plot(np.log2(tt), tt, color="0.35", lw=1, ls=":", label="y = x (whole budget)")
        for m in model_order(params):
            g = budgets[budgets["model"] == m].sort_values("budget")
            x = bax.x(g["budget"])
            ax.plot(
                x,
                g["think_mean"],
                marker="o",
                ms=4,
                lw=1.6,
                color=colors[m],
                label=model_label(m, params),
            )
            if band:
                ax.fill_between(
                    x, g["think_p10"], g["think_p90"], color=colors[m], alpha=0.12, lw=0
                )
        ax.set_yscale("symlog", base=2, linthresh=1, linscale=0.5)
        cols = ["think_mean"] + (["think_p90"] if band else [])
        ymax = max(float(np.nanmax(budgets[cols].to_numpy(dtype=float))), max(pos or [1]), 1.0)
        top = int(math.ceil(math.log2(ymax)))
        yt = [0] + [2**k for k in range(0, top + 1)]
        if len(yt) > 10:
            yt = [0] + [2**k for k in range(top % 2, top + 1, 2)]
        ax.set_yticks(yt)
        ax.set_yticklabels([f"{t:g}" for t in yt])
        ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())
        ax.set_ylim(-0.15, ymax * 1.4)
        bax.apply(ax)
        ax.set_ylabel("thinking tokens used per sample (log₂ scale)")
        fig.suptitle(figure_title("Thinking tokens used vs budget", family, task))
        add_legend(
            ax,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title="model: mean" + (", band p10–p90" if band else ""),
        )
    return fig



@figure("accuracy_vs_budget", order=10)
def accuracy_figures(v: TaskView) -> list[FigureSpec]:
    """Accuracy vs budget with the log-T fit, where a task has >= 2 budgets."""
    a, task, bud = v.analysis, v.task, v.budgets
    if bud["budget"].nunique() < 2:
        return []
    fits = a.fits[a.fits["task"] == task] if not a.fits.empty else None
    if fits is not None and "extensions" in fits:
        lvl = bud.groupby("model")["extensions"].first()
        fits = fits[fits["extensions"] == fits["model"].map(lvl)]
    return [FigureSpec(
        slug("accuracy_vs_budget", task), "accuracy_vs_budget", task, v.family,
        "Accuracy vs thinking budget, per model, with 95% bootstrap CI bands over "
        "problems and the fitted a + b·log₂T line (dashed) over the budgets it was "
        "fitted on.",
        plot_accuracy_vs_budget(bud, fits, task=task, family=v.family, params=v.params),
    )]


@figure("thinking_tokens", order=20)
def thinking_figures(v: TaskView) -> list[FigureSpec]:
    """Thinking tokens used vs budget, where a task has >= 2 budgets."""
    bud = v.budgets
    if bud["budget"].nunique() < 2 or "think_mean" not in bud:
        return []
    return [FigureSpec(
        slug("thinking_tokens", v.task), "thinking_tokens", v.task, v.family,
        "Thinking tokens actually used vs budget (mean, p10–p90 band); the dotted "
        "line is y = x.",
        plot_thinking_usage(bud, task=v.task, family=v.family, params=v.params),
    )]
