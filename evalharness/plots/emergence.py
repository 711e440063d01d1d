"""Figures of emergence across model sizes (EM beside per-token metrics) and over seeds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evalharness.plots.common import (
    STYLE,
    FigureSpec,
    TaskView,
    add_legend,
    figure,
    figure_title,
    finite_or,
    format_params,
    log_params_axis,
    model_colors,
    new_figure,
    params_of,
    slug,
)
from evalharness.scoring.columns import COLUMNS, emergence_columns


@dataclass(frozen=True)
class Panel:
    """One panel of the emergence figure: its title, y label, y limits, and the analysis-derived
    lines it always carries; score columns join a panel by key (`Emergence.panel`)."""

    title: str
    ylabel: str
    ylim: tuple[float, float] | None = None
    derived: tuple[tuple[str, str, str], ...] = ()  # (column, legend label, style)


# by key, in figure order; a column naming another key gets a panel of its own after these
PANELS: dict[str, Panel] = {
    "exact_match": Panel("Exact match", "exact match (share of samples)", (-0.02, 1.02), (
        ("exact_match", "observed", "obs"),
        ("pred_exact_match_ref", "predicted: (per-token acc)^L, answer", "pred"),
        ("pred_exact_match_gold", "predicted: (per-token acc)^L, gold trace", "pred2"),
    )),
    "token_acc": Panel("Per-token accuracy (teacher-forced)",
                       "per-token accuracy (argmax = reference)"),
    "logprob": Panel("Log-prob of the correct answer", "log p(correct answer), nats"),
}


def emergence_panels() -> list[tuple[str, str, list[tuple[str, str, str]], tuple | None]]:
    """(title, y label, [(column, legend label, style)], y limits) per panel of the emergence
    figure: `PANELS` with the registry's columns (registry order) in the panel they name;
    empty panels are left out."""
    lines: dict[str, list[tuple[str, str, str]]] = {k: list(p.derived) for k, p in PANELS.items()}
    extra: dict[str, Panel] = {}
    for name, view in emergence_columns().items():
        if view.panel is None:
            continue
        label = COLUMNS[name].label
        if view.panel not in PANELS and view.panel not in extra:
            extra[view.panel] = Panel(label[:1].upper() + label[1:], label)
            lines[view.panel] = []
        lines[view.panel].append((name, view.line or label, view.style))
    return [(p.title, p.ylabel, lines[k], p.ylim) for k, p in {**PANELS, **extra}.items()
            if lines[k]]


_EM_STYLE = {
    "obs": dict(color="0.2", lw=1.6, ls="-"),
    "obs2": dict(color="tab:blue", lw=1.3, ls="-."),
    "pred": dict(color="tab:red", lw=1.3, ls="--", marker="x", ms=5),
    "pred2": dict(color="tab:orange", lw=1.2, ls=":", marker="+", ms=6),
}


_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def sharpness_of(sharpness: pd.DataFrame | Mapping[str, float] | None) -> dict[str, float]:
    """metric -> sharpness from analysis's ``sharpness`` table (one family/task) or a mapping."""
    if sharpness is None:
        return {}
    if isinstance(sharpness, pd.DataFrame):
        if sharpness.empty:
            return {}
        return {
            str(r["metric"]): finite_or(r["sharpness"], math.nan) for _, r in sharpness.iterrows()
        }
    return {str(k): finite_or(v, math.nan) for k, v in sharpness.items()}


def _size_key(df: pd.DataFrame) -> pd.Series:
    """The size each checkpoint replicates, as its parameter count: seeds of one shape share
    it, and it is the x of the curve (results without a ``size`` column still group)."""
    return df["params"].astype(float).map(lambda p: f"{p:.6g}")


