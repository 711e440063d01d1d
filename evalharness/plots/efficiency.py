"""Figures of thinking efficiency: the budget each problem needs against its natural length,
accuracy against thinking spent under uniform / predicted / oracle allocation, and a longer
think against majority vote at matched FLOPs."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evalharness.plots.common import (
    STYLE,
    FigureSpec,
    TaskView,
    add_legend,
    analysis_params,
    figure,
    figure_title,
    finite_or,
    model_label,
    new_figure,
    slug,
)

MAX_PANELS = 4


def headline_config(analysis, task: str) -> pd.Series | None:
    """The configuration the efficiency headline and figures show: an identifiable allocation
    headline row, greedy before sampled, no extension before extensions, unsaturated (uniform
    best accuracy < 98%) before saturated, the largest model,
    the most problems, the task's own difficulty before a predicted one."""
    head = getattr(analysis, "allocation_headline", pd.DataFrame())
    if head.empty or "task" not in head:
        return None
    h = head[(head["task"] == task) & (head["status"] == "ok")]
    if h.empty:
        return None
    params = analysis_params(analysis)
    # a saturated configuration (uniform best >= 98%) leaves little to allocate: shown last
    h = h.assign(_room=h["uniform_exact_match"] < 0.98,
                 _g=h["decoding"] == "greedy", _e=-h["extensions"].astype(float),
                 _p=h["model"].map(lambda m: finite_or(params.get(m), -1.0)),
                 _t=h["predictor"].str.startswith("task"))
    return h.sort_values(["_g", "_e", "_room", "_p", "problems", "_t"]).iloc[-1]


def plot_needs(needs: pd.DataFrame, configs: list[tuple[str, int, str]], *, task: str,
               family: str, params: Mapping[str, float]) -> Figure:
    """Per problem (and sample): the thinking tokens it needed (N*_stable) against its
    natural thinking length, one panel per configuration, coloured by difficulty bucket;
    censored lengths (thinking did not end) and never-stable problems on marked edges."""
    with mpl.rc_context(STYLE):
        fig, axes = new_figure(4.0 * len(configs), 4.2, ncols=len(configs))
        for ax, (model, ext, grid) in zip(axes, configs, strict=True):
            g = needs[(needs["model"] == model) & (needs["extensions"] == ext)
                      & (needs["budget_grid"] == grid)]
            t_max = float(g["t_max"].max())
            edge = t_max * 1.15
            x = g["natural_tokens"].to_numpy(float)
            y = g["need_stable_tokens"].to_numpy(float)
            xs = np.where(np.isfinite(x), x, edge)
            ys = np.where(np.isfinite(y), y, -0.08 * edge)
            diff = g["difficulty"].to_numpy(float)
            levels = np.unique(diff[np.isfinite(diff)])
            cmap = mpl.colormaps["viridis"]
            if 1 < levels.size <= 8:
                for j, lv in enumerate(levels):
                    m = diff == lv
                    ax.scatter(xs[m], ys[m], s=14, alpha=0.6, color=cmap(0.1 + 0.8 * j / max(
                        levels.size - 1, 1)), label=f"difficulty {lv:g}")
            else:
                ax.scatter(xs, ys, s=14, alpha=0.6, color=cmap(0.35), label="problem")
            ax.plot([0, t_max], [0, t_max], color="0.5", lw=0.8, ls=":", label="needed = natural")
            ax.axvline(edge * 0.96, color="0.7", lw=0.6, ls="--")
            ax.axhline(-0.04 * edge, color="0.7", lw=0.6, ls="--")
            ax.set_xlim(-0.03 * edge, edge * 1.05)
            ax.set_ylim(-0.12 * edge, t_max * 1.05)
            ax.set_xlabel("natural thinking length L_nat (right edge: did not end)")
            ax.set_ylabel("thinking needed N*_stable (bottom: never stable)")
            ax.set_title(model_label(model, params) + (f" (+{ext} Wait)" if ext else ""))
            add_legend(ax, loc="upper left")
        fig.suptitle(figure_title("Thinking needed vs natural length", family, task))
    return fig


def plot_allocation(alloc: pd.DataFrame, *, title: str) -> Figure:
    """Accuracy vs mean thinking tokens spent per problem: one budget for all (line, CI
    bars), per-bucket budgets chosen on the other half (one line per predictor), the oracles
    (stars)."""
    with mpl.rc_context(STYLE):
        fig, (ax,) = new_figure(6.4, 4.6)
        uni = alloc[alloc["policy"] == "uniform"].sort_values("tokens")
        ax.errorbar(uni["tokens"], uni["exact_match"],
                    yerr=[uni["exact_match"] - uni["exact_match_lo"], uni["exact_match_hi"] - uni["exact_match"]],
                    color="0.3", marker="o", ms=4, lw=1.4, capsize=2, label="uniform budget")
        for _, r in uni.iterrows():
            ax.annotate(r["setting"], (r["tokens"], r["exact_match"]), fontsize=7,
                        xytext=(3, -9), textcoords="offset points", color="0.4")
        colors = mpl.colormaps["tab10"]
        pred = alloc[alloc["policy"] == "predicted"]
        for j, (name, g) in enumerate(pred.groupby("predictor", sort=True)):
            g = g.sort_values("tokens")
            ax.errorbar(g["tokens"], g["exact_match"],
                        yerr=[g["exact_match"] - g["exact_match_lo"], g["exact_match_hi"] - g["exact_match"]],
                        color=colors(j), marker="s", ms=3.5, lw=1.2, capsize=2,
                        label=f"predicted ({name}), cross-fitted")
        for kind, marker in (("oracle_stable", "*"), ("oracle_first", "P")):
            o = alloc[alloc["policy"] == kind]
            if not o.empty:
                ax.errorbar(o["tokens"], o["exact_match"],
                            yerr=[o["exact_match"] - o["exact_match_lo"], o["exact_match_hi"] - o["exact_match"]],
                            color="crimson", marker=marker, ms=9, ls="none", capsize=2,
                            label=kind.replace("_", " (T*_") + ")")
        ax.set_xlabel("mean thinking tokens spent per problem")
        ax.set_ylabel("exact match")
        ax.set_title(title)
        add_legend(ax, loc="lower right")
    return fig


