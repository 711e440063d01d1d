"""Figures of best-of-N: pass@k, majority@k and best-of-k vs k."""

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
    FigureSpec,
    TaskView,
    base_level,
    figure,
    figure_title,
    finite_or,
    fmt2,
    model_colors,
    model_label,
    model_order,
    new_figure,
    params_of,
    slug,
)

_BESTOF_PANELS = (
    ("pass", "pass@k (unbiased): any of k correct"),
    ("maj", "maj@k: majority vote of k"),
    ("bok", "best-of-k: most confident of k"),
)


def plot_pass_maj_at_k(
    coverage: pd.DataFrame,
    coverage_fits: pd.DataFrame | None = None,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Repeated sampling: pass@k, maj@k and best-of-k (selected by the answer's mean token
    log-prob) vs k (log₂ x), one line per (model, budget) with CI bands; the coverage fit
    −log pass@k = c·k^(−β) dashed on the pass@k panel, c and β in the legend.

    `coverage`: analysis ``coverage`` rows of one task, only (model, budget) curves with k > 1
    (model, budget, k, pass_at_k, pass_lo, pass_hi, maj_at_k, ..., bok_at_k, ...).
    `coverage_fits`: analysis ``coverage_fits`` rows (model, budget, status, c, beta)."""
    panels = [(key, title) for key, title in _BESTOF_PANELS if f"{key}_at_k" in coverage]
    with mpl.rc_context(STYLE):
        n_curves = len(coverage.groupby(["model", "budget"]))
        rows = math.ceil((n_curves + 1) / 2)  # legend below the panels, two columns
        fig, axes = new_figure(4.1 * len(panels), 4.0 + 0.2 * rows, ncols=len(panels), sharey=True)
        params = params_of(coverage, params)
        colors = model_colors(params)
        budgets = sorted(coverage["budget"].unique())
        styles, markers = ["-", "-.", ":", (0, (5, 1.5))], ["o", "s", "^", "D"]
        kmax = float(coverage["k"].max())
        handles, any_fit = [], False
        for m in model_order(params):
            for j, t in enumerate(budgets):
                g = coverage[(coverage["model"] == m) & (coverage["budget"] == t)]
                g = g.sort_values("k")
                if g.empty:
                    continue
                lab = model_label(m, params) + (f", T={t:g}" if len(budgets) > 1 else "")
                st = dict(color=colors[m], ls=styles[j % 4], marker=markers[j % 4], ms=3.5, lw=1.5)
                for ax, (key, _) in zip(axes, panels, strict=True):
                    ax.plot(g["k"], g[f"{key}_at_k"], **st)
                    if {f"{key}_lo", f"{key}_hi"} <= set(g.columns):
                        ax.fill_between(
                            g["k"], g[f"{key}_lo"], g[f"{key}_hi"], color=colors[m], alpha=0.1, lw=0
                        )
                cov = _coverage_row(coverage_fits, m, t)
                if cov is not None:
                    kk = np.geomspace(1, kmax, 60)
                    c, beta = float(cov["c"]), float(cov["beta"])
                    axes[0].plot(
                        kk, np.exp(-c * kk ** (-beta)), color=colors[m], ls="--", lw=1.1, alpha=0.9
                    )
                    lab += f"  (c={fmt2(c)}, β={fmt2(beta)})"
                    any_fit = True
                handles.append(Line2D([], [], label=lab, **st))
        for ax, (_, title) in zip(axes, panels, strict=True):
            ax.set_xscale("log", base=2)
            kvals = sorted(coverage["k"].unique())
            if len(kvals) <= 10:
                ax.set_xticks(kvals)
            else:
                ax.xaxis.set_major_locator(mpl.ticker.LogLocator(base=2))
            ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
            ax.set_xlabel("k (samples per problem, log₂ scale)")
            ax.set_title(title)
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_ylabel("share of problems solved")
        at = f" (thinking budget T={budgets[0]:g})" if len(budgets) == 1 else ""
        fig.suptitle(figure_title("Repeated sampling: accuracy vs number of samples k", family, task, at))
        if any_fit:
            handles.append(
                Line2D(
                    [],
                    [],
                    color="0.3",
                    ls="--",
                    lw=1.1,
                    label="coverage fit −log pass@k = c·k^(−β)",
                )
            )
        fig.legend(
            handles=handles, loc="outside lower center", frameon=False, ncols=2,
            title="model (band: 95% CI)",
        )
    return fig


def _coverage_row(coverage_fits: pd.DataFrame | None, model: str, budget):
    if coverage_fits is None or coverage_fits.empty:
        return None
    rows = coverage_fits[(coverage_fits["model"] == model) & (coverage_fits["budget"] == budget)]
    if "status" in rows:
        rows = rows[rows["status"] == "ok"]
    if rows.empty:
        return None
    r = rows.iloc[0]
    if not (
        math.isfinite(finite_or(r.get("c"), math.nan))
        and math.isfinite(finite_or(r.get("beta"), math.nan))
    ):
        return None
    return r



@figure("pass_maj_at_k", order=30)
def sampling_figures(v: TaskView) -> list[FigureSpec]:
    """pass@k / majority@k / best-of-k vs k, where some configuration drew k > 1 samples."""
    a, task = v.analysis, v.task
    cov = base_level(a.coverage[a.coverage["task"] == task]) if not a.coverage.empty else a.coverage
    if not cov.empty:
        kmax = cov.groupby(["model", "budget"])["k"].transform("max")
        cov = cov[kmax > 1]
    if cov.empty:
        return []
    cfits = a.coverage_fits[a.coverage_fits["task"] == task] if not a.coverage_fits.empty else None
    return [FigureSpec(
        slug("pass_maj_at_k", task), "pass_maj_at_k", task, v.family,
        "pass@k (unbiased), majority@k and best-of-k (by the answer's mean token "
        "log-prob) vs k, expectations over random k-subsets of the n samples; "
        "dashed: coverage fit −log pass@k = c·k^(−β).",
        plot_pass_maj_at_k(cov, cfits, task=task, family=v.family, params=v.params),
    )]