def per_size_means(emergence: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """One row per size (sorted by params): params, the seed count and the mean over its seeds
    of each of `columns` (NaN-skipping). A curve across sizes joins these means; joining the
    checkpoints themselves in params order zigzags between seeds of one size."""
    e = emergence.assign(_size=_size_key(emergence))
    cols = [c for c in columns if c in e]
    g = e.groupby("_size", sort=False)
    out = g[cols].mean() if cols else pd.DataFrame(index=g.size().index)
    out["params"] = g["params"].mean()
    out["n_seeds"] = g.size()
    return out.sort_values("params").rename_axis("size").reset_index()


def plot_emergence(
    emergence: pd.DataFrame,
    sharpness: pd.DataFrame | Mapping[str, float] | None = None,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """The emergence panel: on the same samples, exact match vs parameters (with the prediction
    (per-token accuracy)^L dashed) beside teacher-forced per-token accuracy and the log-prob of
    the correct answer vs parameters (log x). Each line joins the per-size means over seeds;
    with several seeds per size every checkpoint is a dot of its size's colour (one line
    through the checkpoints would zigzag between seeds). Each line's sharpness — the share of
    its total rise that happens in the steepest doubling of parameters, from a monotone fit —
    is in its legend; whether a jump is metric-induced is the Schaeffer test's call.

    `emergence`: analysis ``emergence`` rows of one (family, task), one per checkpoint (params,
    size, em, pred_exact_match_ref, ref_token_acc, ref_logprob_sum, optional gold_* columns, budget).
    `sharpness`: analysis ``sharpness`` rows of the same (family, task), or metric -> share."""
    sh = sharpness_of(sharpness)
    e = emergence[np.isfinite(emergence["params"].astype(float))].sort_values("params")
    panels = emergence_panels()
    cols = [c for _, _, lines, _ in panels for c, _, _ in lines]
    sizes = per_size_means(e, cols)
    seeds = sizes["n_seeds"].to_numpy(int)
    multi = bool(seeds.max(initial=0) > 1)
    with mpl.rc_context(STYLE):
        fig, axes = new_figure(4.5 * len(panels), 4.5, ncols=len(panels))
        params = params_of(e, params)
        colors = model_colors(params)
        # colour encodes size: every seed of a size takes the colour of the size's first seed
        first = e.assign(_size=_size_key(e)).groupby("_size", sort=False)["model"].first()
        size_color = {s: colors[m] for s, m in first.items()}
        x = sizes["params"].to_numpy(dtype=float)
        for ax, (title, ylabel, lines, ylim) in zip(axes, panels, strict=True):
            drawn = False
            for col, lab, kind in lines:
                if col not in e or e[col].notna().sum() < 1:
                    continue
                y = sizes[col].to_numpy(dtype=float)
                s = sh.get(col, math.nan)
                tag = f" — steepest doubling {100 * s:.0f}% of rise" if math.isfinite(s) else ""
                ax.plot(x, y, label=lab + tag, zorder=2, **_EM_STYLE[kind])
                if kind == "obs":
                    ax.scatter(
                        e["params"].to_numpy(float),
                        e[col].to_numpy(float),
                        c=[size_color[k] for k in _size_key(e)],
                        s=46 if not multi else 30,
                        zorder=3,
                        edgecolors="white",
                        linewidths=0.6,
                        label="dots: checkpoints; lines: seed mean per size"
                        if multi and col == "exact_match" else None,
                    )
                    for xi, yi in zip(x, y, strict=True):
                        if math.isfinite(yi) and len(x) <= 6:  # more: crowded; see the ticks
                            ax.annotate(
                                format_params(xi),
                                (xi, yi),
                                xytext=(0, 7),
                                textcoords="offset points",
                                ha="center",
                                fontsize=7,
                                color="0.35",
                            )
                drawn = True
            if not drawn:
                ax.set_visible(False)
                continue
            log_params_axis(ax, x)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            if ylim:
                ax.set_ylim(*ylim)
            else:
                lo, hi = ax.get_ylim()
                ax.set_ylim(lo, hi + 0.06 * (hi - lo))  # room for the size labels
            add_legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.2))
        bud = e["budget"].dropna().unique() if "budget" in e else []
        extra = (
            f" (each model at T={bud[0]:g})"
            if len(bud) == 1
            else " (each model at its largest budget)"
        )
        if multi:
            k = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
            extra += f"; {k} seeds per size"
        fig.suptitle(
            figure_title(
                "Emergence across model size: one set of samples, "
                f"{_WORDS.get(len(panels), len(panels))} metrics",
                family,
                task,
                extra,
            )
        )
    return fig