def plot_seq_vs_par(sv: pd.DataFrame, *, task: str, family: str) -> Figure:
    """Sequential minus parallel accuracy (with its paired CI) per pair and difficulty
    bucket: right of 0 a longer think wins, left majority vote of k samples wins."""
    rows = sv.sort_values(["par_model", "k", "bucket"]).reset_index(drop=True)
    with mpl.rc_context(STYLE):
        fig, (ax,) = new_figure(7.2, 1.4 + 0.28 * len(rows))
        y = np.arange(len(rows))[::-1]
        ax.errorbar(rows["diff"], y, xerr=[rows["diff"] - rows["diff_lo"],
                                           rows["diff_hi"] - rows["diff"]],
                    ls="none", marker="o", ms=4, color="0.2", capsize=2)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([f"T={r.seq_budget:g} vs maj@{r.k} at T={r.par_budget:g} · "
                            f"{r.bucket}" for r in rows.itertuples()], fontsize=7.5)
        ax.set_xlabel("accuracy: longer think − majority vote (matched FLOPs)")
        ax.set_title(figure_title("Sequential vs parallel", family, task))
    return fig


def _configs(needs: pd.DataFrame, params: Mapping[str, float]) -> list[tuple[str, int, str]]:
    """Up to MAX_PANELS greedy configurations (largest models), each on its largest grid."""
    if needs.empty:
        return []
    g = needs[needs["decoding"] == "greedy"] if "decoding" in needs else needs
    g = g[g["extensions"] == 0] if not g.empty else g
    # a one-budget grid resolves no need: nothing to draw against the natural length
    g = g[g["budget_grid"].astype(str).str.contains(" ")] if not g.empty else g
    if g.empty:
        return []
    size = g.groupby(["model", "extensions", "budget_grid"]).size().rename("n").reset_index()
    size = size.sort_values("n").drop_duplicates(["model", "extensions"], keep="last")
    size["p"] = size["model"].map(lambda m: finite_or(params.get(m), -math.inf))
    size = size.sort_values(["p", "model"]).tail(MAX_PANELS)
    return [(r.model, int(r.extensions), r.budget_grid) for r in size.itertuples()]


@figure("efficiency_needs", "efficiency_allocation", "seq_vs_par", order=45)
def efficiency_figures(v: TaskView) -> list[FigureSpec]:
    """The three efficiency figures, each where its table has rows for the task."""
    a, task = v.analysis, v.task
    out: list[FigureSpec] = []
    needs = getattr(a, "needs", pd.DataFrame())
    needs = needs[needs["task"] == task] if not needs.empty else needs
    configs = _configs(needs, v.params)
    if configs:
        out.append(FigureSpec(
            slug("efficiency_needs", task), "efficiency_needs", task, v.family,
            "Per problem (and sample): the thinking tokens it needed to be right from then "
            "on (N*_stable) against its natural thinking length; below the dotted diagonal "
            "it overthinks. Right edge: thinking did not end within the largest budget; "
            "bottom edge: never right at every larger budget.",
            plot_needs(needs, configs, task=task, family=v.family, params=v.params)))
    pick = headline_config(a, task)
    alloc = getattr(a, "allocation", pd.DataFrame())
    if pick is not None and not alloc.empty:
        sel = alloc[(alloc["task"] == task) & (alloc["model"] == pick["model"])
                    & (alloc["extensions"] == pick["extensions"])
                    & (alloc["budget_grid"] == pick["budget_grid"])]
        if not sel.empty:
            out.append(FigureSpec(
                slug("efficiency_allocation", task), "efficiency_allocation", task, v.family,
                "Accuracy vs mean thinking tokens per problem: one budget for every problem "
                "(labelled by T), a budget per difficulty bucket chosen on the other half of "
                "the problems (cross-fitted; points: prices of thinking lam), and the oracles "
                "that know each problem's need. Bars: 95% bootstrap CIs over problems.",
                plot_allocation(sel, title=figure_title(
                    "Allocating thinking", None, task,
                    f" — {model_label(pick['model'], v.params)}"))))
    sv = getattr(a, "seq_vs_par", pd.DataFrame())
    sv = sv[sv["task"] == task] if not sv.empty else sv
    sv = sv[sv["status"] == "ok"] if "status" in sv else sv
    if not sv.empty:
        out.append(FigureSpec(
            slug("seq_vs_par", task), "seq_vs_par", task, v.family,
            "A longer greedy think against majority vote of k samples at a shorter budget, "
            "at matched inference FLOPs, per difficulty bucket: accuracy difference with its "
            "paired 95% bootstrap CI over problems.",
            plot_seq_vs_par(sv, task=task, family=v.family)))
    return out
