"""Bigger, longer-trained or longer-thinking: total cost vs query volume per kind, and
iso-accuracy contours over (N, D) at fixed T and (N, T) at fixed D where data exist."""

from __future__ import annotations

import math

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evalharness.plots.common import FigureSpec, TaskView, figure, new_figure, sci_label, slug

KIND_STYLE = {"winner": ("black", "-"), "bigger": ("tab:blue", "--"),
              "longer-trained": ("tab:green", "-."), "longer-thinking": ("tab:orange", ":")}


def _main_set(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the largest problem set (the one compared first)."""
    if table.empty:
        return table
    biggest = table.groupby("problem_set")["problems"].max().idxmax()
    return table[table["problem_set"] == biggest]


def plot_threeway_cost(costs: pd.DataFrame, answers: pd.DataFrame, crossover: pd.DataFrame,
                       volume: float, task: str, family: str) -> Figure:
    """One panel per target: total FLOPs = training + Q × inference vs Q for the winner at
    `volume` and, per other kind (read relative to that winner), the cheapest of its
    checkpoints at each Q; dashed verticals mark the crossovers, shaded their 95% CIs."""
    from evalharness.analysis.threeway import kind_of

    targets = sorted(answers["target"].unique())
    fig, axs = new_figure(4.6 * len(targets), 4.0, ncols=len(targets), sharey=True)
    q_eq = (costs["train_flops"] / costs["inference_flops"]).astype(float)
    q_eq = q_eq[np.isfinite(q_eq) & (q_eq > 0)]
    lo, hi = (q_eq.min() / 100, q_eq.max() * 100) if len(q_eq) else (1.0, 1e12)
    qs = np.logspace(math.log10(min(lo, volume / 10)), math.log10(max(hi, volume * 10)), 200)
    for ax, target in zip(axs, targets, strict=True):
        win = answers[answers["target"] == target].iloc[0]
        c = costs[costs["target"] == target]
        kinds = np.array([("winner" if ck == win["checkpoint"] else
                           kind_of(n, d, win["params"], win["tokens"]))
                          for ck, n, d in zip(c["checkpoint"], c["params"], c["tokens"],
                                              strict=True)])
        for kind, (color, ls) in KIND_STYLE.items():
            g = c[kinds == kind]
            if g.empty:
                continue
            total = (g["train_flops"].to_numpy(float)[:, None]
                     + qs[None, :] * g["inference_flops"].to_numpy(float)[:, None])
            label = (f"winner at Q = {sci_label(volume)}: {win['config']}" if kind == "winner"
                     else f"{kind} (cheapest of {len(g)} checkpoint{'s' * (len(g) > 1)})")
            ax.plot(qs, total.min(axis=0), ls, color=color, lw=1.6, label=label)
        x = crossover[crossover["target"] == target] if not crossover.empty else crossover
        for _, r in x.iterrows():
            ax.axvline(r["q_star"], color="grey", ls="--", lw=0.8)
            if math.isfinite(r["q_lo"]) and math.isfinite(r["q_hi"]):
                ax.axvspan(r["q_lo"], r["q_hi"], color="grey", alpha=0.12, lw=0)
        ax.axvline(volume, color="black", lw=0.5, alpha=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(lambda v, _: sci_label(v))
        ax.set_xlabel("queries Q (log scale)")
        ax.set_title(f"target accuracy {100 * target:.0f}%", fontsize=9)
        ax.legend(frameon=False, fontsize=6.5, loc="upper left")
    axs[0].set_ylabel("total FLOPs = 6·N·D + Q × inference")
    fig.suptitle(f"Total cost vs query volume per kind — {family} · task {task}")
    return fig


def _panel(ax, cells: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str,
           targets: tuple[float, ...]) -> None:
    """Measured accuracies (colour) on log axes and, where a 2 x 2 block of neighbouring
    cells was measured, the contours at the targets (never through unmeasured cells)."""
    wide = cells.pivot_table(index=y, columns=x, values="maj_at_n", aggfunc="mean")
    xs, ys = wide.columns.to_numpy(float), wide.index.to_numpy(float)
    X, Y = np.meshgrid(xs, ys)
    Z = np.ma.masked_invalid(wide.to_numpy(float))
    sc = ax.scatter(X[~Z.mask], Y[~Z.mask], c=Z.compressed(), cmap="viridis", vmin=0, vmax=1,
                    s=40, edgecolors="k", lw=0.4, zorder=3)
    levels = [t for t in targets if Z.count() and Z.min() < t < Z.max()]
    if levels and min(Z.shape) >= 2:
        cs = ax.contour(X, Y, Z, levels=levels, colors="k", linewidths=1.0)
        ax.clabel(cs, fmt=lambda v: f"{100 * v:.0f}%", fontsize=7)
    for axis, ticks, scale in ((ax.xaxis, xs, ax.set_xscale), (ax.yaxis, ys, ax.set_yscale)):
        scale("log", base=2)
        axis.set_ticks(ticks, [sci_label(v) if v >= 1000 else f"{v:g}" for v in ticks])
        axis.set_minor_locator(mticker.NullLocator())
        # room around the outermost cells (contour sets tight limits)
        pad = (ticks.max() / ticks.min()) ** 0.08 if ticks.size > 1 else 1.5
        (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(ticks.min() / pad, ticks.max() * pad)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.figure.colorbar(sc, ax=ax, label="exact match (majority of n)", shrink=0.8)


def contour_panels(grid: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The panels the data support: (N, D) at the T with the most cells, (N, T) at the D
    with the most cells (the largest T or D among ties); none with < 2 levels on an axis."""
    out = []
    if grid.empty:
        return out
    for fixed, free, name in (("budget", "tokens", "N × D"), ("tokens", "budget", "N × T")):
        # log axes: a level at 0 (no thinking, T = 0) or unknown has no place on them
        drawable = grid[(grid["params"] > 0) & (grid[free] > 0)
                        & np.isfinite(grid[["params", free]].to_numpy(float)).all(axis=1)]
        if drawable.empty:
            continue
        count = drawable.groupby(fixed).size()
        at = count[count == count.max()].index.max()
        cells = drawable[drawable[fixed] == at]
        if cells["params"].nunique() >= 2 and cells[free].nunique() >= 2:
            at_s = f"T = {at:g}" if fixed == "budget" else f"D = {sci_label(at)}"
            out.append((f"{name} at {at_s}", cells))
    return out


def plot_threeway_contours(panels: list[tuple[str, pd.DataFrame]], targets: tuple[float, ...],
                           task: str, family: str) -> Figure:
    fig, axs = new_figure(5.0 * len(panels), 4.0, ncols=len(panels))
    for ax, (title, cells) in zip(axs, panels, strict=True):
        free = "tokens" if title.startswith("N × D") else "budget"
        _panel(ax, cells, "params", free, "parameters N (log scale)",
               "training tokens D (log scale)" if free == "tokens"
               else "thinking budget T (log scale)", targets)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Iso-accuracy over (N, D) and (N, T) — {family} · task {task}")
    return fig


@figure("threeway_cost", "threeway_contours", order=76)
def threeway_figures(v: TaskView) -> list[FigureSpec]:
    """Per family of the task: the cost-vs-Q figure where an answer exists at the reference
    volume, the contour figure where an axis pair has >= 2 levels each."""
    from evalharness.analysis.buy import TARGETS
    from evalharness.analysis.threeway import REFERENCE_VOLUME

    a = v.analysis
    ans = getattr(a, "threeway", pd.DataFrame())
    costs = getattr(a, "threeway_costs", pd.DataFrame())
    cross = getattr(a, "threeway_crossover", pd.DataFrame())
    grid = getattr(a, "threeway_grid", pd.DataFrame())
    out: list[FigureSpec] = []
    fams = sorted(set(ans["family"][ans["task"] == v.task]) if not ans.empty else set())
    for family in fams:
        f_ans = _main_set(ans[(ans["task"] == v.task) & (ans["family"] == family)])
        ok = f_ans[(f_ans["status"] == "ok") & (f_ans["queries"] == REFERENCE_VOLUME)]
        where = f_ans["problem_set"].iloc[0] if len(f_ans) else ""
        c = costs[(costs["task"] == v.task) & (costs["family"] == family)
                  & (costs["problem_set"] == where)] if not costs.empty else costs
        x = cross[(cross["task"] == v.task) & (cross["family"] == family)
                  & (cross["problem_set"] == where)] if not cross.empty else cross
        if not ok.empty and not c.empty and c["checkpoint"].nunique() >= 2:
            out.append(FigureSpec(
                slug("threeway_cost", family, v.task), "threeway_cost", v.task, str(family),
                f"Total FLOPs (training 6·N·D once + Q × inference per query) against query "
                f"volume on {where}: black, the cheapest option at Q = "
                f"{sci_label(REFERENCE_VOLUME)}; coloured, the cheapest checkpoint of each "
                "other kind relative to it (bigger N; longer-trained: no bigger, more tokens; "
                "longer-thinking: neither, more inference), each at its cheapest configuration "
                "reaching the target; dashed, the crossovers, shaded their 95% CIs.",
                plot_threeway_cost(c, ok, x, REFERENCE_VOLUME, v.task, str(family))))
        g = grid[(grid["task"] == v.task) & (grid["family"] == family)] if not grid.empty else grid
        if g.empty:
            continue
        # one decoding, one sample: contours never join greedy and sampled configurations
        one = g[g["n"] == 1]
        dec = one["decoding"].value_counts()
        if dec.empty:
            continue
        panels = contour_panels(one[one["decoding"] == ("greedy" if "greedy" in dec
                                                        else dec.index[0])])
        if panels:
            out.append(FigureSpec(
                slug("threeway_contours", family, v.task), "threeway_contours", v.task,
                str(family),
                "Measured accuracy (colour; mean over seeds, on the problems every "
                "configuration of the decoding saw) and its contours at the target accuracies, "
                "over parameters and training tokens at one thinking budget, and over "
                "parameters and thinking budget at one training length; a panel is drawn "
                "only with >= 2 levels on both axes, contours only between measured cells.",
                plot_threeway_contours(panels, TARGETS, v.task, str(family))))
    return out