def plot_seed_emergence(
    seed_curves: pd.DataFrame,
    seed_points: pd.DataFrame | None = None,
    schaeffer: pd.DataFrame | None = None,
    *,
    task: str | None = None,
    family: str | None = None,
) -> Figure:
    """Exact match and the per-token accuracy on informative tokens vs parameters, over seeds:
    each seed a thin line, the seed mean thick with its CI band (seeds and problems
    resampled), and the Schaeffer prediction p^L_eff dashed where the test produced one; left
    on a linear scale, right as error (1 - value) on a log scale, where a smooth power-law
    trend is a straight line. The band is drawn only at sizes with >= 2 seeds: with one seed
    the seed spread is not measured, and the title says so. The legend lists only what is
    drawn.

    `seed_curves` / `seed_points` / `schaeffer`: the analysis tables of one (family, task)."""
    metrics = [m for m in dict.fromkeys(seed_curves["metric"]) if m in ("exact_match",) or
               m.endswith("_acc")][:2]
    style = {0: dict(color="0.15"), 1: dict(color="tab:blue")}
    pred = _schaeffer_prediction(schaeffer)
    with mpl.rc_context(STYLE):
        fig, (lin, log) = new_figure(12.5, 4.6, ncols=2)
        seeds = (seed_curves["n_seeds"].astype(int) if "n_seeds" in seed_curves
                 else pd.Series(1, index=seed_curves.index))
        banded = False
        for i, metric in enumerate(metrics):
            c = seed_curves[seed_curves["metric"] == metric].sort_values("params")
            x = c["params"].to_numpy(float)
            several = (seeds.loc[c.index] >= 2).to_numpy() if len(c) else np.zeros(0, bool)
            label = "exact match" if metric == "exact_match" else f"per-token accuracy ({metric})"
            for ax, err in ((lin, False), (log, True)):
                def tr(v, err=err):
                    v = np.asarray(v, float)
                    return np.clip(1 - v, 1e-4, 1) if err else v

                pts = (seed_points[seed_points["metric"] == metric]
                       if seed_points is not None and not seed_points.empty else None)
                if pts is not None and "model_seed" in pts and several.any():
                    # thin per-seed lines only where there are seeds to tell apart
                    key = pts["model_seed"].astype(str)
                    for _, g in pts.assign(_k=key).groupby("_k"):
                        g = g.sort_values("params")
                        ax.plot(g["params"], tr(g["value"]), lw=0.7, alpha=0.45, **style[i])
                ax.plot(x, tr(c["mean"]), lw=2.2, marker="o", ms=4,
                        label=label + (" (1 − value)" if err else "")
                        + (": seed mean" if several.any() else ": one seed per size"),
                        **style[i])
                if several.any():
                    lo, hi = tr(c["ci_lo"]), tr(c["ci_hi"])
                    lo, hi = np.where(several, lo, np.nan), np.where(several, hi, np.nan)
                    ax.fill_between(x, np.minimum(lo, hi), np.maximum(lo, hi), alpha=0.15, lw=0,
                                    **style[i])
                    banded = True
                if metric == "exact_match" and pred is not None:
                    ax.plot(pred["params"], tr(pred["em_pred"]), ls="--", color="tab:red",
                            lw=1.3, label="predicted EM = p^L_eff (smooth per-token trend)")
        for ax, ylab in ((lin, "value (share)"), (log, "error = 1 − value (log scale)")):
            x = seed_curves["params"].to_numpy(float)
            log_params_axis(ax, x)
            ax.set_ylabel(ylab)
            add_legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.18))
        lin.set_ylim(-0.02, 1.02)
        log.set_yscale("log")
        lin.set_title(_seed_band_note(seeds.to_numpy(int), banded), fontsize=9)
        log.set_title("log-error scale")
        fig.suptitle(figure_title("Emergence over seeds", family, task))
    return fig


