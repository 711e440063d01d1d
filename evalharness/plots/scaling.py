"""The loss scaling law: held-out loss vs training tokens per size, with the fitted law."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evalharness.plots.common import (
    FigureSpec,
    TaskView,
    figure,
    format_params,
    model_colors,
    new_figure,
    sci_label,
    slug,
)


def plot_loss_law(points: pd.DataFrame, law: pd.Series | None, task: str, family: str) -> Figure:
    """Loss vs tokens seen (log-log), one colour per size: dots are checkpoints (seeds), lines
    join the per-step means over seeds; dashed, the fitted law at each size where it fits."""
    fig, (ax,) = new_figure(6.4, 4.2)
    sizes = points.groupby("size")["params"].first().sort_values()
    colors = model_colors(sizes.to_dict())
    ok = law is not None and law.get("status") == "ok"
    for size, n in sizes.items():
        g = points[points["size"] == size]
        c = colors[size]
        ax.scatter(g["train_tokens"], g["loss"], s=12, color=c, alpha=0.6, lw=0)
        step = np.round(np.log2(g["train_tokens"]) * 10)
        mean = g.groupby(step).agg(d=("train_tokens", "mean"), loss=("loss", "mean"))
        ax.plot(mean["d"], mean["loss"], color=c, lw=1.4, label=f"{size} ({format_params(n)})")
        if ok:
            d = np.geomspace(g["train_tokens"].min(), g["train_tokens"].max(), 50)
            fit = law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]
            ax.plot(d, fit, color=c, lw=1.0, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(lambda v, _: sci_label(v))
    ax.set_xlabel("training tokens seen D (log scale)")
    ax.set_ylabel("held-out loss per gold token (log scale)")
    what = (f"fit: alpha = {law['alpha']:.2f}, beta = {law['beta']:.2f}" if ok
            else "no law drawn: " + (str(law.get("status")).split(":")[0] if law is not None
                                     else "no fit") + " (see the table)")
    ax.set_title(f"Loss vs training tokens — {family} · task {task}\n{what}", fontsize=9.5)
    ax.legend(frameon=False, fontsize=7.5)
    return fig


@figure("loss_law", order=72)
def loss_law_figures(v: TaskView) -> list[FigureSpec]:
    """Per family of the task with held-out losses at >= 2 token levels."""
    pts = getattr(v.analysis, "loss_points", pd.DataFrame())
    law = getattr(v.analysis, "loss_law", pd.DataFrame())
    if pts.empty:
        return []
    out = []
    for family, g in pts[pts["task"] == v.task].groupby("family", sort=True):
        if g["train_tokens"].nunique() < 2:
            continue
        row = law[(law["task"] == v.task) & (law["family"] == family)] if not law.empty else law
        r = row.iloc[0] if len(row) else None
        seeds = g.groupby("size")["model_seed"].nunique()
        k = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
        out.append(FigureSpec(
            slug("loss_law", family, v.task), "loss_law", v.task, str(family),
            f"Held-out loss (mean -log p per gold-trace token, {int(g['problems'].iloc[0])} "
            f"problems) vs training tokens: dots are checkpoints ({k} seeds per size), lines "
            "the means over seeds, dashed the fitted L(N, D) = E + A/N^alpha + B/D^beta"
            + ("" if r is not None and r.get("status") == "ok" else " (not drawn: no fit)")
            + ".", plot_loss_law(g, r, v.task, str(family))))
    return out


__all__ = ["loss_law_figures", "plot_loss_law"]


# ----------------------------------------------------------------------------- training axis

X_LABELS = {"params": "parameters N (log scale)", "train_flops": "training FLOPs 6·N·D (log scale)",
            "tokens": "training tokens seen D (log scale)"}
X_COLUMN = {"params": "params", "train_flops": "train_flops", "tokens": "train_tokens"}


def plot_training_emergence(curves: pd.DataFrame, points: pd.DataFrame, axes: tuple[str, ...],
                            task: str, family: str) -> Figure:
    """One panel per x-axis: exact match (solid) and the per-token metric (dashed) per size.
    Against params, one line per token level (each checkpoint step); against tokens or
    training FLOPs, one line per size joined along training, thin lines for single seeds; bands
    are 95% CIs over problems and seeds."""
    fig, axs = new_figure(5.2 * len(axes), 4.0, ncols=len(axes), sharey=True)
    sizes = curves.groupby("size")["params"].first().sort_values()
    colors = model_colors(sizes.to_dict())
    metrics = list(dict.fromkeys(curves["metric"]))
    styles = {m: ("-" if m == "exact_match" else "--") for m in metrics}
    for ax, axis in zip(axs, axes, strict=True):
        col = X_COLUMN[axis]
        if axis == "params":
            lv = curves.groupby("token_level")["train_tokens"].mean().sort_values()
            shades = model_colors({str(k): float(v) for k, v in lv.items()})
            for m in metrics:
                for k in lv.index:
                    c = curves[(curves["metric"] == m) & (curves["token_level"] == k)]
                    c = c.sort_values(col)
                    lab = f"D = {sci_label(lv[k])}" if m == "exact_match" else None
                    ax.plot(c[col], c["mean"], styles[m], color=shades[str(k)], lw=1.3,
                            label=lab, marker="o", ms=3)
                    ax.fill_between(c[col], c["ci_lo"], c["ci_hi"], color=shades[str(k)],
                                    alpha=0.12, lw=0)
        else:
            for m in metrics:
                for size, n in sizes.items():
                    c = curves[(curves["metric"] == m) & (curves["size"] == size)].sort_values(col)
                    lab = f"{size} ({format_params(n)})" if m == "exact_match" else None
                    ax.plot(c[col], c["mean"], styles[m], color=colors[size], lw=1.5, label=lab,
                            marker="o", ms=3)
                    ax.fill_between(c[col], c["ci_lo"], c["ci_hi"], color=colors[size],
                                    alpha=0.12, lw=0)
                    p = points[(points["metric"] == m) & (points["size"] == size)]
                    for _, t in p.groupby("model_seed", dropna=False):
                        t = t.sort_values(col)
                        ax.plot(t[col], t["value"], styles[m], color=colors[size], lw=0.5,
                                alpha=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(lambda v, _: sci_label(v))
        ax.set_xlabel(X_LABELS[axis])
        ax.legend(frameon=False, fontsize=7, loc="upper left")
    axs[0].set_ylabel("exact match (solid) / " + " / ".join(m for m in metrics if m != "exact_match")
                      + " (dashed)")
    fig.suptitle(f"Emergence over training — {family} · task {task}")
    return fig


@figure("emergence_training", order=52)
def training_figures(v: TaskView) -> list[FigureSpec]:
    """Per family of the task with checkpoints at >= 2 token levels: emergence against the
    x-axes of the view (default: parameters and training FLOPs side by side)."""
    curves = getattr(v.analysis, "training_curves", pd.DataFrame())
    points = getattr(v.analysis, "training_points", pd.DataFrame())
    if curves.empty:
        return []
    axes = tuple(getattr(v, "x_axes", ("params", "train_flops")))
    out = []
    for family, c in curves[curves["task"] == v.task].groupby("family", sort=True):
        p = points[(points["task"] == v.task) & (points["family"] == family)]
        seeds = c["n_seeds"]
        k = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
        out.append(FigureSpec(
            slug("emergence_training", family, v.task), "emergence_training", v.task,
            str(family),
            "Exact match (solid) and per-token accuracy (dashed) against "
            + " and ".join(X_LABELS[a].split(" (")[0] for a in axes)
            + f": thick lines are means over {k} seeds with 95% CI bands (problems and seeds "
            "resampled); along training, thin lines are single seeds joined checkpoint to "
            "checkpoint. Every point is read at one budget "
            f"(T = {c['budget'].iloc[0]:g}).",
            plot_training_emergence(c, p, axes, v.task, str(family))))
    return out