def _schaeffer_prediction(schaeffer: pd.DataFrame | None) -> pd.DataFrame | None:
    """The Schaeffer test's predicted EM per size, or None where it made none (an undetermined
    test has no prediction: its column is absent or all NaN after tables are concatenated)."""
    if schaeffer is None or schaeffer.empty or "em_pred" not in schaeffer:
        return None
    s = schaeffer[np.isfinite(schaeffer["em_pred"].astype(float))].sort_values("params")
    return s if len(s) >= 2 else None


def _seed_band_note(seeds: np.ndarray, banded: bool) -> str:
    """What the thin lines and the band are, given the seed counts per size."""
    if not banded:
        return "one seed per size: no band (the seed spread is not measured)"
    if seeds.min(initial=2) >= 2:
        return "linear scale (thin: one seed; band: 95% CI over seeds and problems)"
    return ("linear scale (thin: one seed; band: 95% CI over seeds and problems, "
            "only at sizes with ≥ 2 seeds)")


def seed_line_note(emergence: pd.DataFrame) -> str:
    """Caption words for how the emergence lines treat seeds."""
    seeds = per_size_means(emergence, [])["n_seeds"]
    if seeds.max() < 2:
        return " One checkpoint per size."
    k = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    return (f" Lines join the per-size means over {k} seeds; dots are the single checkpoints "
            "(seeds), coloured by size.")


@figure("emergence_seeds", order=50)
def seed_figures(v: TaskView) -> list[FigureSpec]:
    """The over-seeds emergence figure per family of one task (>= 2 sizes)."""
    a, task = v.analysis, v.task
    sc = getattr(a, "seed_curves", pd.DataFrame())
    if sc.empty:
        return []
    out = []
    for family, g in sc[sc["task"] == task].groupby("family", sort=True):
        if g["size"].nunique() < 2:
            continue
        pts, sch = (getattr(a, n, pd.DataFrame()) for n in ("seed_points", "schaeffer"))
        pts = pts[(pts["task"] == task) & (pts["family"] == family)] if not pts.empty else None
        sch = sch[(sch["task"] == task) & (sch["family"] == family)] if not sch.empty else None
        seeds = g["n_seeds"].astype(int) if "n_seeds" in g else pd.Series([1])
        if seeds.max() >= 2:
            what = ("thin lines one seed each, thick the seed mean with its 95% CI band (seeds "
                    "within a size and problems resampled"
                    + ("" if seeds.min() >= 2 else "; band only at sizes with ≥ 2 seeds") + ")")
        else:
            what = ("one seed per size, so no band: the seed-to-seed spread is not measured and "
                    "a dip or jump may be one checkpoint's")
        pred = ("; dashed red: EM predicted as p^L_eff from the smooth per-token trend "
                "(Schaeffer test)" if _schaeffer_prediction(sch) is not None
                else "; no p^L_eff prediction (the Schaeffer test is undetermined here)")
        out.append(FigureSpec(
            slug("emergence_seeds", family, task), "emergence_seeds", task, str(family),
            "Exact match and per-token accuracy on the informative gold tokens vs parameters: "
            f"{what}{pred}. Right: the same as error on a log scale.",
            plot_seed_emergence(g, pts, sch, task=task, family=str(family)),
        ))
    return out


@figure("emergence", order=40)
def emergence_figures(v: TaskView) -> list[FigureSpec]:
    """The emergence panel per family of the task with >= 2 sizes."""
    a, task = v.analysis, v.task
    em = a.emergence[a.emergence["task"] == task] if not a.emergence.empty else a.emergence
    specs: list[FigureSpec] = []
    for family, g in em.groupby("family", sort=True) if not em.empty else []:
        if g["params"].dropna().nunique() < 2:
            continue
        sh = a.sharpness
        if not sh.empty:
            sh = sh[(sh["task"] == task) & (sh["family"] == family)]
        specs.append(FigureSpec(
            slug("emergence", family, task), "emergence", task, str(family),
            "Emergence panel: exact match vs parameters beside teacher-forced per-token "
            "accuracy and log-prob of the correct answer, on the same samples; sharpness "
            "= share of the total rise in the steepest doubling of parameters."
            + seed_line_note(g),
            plot_emergence(g, sh, task=task, family=str(family), params=v.params),
        ))
    return specs
