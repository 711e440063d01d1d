"""Figures: one pure function per figure (DataFrames in, ``matplotlib.figure.Figure`` out).

The figure functions take the tables of :class:`evalharness.analysis.Analysis` (``budgets``,
``fits``, ``coverage``, ``coverage_fits``, ``emergence``, ``sharpness``, ``compute``) filtered to
one task (and one family for the emergence panel). Figures are built on
``matplotlib.figure.Figure`` directly: no pyplot, no global state, no backend switch; saving uses
the Agg canvas. :func:`make_plots` reads ``results/`` through ``scoring.load_scores`` and
``analysis.analyze`` and writes PNG + SVG; figures that do not apply are skipped (no n > 1
samples: no pass@k figure; fewer than two model sizes: no emergence panel).

Colour encodes model size everywhere: a sequential colormap ordered by parameter count (light =
small, dark = large), so one model has one colour across the figures of a report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

CMAP = "viridis"
_CMAP_RANGE = (0.82, 0.05)  # small models light (but no yellow on white), large models dark
FIGURE_FORMATS = ("png", "svg")
DPI = 130

_STYLE = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "figure.titlesize": 11.5,
    "legend.fontsize": 8.5,
    "legend.title_fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "svg.fonttype": "none",  # text stays text in SVG: smaller, searchable
    "svg.hashsalt": "evalharness",  # stable ids: same data, same file
}


# ----------------------------------------------------------------------------- helpers


# analysis labels a model's sampled (best-of-N) runs "<model> (n=8, temp=0.7)"
_SAMPLED = re.compile(r"^(.*) \((n=\d+, temp=[^)]*)\)$")


def split_model(name: str) -> tuple[str, str]:
    """``"m (n=8, temp=0.7)"`` -> ``("m", "n=8, temp=0.7")``; a plain name -> ``(name, "")``."""
    found = _SAMPLED.match(str(name))
    return (found.group(1), found.group(2)) if found else (str(name), "")


def model_colors(params: Mapping[str, float]) -> dict[str, tuple[float, float, float, float]]:
    """One colour per model from a sequential colormap, ordered by parameter count (unknown
    counts last, ties by name). Rank-based, so neighbouring sizes stay distinguishable. A
    model's sampled runs ("m (n=8, temp=0.7)") share the model's colour."""
    bases: dict[str, float] = {}
    for m, p in params.items():
        b = split_model(m)[0]
        bases[b] = min(bases.get(b, math.inf), _finite_or(p, math.inf))
    order = _model_order(bases)
    cmap = mpl.colormaps[CMAP]
    lo, hi = _CMAP_RANGE
    n = max(len(order) - 1, 1)
    base = {b: cmap(hi if len(order) == 1 else lo + (hi - lo) * i / n) for i, b in enumerate(order)}
    return {m: base[split_model(m)[0]] for m in params}


def family_name(models: Iterable[str]) -> str:
    """A short name for a set of models: their common prefix cut at a separator
    (``arith-h16, arith-h128`` -> ``arith``; ``Qwen/Qwen3-0.6B, Qwen/Qwen3-8B`` -> ``Qwen/Qwen3``)."""
    names = sorted({str(m) for m in models})
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind(c) for c in "-_/. ")
    prefix = (prefix[:cut] if cut > 0 else prefix).rstrip("-_/. ")
    return prefix if len(prefix) >= 2 else f"{len(names)} models"


def format_params(p: float | None) -> str:
    """``21000`` -> ``21k``, ``1.5e9`` -> ``1.5B``."""
    p = _finite_or(p, math.nan)
    if not math.isfinite(p):
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if p >= div:
            return f"{p / div:.3g}{suffix}"
    return f"{p:.0f}"


def _finite_or(x, default):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def _params_of(df: pd.DataFrame, given: Mapping[str, float] | None = None) -> dict[str, float]:
    """model -> params for the models in `df`: from `given` (a report-wide mapping, so colours
    agree across figures) where it has the model, else from df's ``params`` column."""
    if df.empty:
        return {}
    if given:
        own = _params_of(df)
        return {m: _finite_or(given.get(m), own.get(m, math.nan)) for m in own}
    if "params" not in df:
        return {str(m): math.nan for m in df["model"].unique()}
    first = df.groupby("model", sort=False)["params"].first()
    return {str(m): _finite_or(p, math.nan) for m, p in first.items()}


def _model_order(params: Mapping[str, float]) -> list[str]:
    return sorted(params, key=lambda m: (_finite_or(params[m], math.inf), m))


def _label(model: str, params: Mapping[str, float]) -> str:
    """``"m (n=8, temp=0.7)"`` with 16k params -> ``"m (16k), n=8, temp=0.7"``."""
    base, cfg = split_model(model)
    p = params.get(model, math.nan)
    out = f"{base} ({format_params(p)})" if math.isfinite(p) else base
    return f"{out}, {cfg}" if cfg else out


def _f2(v: float) -> str:
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def _curves(df: pd.DataFrame, min_budgets: int = 2) -> pd.DataFrame:
    """Rows of the models that have a curve (>= `min_budgets` budgets); all rows if none has.
    A best-of-N run at a single budget is a point for the pass@k figure, not a curve."""
    counts = df.groupby("model")["budget"].nunique()
    keep = counts[counts >= min_budgets].index
    return df[df["model"].isin(keep)] if len(keep) else df


def _title(kind: str, family: str | None, task: str | None, extra: str = "") -> str:
    bits = [b for b in (f"{family} family" if family else "", f"task {task}" if task else "") if b]
    return kind + (" — " + " · ".join(bits) if bits else "") + extra


def _parse_budgets(v) -> list[float]:
    """Fit budgets as stored by analysis (``"8 16 32"``) or as a sequence."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, str):
        return [float(t) for t in v.replace(",", " ").split()]
    if isinstance(v, Sequence | np.ndarray):
        return [float(t) for t in v]
    return [float(v)]


class _BudgetAxis:
    """x = log2(T) for T > 0; T = 0 sits 1.5 doublings left of the smallest positive budget,
    behind a dotted break line, with its own tick "0"."""

    def __init__(self, budgets: Iterable[float]):
        b = sorted({float(t) for t in budgets if np.isfinite(t) and t >= 0})
        pos = [t for t in b if t > 0]
        self.budgets = b
        self.has_zero = bool(b) and b[0] == 0
        self.zero_x = (math.log2(pos[0]) if pos else 0.0) - 1.5

    def x(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return np.where(t > 0, np.log2(np.where(t > 0, t, 1.0)), self.zero_x)

    def apply(self, ax, label: str = "thinking budget T (tokens, log₂ scale)") -> None:
        ticks = self.budgets
        pos = [t for t in ticks if t > 0]
        if len(pos) > 10:  # thin out evenly, keep 0 and the largest budget
            step = math.ceil(len(pos) / 9)
            keep = pos[::step] + ([pos[-1]] if (len(pos) - 1) % step else [])
            ticks = ([0.0] if self.has_zero else []) + keep
        ax.set_xticks(self.x(ticks))
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
        ax.set_xlabel(label)
        if self.has_zero and pos:
            ax.axvline(self.zero_x + 0.75, color="0.6", lw=0.8, ls=(0, (1, 2)), zorder=0)
        if self.budgets:
            lo, hi = float(self.x(self.budgets[0])), float(self.x(self.budgets[-1]))
            ax.set_xlim(lo - 0.35, hi + 0.35)


def _new_figure(w: float, h: float, ncols: int = 1, **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kw)[0]
    return fig, axes


def _legend(ax, **kw) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(frameon=False, **kw)


def _log_x(ax, formatter, lo: float, hi: float) -> None:
    """Log x axis over [lo, hi] with readable ticks: 1-2-5 ticks when the range spans fewer
    than three decades (one decade tick alone says little), powers of ten otherwise."""
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    subs = (1.0, 2.0, 5.0) if hi / lo < 1e3 else (1.0,)
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(formatter))
    ax.xaxis.set_minor_locator(mpl.ticker.LogLocator(base=10, subs="auto"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def _log_params_axis(ax, x: np.ndarray) -> None:
    x = x[np.isfinite(x) & (x > 0)]
    _log_x(ax, lambda v, _: format_params(v), float(x.min()) / 1.3, float(x.max()) * 1.3)
    ax.set_xlabel("parameters (log scale)")


def _sci(v: float, _=None) -> str:
    """``2e+06`` -> ``2×10⁶`` (tick labels)."""
    if v <= 0:
        return ""
    exp = int(math.floor(math.log10(v) + 1e-9))
    mant = v / 10**exp
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"10{sup}" if abs(mant - 1) < 1e-6 else f"{mant:.0f}×10{sup}"


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
    budgets = _curves(budgets)
    with mpl.rc_context(_STYLE):
        n_models = budgets["model"].nunique()
        fig, (ax,) = _new_figure(8.4, max(4.6, 1.3 + 0.36 * n_models))  # room for the legend
        params = _params_of(budgets, params)
        colors = model_colors(params)
        bax = _BudgetAxis(budgets["budget"])
        handles = []
        for m in _model_order(params):
            g = budgets[budgets["model"] == m].sort_values("budget")
            x = bax.x(g["budget"])
            sampled = bool(split_model(m)[1])
            (h,) = ax.plot(
                x, g["accuracy"], marker="s" if sampled else "o", ms=4, lw=1.1 if sampled else 1.6,
                color=colors[m], label=_label(m, params),
            )  # fmt: skip
            handles.append(h)
            if {"acc_lo", "acc_hi"} <= set(g.columns):
                ax.fill_between(x, g["acc_lo"], g["acc_hi"], color=colors[m], alpha=0.14, lw=0)
            fit = _fit_row(fits, m)
            why = _no_fit_reason(fits, m) if fit is None else None
            if why:
                handles.append(Line2D([], [], ls="none", label=f"   {why}" if why.startswith("no fit") else f"   no fit: {why}"))
            if fit is not None:
                tb = [t for t in _parse_budgets(fit.get("budgets")) if t > 0]
                if len(tb) >= 2:
                    tt = np.geomspace(min(tb), max(tb), 50)
                    yy = float(fit["a"]) + float(fit["b"]) * np.log2(tt)
                    (h,) = ax.plot(
                        np.log2(tt), yy, ls="--", lw=1.4, color=colors[m], label=_fit_label(fit)
                    )
                    handles.append(h)
        bax.apply(ax)
        ax.set_ylabel("accuracy (exact match, share of problems)")
        ax.set_ylim(-0.02, 1.02)
        fig.suptitle(_title("Accuracy vs thinking budget", family, task))
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
    if rows.empty or not math.isfinite(_finite_or(rows.iloc[0].get("b"), math.nan)):
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
    blo, bhi = _finite_or(fit.get("b_lo"), None), _finite_or(fit.get("b_hi"), None)
    if blo is not None and bhi is not None:
        s += f" [{100 * blo:+.1f}, {100 * bhi:+.1f}]"
    r2 = _finite_or(fit.get("r2"), None)
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
    budgets = _curves(budgets)
    with mpl.rc_context(_STYLE):
        fig, (ax,) = _new_figure(8.4, max(4.6, 1.6 + 0.2 * budgets["model"].nunique()))
        params = _params_of(budgets, params)
        colors = model_colors(params)
        bax = _BudgetAxis(budgets["budget"])
        pos = [t for t in bax.budgets if t > 0]
        # p10-p90 bands of many models overlap into a grey mass: bands for up to 4 models
        band = {"think_p10", "think_p90"} <= set(budgets.columns) and len(params) <= 4
        if pos:
            tt = np.geomspace(pos[0], pos[-1], 60)
            ax.plot(np.log2(tt), tt, color="0.35", lw=1, ls=":", label="y = x (whole budget)")
        for m in _model_order(params):
            g = budgets[budgets["model"] == m].sort_values("budget")
            x = bax.x(g["budget"])
            ax.plot(
                x,
                g["think_mean"],
                marker="o",
                ms=4,
                lw=1.6,
                color=colors[m],
                label=_label(m, params),
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
        fig.suptitle(_title("Thinking tokens used vs budget", family, task))
        _legend(
            ax,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title="model: mean" + (", band p10–p90" if band else ""),
        )
    return fig


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
        k, d, v = (_finite_or(r[c], math.nan) for c in (num, den, col))
        if not (math.isfinite(k) and math.isfinite(d) and math.isfinite(v)) or d <= 0:
            continue
        failure = col != "forced_rate"  # the forced share itself is no failure
        text = f"{k:.0f}/{d:.0f}"
        if (d < _FEW_RECORDS or (failure and v > 0)) and (xi, round(v, 3), text) not in seen:
            seen.add((xi, round(v, 3), text))
            ax.annotate(text, (xi, v), xytext=(3, 4), textcoords="offset points",
                        fontsize=6, color=color, ha="left", va="bottom")  # fmt: skip
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
    with mpl.rc_context(_STYLE):
        fig, axes = _new_figure(3.3 * len(_CONTROL_PANELS), 3.9, ncols=len(_CONTROL_PANELS),
                                sharey=True)  # fmt: skip
        params = _params_of(diagnostics, params)
        colors = model_colors(params)
        bax = _BudgetAxis(diagnostics["budget"])
        handles, counted, seen = [], 0, {}
        for m in _model_order(params):
            g = diagnostics[diagnostics["model"] == m].sort_values("budget")
            st = dict(color=colors[m], marker="o", ms=4, lw=1.6)
            for ax, (col, _) in zip(axes, _CONTROL_PANELS, strict=True):
                ax.plot(bax.x(g["budget"]), g[col].astype(float), label=_label(m, params), **st)
                counted += _count_labels(ax, bax.x(g["budget"]), g, col, colors[m],
                                         seen.setdefault(col, set()))  # fmt: skip
            handles.append(Line2D([], [], label=_label(m, params), **st))
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
        fig.suptitle(_title("Budget control: did forcing the end of thinking bite?", family, task))
        fig.legend(handles=handles, loc="outside lower center", frameon=False,
                   ncols=min(4, len(handles)))
    return fig


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
    with mpl.rc_context(_STYLE):
        n_curves = len(coverage.groupby(["model", "budget"]))
        rows = math.ceil((n_curves + 1) / 2)  # legend below the panels, two columns
        fig, axes = _new_figure(4.1 * len(panels), 4.0 + 0.2 * rows, ncols=len(panels), sharey=True)
        params = _params_of(coverage, params)
        colors = model_colors(params)
        budgets = sorted(coverage["budget"].unique())
        styles, markers = ["-", "-.", ":", (0, (5, 1.5))], ["o", "s", "^", "D"]
        kmax = float(coverage["k"].max())
        handles, any_fit = [], False
        for m in _model_order(params):
            for j, t in enumerate(budgets):
                g = coverage[(coverage["model"] == m) & (coverage["budget"] == t)]
                g = g.sort_values("k")
                if g.empty:
                    continue
                lab = _label(m, params) + (f", T={t:g}" if len(budgets) > 1 else "")
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
                    lab += f"  (c={_f2(c)}, β={_f2(beta)})"
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
        fig.suptitle(_title("Repeated sampling: accuracy vs number of samples k", family, task, at))
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
        )  # fmt: skip
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
        math.isfinite(_finite_or(r.get("c"), math.nan))
        and math.isfinite(_finite_or(r.get("beta"), math.nan))
    ):
        return None
    return r


# (panel title, y label, [(column, legend label, style)], y limits)
_EMERGENCE_PANELS = (
    (
        "Exact match",
        "exact match (share of samples)",
        [
            ("em", "observed", "obs"),
            ("pred_em_ref", "predicted: (per-token acc)^L, answer", "pred"),
            ("pred_em_gold", "predicted: (per-token acc)^L, gold trace", "pred2"),
        ],
        (-0.02, 1.02),
    ),
    (
        "Per-token accuracy (teacher-forced)",
        "per-token accuracy (argmax = reference)",
        [
            ("ref_token_acc", "reference answer tokens", "obs"),
            ("gold_token_acc", "gold trace tokens (thinking + answer)", "obs2"),
        ],
        None,
    ),
    (
        "Log-prob of the correct answer",
        "log p(correct answer), nats",
        [
            ("ref_logprob_sum", "log p(answer) = Σ token log-probs", "obs"),
        ],
        None,
    ),
)
_EM_STYLE = {
    "obs": dict(color="0.2", lw=1.6, ls="-"),
    "obs2": dict(color="tab:blue", lw=1.3, ls="-."),
    "pred": dict(color="tab:red", lw=1.3, ls="--", marker="x", ms=5),
    "pred2": dict(color="tab:orange", lw=1.2, ls=":", marker="+", ms=6),
}


def sharpness_of(sharpness: pd.DataFrame | Mapping[str, float] | None) -> dict[str, float]:
    """metric -> sharpness from analysis's ``sharpness`` table (one family/task) or a mapping."""
    if sharpness is None:
        return {}
    if isinstance(sharpness, pd.DataFrame):
        if sharpness.empty:
            return {}
        return {
            str(r["metric"]): _finite_or(r["sharpness"], math.nan) for _, r in sharpness.iterrows()
        }
    return {str(k): _finite_or(v, math.nan) for k, v in sharpness.items()}


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
    size, em, pred_em_ref, ref_token_acc, ref_logprob_sum, optional gold_* columns, budget).
    `sharpness`: analysis ``sharpness`` rows of the same (family, task), or metric -> share."""
    sh = sharpness_of(sharpness)
    e = emergence[np.isfinite(emergence["params"].astype(float))].sort_values("params")
    cols = [c for _, _, lines, _ in _EMERGENCE_PANELS for c, _, _ in lines]
    sizes = per_size_means(e, cols)
    seeds = sizes["n_seeds"].to_numpy(int)
    multi = bool(seeds.max(initial=0) > 1)
    with mpl.rc_context(_STYLE):
        fig, axes = _new_figure(13.5, 4.5, ncols=3)
        params = _params_of(e, params)
        colors = model_colors(params)
        # colour encodes size: every seed of a size takes the colour of the size's first seed
        first = e.assign(_size=_size_key(e)).groupby("_size", sort=False)["model"].first()
        size_color = {s: colors[m] for s, m in first.items()}
        x = sizes["params"].to_numpy(dtype=float)
        for ax, (title, ylabel, lines, ylim) in zip(axes, _EMERGENCE_PANELS, strict=True):
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
                        if multi and col == "em" else None,
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
            _log_params_axis(ax, x)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            if ylim:
                ax.set_ylim(*ylim)
            else:
                lo, hi = ax.get_ylim()
                ax.set_ylim(lo, hi + 0.06 * (hi - lo))  # room for the size labels
            _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.2))
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
            _title(
                "Emergence across model size: one set of samples, three metrics",
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
    metrics = [m for m in dict.fromkeys(seed_curves["metric"]) if m in ("em",) or
               m.endswith("_acc")][:2]  # fmt: skip
    style = {0: dict(color="0.15"), 1: dict(color="tab:blue")}
    pred = _schaeffer_prediction(schaeffer)
    with mpl.rc_context(_STYLE):
        fig, (lin, log) = _new_figure(12.5, 4.6, ncols=2)
        seeds = (seed_curves["n_seeds"].astype(int) if "n_seeds" in seed_curves
                 else pd.Series(1, index=seed_curves.index))  # fmt: skip
        banded = False
        for i, metric in enumerate(metrics):
            c = seed_curves[seed_curves["metric"] == metric].sort_values("params")
            x = c["params"].to_numpy(float)
            several = (seeds.loc[c.index] >= 2).to_numpy() if len(c) else np.zeros(0, bool)
            label = "exact match" if metric == "em" else f"per-token accuracy ({metric})"
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
                        **style[i])  # fmt: skip
                if several.any():
                    lo, hi = tr(c["ci_lo"]), tr(c["ci_hi"])
                    lo, hi = np.where(several, lo, np.nan), np.where(several, hi, np.nan)
                    ax.fill_between(x, np.minimum(lo, hi), np.maximum(lo, hi), alpha=0.15, lw=0,
                                    **style[i])  # fmt: skip
                    banded = True
                if metric == "em" and pred is not None:
                    ax.plot(pred["params"], tr(pred["em_pred"]), ls="--", color="tab:red",
                            lw=1.3, label="predicted EM = p^L_eff (smooth per-token trend)")  # fmt: skip
        for ax, ylab in ((lin, "value (share)"), (log, "error = 1 − value (log scale)")):
            x = seed_curves["params"].to_numpy(float)
            _log_params_axis(ax, x)
            ax.set_ylabel(ylab)
            _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.18))
        lin.set_ylim(-0.02, 1.02)
        log.set_yscale("log")
        lin.set_title(_seed_band_note(seeds.to_numpy(int), banded), fontsize=9)
        log.set_title("log-error scale")
        fig.suptitle(_title("Emergence over seeds", family, task))
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
            "only at sizes with ≥ 2 seeds)")  # fmt: skip


def _flops_rule_parts(rules: Iterable[str]) -> tuple[str, str]:
    """(formula, definitions) of the FLOPs rule(s) of `evalharness.flops` in `rules`."""
    from evalharness.flops import RULE_ATTENTION, RULE_FALLBACK

    rules = {str(r) for r in rules if isinstance(r, str)} or {RULE_FALLBACK}
    kaplan = "n × (2·N_non-emb·L + n_layers·d_attn·L(L+1))"
    dense = "n × 2·params·L"
    where = "L = prompt + generated tokens of a sample (mean over samples)"
    terms = "N_non-emb: non-embedding parameters; d_attn: heads × head_dim (Kaplan)"
    if rules == {RULE_ATTENTION}:
        return kaplan, f"{where}; {terms}"
    if RULE_ATTENTION in rules:
        return (f"{kaplan}, or {dense} without a model config",
                f"{where}; {terms}; params: all parameters")  # fmt: skip
    return dense, f"{where}; params: all parameters (no model config: attention term not counted)"


def flops_axis_label(rules: Iterable[str]) -> str:
    """The x label of a FLOPs axis, stating the rule the numbers use (`evalharness.flops`):
    the attention-aware Kaplan count where the model's config is known, 2·params·L where not."""
    return f"inference FLOPs per problem = {_flops_rule_parts(rules)[0]} (log scale)"


def flops_rule_note(rules: Iterable[str]) -> str:
    """What the symbols of `flops_axis_label` stand for."""
    return _flops_rule_parts(rules)[1]


def _problem_sets(compute: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(description, rows) per problem set of the compute table, largest set first: points
    are compared, and the frontier drawn, only within one set (analysis pairs them there)."""
    if "problem_set" not in compute or compute["problem_set"].isna().all():
        return [("", compute)]
    size = compute.groupby("problem_set")["problems"].max() if "problems" in compute else None
    names = list(dict.fromkeys(compute["problem_set"].dropna()))
    if size is not None:
        names.sort(key=lambda s: (-_finite_or(size.get(s), 0), str(s)))
    return [(str(s), compute[compute["problem_set"] == s]) for s in names]


def _size_groups(params: Mapping[str, float]) -> dict[str, list[str]]:
    """Base model names grouped by size (parameter count): the seeds of one size are one
    legend entry, so a zoo of 11 sizes × 3 seeds needs 11 entries, not 33."""
    groups: dict[str, list[str]] = {}
    for m in _model_order(params):
        b = split_model(m)[0]
        key = f"{params[m]:.6g}" if math.isfinite(params[m]) else b
        if b not in groups.setdefault(key, []):
            groups[key].append(b)
    return groups


def _size_label(names: list[str], p: float) -> str:
    name = names[0] if len(names) == 1 else family_name(names)
    out = f"{name} ({format_params(p)})" if math.isfinite(p) else name
    return out if len(names) == 1 else f"{out}, {len(names)} seeds"


def plot_flops_frontier(
    compute: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Accuracy vs inference compute per problem (log x; the axis label states the FLOPs rule
    of `evalharness.flops` the numbers use): every (model, budget, n) point coloured by size
    (marker shape: n), the Pareto frontier as a step line, its points circled and each run of
    frontier points of one model labelled "model T=…" — which size and which budget buy the
    most accuracy at each compute level. One panel per problem set (``problem_set``): points
    run on different problems are never compared, and a panel names its set. The legend has
    one entry per size (seeds of a size share its colour and entry), every size listed.

    `compute`: analysis ``compute`` rows of one task (model, budget, n, params, flops,
    accuracy, on_frontier, problem_set, problems, flops_rule)."""
    pts_all = compute[np.isfinite(compute["flops"].astype(float)) & (compute["flops"] > 0)]
    sets = [(d, s) for d, s in _problem_sets(pts_all) if not s.empty]
    rules = pts_all["flops_rule"] if "flops_rule" in pts_all else []
    with mpl.rc_context(_STYLE):
        params = _params_of(pts_all, params)
        colors = model_colors(params)
        groups = _size_groups(params)
        ns = sorted(pts_all["n"].unique()) if "n" in pts_all else [1]
        n_entries = len(groups) + 1 + (len(ns) if len(ns) > 1 else 0)
        ncols = 1 if n_entries <= 18 else 2
        height = max(5.0, 1.4 + 0.19 * math.ceil(n_entries / ncols))
        fig, axes = _new_figure(6.2 * len(sets) + 2.6 * ncols, height, ncols=len(sets),
                                sharey=True)  # fmt: skip
        shapes = ["o", "s", "^", "D", "v", "P", "X", "h", "*", "<", ">", "p"]
        markers = {n: shapes[i % len(shapes)] for i, n in enumerate(ns)}
        fx_all = pts_all["flops"].to_numpy(float)
        # one colour per size: every seed takes the colour of its size's first checkpoint
        size_color = {b: colors[next(m for m in params if split_model(m)[0] == g[0])]
                      for g in groups.values() for b in g}  # fmt: skip
        handles = []
        for key, names in groups.items():
            p = _finite_or(key, math.nan)
            handles.append(Line2D([], [], ls="none", marker="o", ms=6, color=size_color[names[0]],
                                  label=_size_label(names, p)))  # fmt: skip
        for ax, (desc, pts) in zip(axes, sets, strict=True):
            for m in _model_order(params):
                for nval in ns:
                    g = pts[pts["model"] == m]
                    if "n" in g:
                        g = g[g["n"] == nval]
                    if g.empty:
                        continue
                    ax.scatter(g["flops"], g["accuracy"], color=size_color[split_model(m)[0]],
                               marker=markers[nval], s=32, alpha=0.9, edgecolors="white",
                               linewidths=0.5, zorder=2)  # fmt: skip
            _log_x(ax, _sci, float(fx_all.min()) / 1.4, float(fx_all.max()) * 1.4)
            ax.set_ylim(-0.02, 1.06)
            front = _frontier(pts)
            if not front.empty:
                fx, fy = front["flops"].to_numpy(float), front["accuracy"].to_numpy(float)
                ax.step(np.r_[fx, float(pts["flops"].max())], np.r_[fy, fy[-1]], where="post",
                        color="crimson", lw=1.6, alpha=0.8, zorder=1, label="Pareto frontier")  # fmt: skip
                ax.scatter(fx, fy, s=95, facecolors="none", edgecolors="crimson", lw=1.3,
                           zorder=3)  # fmt: skip
                _label_frontier(ax, front, multi_n=len(ns) > 1)
            if len(sets) > 1:
                ax.set_title(f"on {desc}", fontsize=9)
            ax.set_xlabel(flops_axis_label(rules), fontsize=8.5)
        handles.append(Line2D([], [], color="crimson", lw=1.6, label="Pareto frontier"))
        if len(ns) > 1:
            handles += [Line2D([], [], ls="none", marker=markers[nval], color="0.4",
                               label=f"n = {nval:g}") for nval in ns]  # fmt: skip
        axes[0].set_ylabel(
            "accuracy (majority vote of n samples)" if len(ns) > 1 else "accuracy (exact match)"
        )
        only = sets[0][0] if len(sets) == 1 else ""
        extra = f" — on {only}" if only and not only.startswith("all ") else ""
        fig.suptitle(_title("Accuracy vs inference compute", family, task, extra))
        fig.supxlabel(flops_rule_note(rules), fontsize=7.5, color="0.3")
        fig.legend(handles=handles, loc="outside right center", frameon=False, ncols=ncols,
                   title="size (colour; seeds share it)" if any(len(g) > 1 for g in
                   groups.values()) else "model")  # fmt: skip
    return fig


def _frontier(pts: pd.DataFrame) -> pd.DataFrame:
    if "on_frontier" in pts:
        f = pts[pts["on_frontier"].astype(bool)]
    else:  # compute it: strictly better accuracy than every cheaper point
        s = pts.sort_values(["flops", "accuracy"], ascending=[True, False])
        best = s["accuracy"].cummax().shift(fill_value=-math.inf)
        f = s[s["accuracy"] > best]
    return f.sort_values("flops")


def _runs(front: pd.DataFrame) -> list[pd.DataFrame]:
    """Split the frontier (sorted by compute) into runs of consecutive points that one label
    can name: one model's single samples over budgets, or one (model, budget) over n."""
    key = front["model"].astype(str)
    if "n" in front:
        key = key + "|" + np.where(front["n"] > 1, "T" + front["budget"].astype(str), "n1")
    run = (key != key.shift()).cumsum()
    return [g for _, g in front.groupby(run, sort=True)]


def _label_frontier(ax, front: pd.DataFrame, multi_n: bool) -> None:
    """One label per run of frontier points, placed at the first free spot around its first
    point (no overlap with other labels or frontier points); dropped if there is none (the
    report's frontier table lists every point)."""
    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # run the layout so that pixel positions are (nearly) final
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    pts = ax.transData.transform(front[["flops", "accuracy"]].to_numpy(float))
    taken = [mpl.transforms.Bbox.from_bounds(x - 5, y - 5, 10, 10) for x, y in pts]
    spots = [((-7, 6), "right", "bottom"), ((7, -6), "left", "top"),
             ((-7, -6), "right", "top"), ((7, 6), "left", "bottom"),
             ((7, 16), "left", "bottom"), ((-7, 16), "right", "bottom")]  # fmt: skip
    for grp in _runs(front):
        r0, r1 = grp.iloc[0], grp.iloc[-1]
        text = str(r0["model"])
        b0, b1 = r0["budget"], r1["budget"]
        text += f" T={b0:g}" if b0 == b1 else f" T={b0:g}…{b1:g}"
        if multi_n:
            n0, n1 = r0["n"], r1["n"]
            text += f" n={n0:g}" if n0 == n1 else f" n={n0:g}…{n1:g}"
        for offset, ha, va in spots:
            ann = ax.annotate(
                text, (r0["flops"], r0["accuracy"]), xytext=offset, textcoords="offset points",
                ha=ha, va=va, fontsize=7.5, color="0.1", zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
            )  # fmt: skip
            ann.set_in_layout(False)  # a label must not make the layout shrink the axes
            bb = ann.get_window_extent(renderer)
            inside = (
                bb.x0 >= box.x0 - 30
                and bb.x1 <= box.x1 + 5
                and box.y0 <= bb.y0
                and bb.y1 <= box.y1 + 5
            )
            if inside and not any(bb.overlaps(t) for t in taken):
                taken.append(bb)
                break
            ann.remove()


def _logistic_surface(fit, log2_n: np.ndarray, log2_x: np.ndarray) -> np.ndarray:
    """Fitted accuracy of an analysis ``exchange`` row on a grid (centred coordinates)."""
    u, v = log2_n - float(fit["at_log2_params"]), log2_x - float(fit["at_log2_x"])
    d = _finite_or(fit.get("d"), 0.0)
    logit = float(fit["a"]) + float(fit["b"]) * u + float(fit["c"]) * v + d * u * v
    return 1 / (1 + np.exp(-logit))


def fit_region(fit: Mapping, points: pd.DataFrame | None = None) -> np.ndarray | None:
    """The polygon (log2 T, log2 N vertices) over which a surface fit read data: per size the
    range of levels it used, joined size to size; the measured boundary cells are its corners,
    so no cell the fit left out (past a model's plateau, or never run) lies inside it at a
    measured size. From the fit's ``cells`` ("params@level ..."); for an older table without
    it, from `points` cut at each model's plateau as the fit does. None with < 2 sizes."""
    cells = fit.get("cells") if hasattr(fit, "get") else None
    if isinstance(cells, str) and cells.strip():
        pairs = [c.split("@") for c in cells.split()]
        used = pd.DataFrame({"params": [float(p) for p, _ in pairs],
                             "level": [float(lv) for _, lv in pairs]})  # fmt: skip
    elif points is not None and not points.empty:
        from evalharness.analysis.buy import plateau_cut

        curves = points.assign(level=points["budget"].astype(float), y=points["accuracy"])
        used = pd.concat([plateau_cut(g) for _, g in curves.groupby("model", sort=True)])
    else:
        return None
    used = used[(used["params"] > 0) & (used["level"] > 0)]
    per = used.groupby("params")["level"].agg(["min", "max"]).sort_index()
    if len(per) < 2:
        return None
    y = np.log2(per.index.to_numpy(float))
    lo, hi = np.log2(per["min"].to_numpy(float)), np.log2(per["max"].to_numpy(float))
    return np.column_stack([np.r_[lo, hi[::-1]], np.r_[y, y[::-1]]])


def plot_iso_accuracy(
    fit: Mapping,
    points: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    levels: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9),
) -> Figure:
    """Iso-accuracy contours of the fitted surface logit(acc) = a + b·log₂N + c·log₂T over
    (thinking budget, parameters), drawn only inside the region the fit read data from
    (`fit_region`, outlined), with the measured (model, budget) points coloured by their
    accuracy on the same scale; measured points the fit left out (past a model's plateau) are
    hollow. Along a contour, one doubling of T trades for c/b doublings of N; the title gives
    that rate with its CI, or why it is not identifiable.

    `fit`: one analysis ``exchange`` row (axis "budget", with ``cells``); `points`: rows with
    model, params, budget and accuracy (analysis ``budgets`` of the family's greedy sweeps)."""
    from matplotlib.path import Path as MplPath

    with mpl.rc_context(_STYLE):
        fig, (ax,) = _new_figure(8.4, 5.0)
        pts = points[(points["budget"] > 0) & np.isfinite(points["params"].astype(float))]
        x = np.log2(pts["budget"].to_numpy(float))
        y = np.log2(pts["params"].to_numpy(float))
        gx = np.linspace(x.min() - 0.3, x.max() + 0.3, 160)
        gy = np.linspace(y.min() - 0.3, y.max() + 0.3, 160)
        mx, my = np.meshgrid(gx, gy)
        norm = mpl.colors.Normalize(0, 1)
        cmap = mpl.colormaps["RdYlBu"]
        region = fit_region(fit, pts)
        inside = np.ones(len(pts), bool)
        if region is not None:
            path = MplPath(region)
            # a hair of tolerance: the boundary cells themselves are inside
            inside = path.contains_points(np.column_stack([x, y]), radius=1e-6) | \
                path.contains_points(np.column_stack([x, y]), radius=-1e-6)
            ax.fill(2 ** region[:, 0], 2 ** region[:, 1], facecolor="0.5", alpha=0.06,
                    edgecolor="0.45", ls=":", lw=1.0, zorder=0,
                    label="region the fit read (contours only here)")  # fmt: skip
        if np.isfinite(_finite_or(fit.get("b"), math.nan)):
            z = _logistic_surface(fit, my, mx)
            if region is not None:
                grid = np.column_stack([mx.ravel(), my.ravel()])
                keep = path.contains_points(grid, radius=1e-6) | path.contains_points(
                    grid, radius=-1e-6)  # fmt: skip
                z = np.ma.masked_where(~keep.reshape(z.shape), z)
            cs = ax.contour(2**mx, 2**my, z, levels=list(levels), cmap=cmap, norm=norm,
                            linewidths=1.4)  # fmt: skip
            ax.clabel(cs, fmt=lambda v: f"{100 * v:.0f}%", fontsize=8)
        acc = pts["accuracy"].to_numpy(float)
        sc = ax.scatter(2 ** x[inside], 2 ** y[inside], c=acc[inside], cmap=cmap, norm=norm,
                        s=60, edgecolors="0.2", linewidths=0.6, zorder=3,
                        label="measured, used by the fit")  # fmt: skip
        if (~inside).any():
            ax.scatter(2 ** x[~inside], 2 ** y[~inside], facecolors="none",
                       edgecolors=cmap(norm(acc[~inside])), s=60, linewidths=1.4, zorder=3,
                       label="measured, left out (past its plateau)")  # fmt: skip
        fig.colorbar(sc, ax=ax, label="measured accuracy (dots) · fitted contours (lines)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: format_params(v)))
        ax.set_xlabel("thinking budget T (tokens, log scale)")
        ax.set_ylabel("parameters N (log scale)")
        if fit.get("status") == "ok":
            extra = (f"one doubling of T ≈ {_f2(fit['rate'])} doublings of N "
                     f"(95% CI {_f2(fit['rate_lo'])}–{_f2(fit['rate_hi'])})")  # fmt: skip
        else:
            extra = str(fit.get("status", ""))
        ax.set_title(extra, fontsize=9)
        _legend(ax, loc="lower right", fontsize=7.5)
        fig.suptitle(_title("Iso-accuracy: parameters vs thinking", family, task))
    return fig


def _size_params(costs: pd.DataFrame, given: Mapping[str, float] | None) -> dict[str, float]:
    """size -> params for the cost lines, whose ``model`` is a size ("zoo/arith-h32") while
    the report's mapping names checkpoints ("zoo/arith-h32-s0"): the size's own entry, else
    its seeds' (a name that extends it by a separator), else its training FLOPs (which grow
    with size within one recipe), so the colour follows size and not the name's spelling."""
    given = dict(given or {})
    out = {}
    for m in costs["model"].unique():
        m = str(m)
        p = _finite_or(given.get(m), math.nan)
        if not math.isfinite(p):
            seeds = [v for k, v in given.items() if k.startswith(m) and k[len(m):][:1] in "-_/."
                     and math.isfinite(_finite_or(v, math.nan))]  # fmt: skip
            p = min(seeds) if seeds else math.nan
        out[m] = p
    if not all(math.isfinite(v) for v in out.values()):  # one scale for all: training FLOPs
        tf = costs.groupby("model", sort=False)["train_flops"].max()
        out = {str(m): _finite_or(v, math.nan) for m, v in tf.items()}
    return out


def cost_label(row: Mapping) -> str:
    """A cost line's label: the configuration as analysis names it (size, T, n and the
    decoding: "greedy", "t=0.7", "t=0.7 top-p=0.9"), so a sampled and a greedy configuration
    of one size never read alike; older tables without ``config``: model, T, n."""
    cfg = row.get("config")
    if isinstance(cfg, str) and cfg:
        return cfg
    return f"{row['model']} (T={float(row['budget']):g}, n={int(row['n'])})"


def plot_cost_vs_queries(
    costs: pd.DataFrame,
    crossover: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Total compute (training FLOPs + Q × inference FLOPs per query) vs query volume Q, one
    line per model that reaches the target (at its cheapest configuration, labelled with its
    decoding), one panel per target and problem set (configurations are compared only on
    problems all of them saw: a row of panels per set, named); the crossover Q where the
    preferred model changes is marked with its bootstrap CI.

    `costs`: analysis ``buy_costs`` rows of one task; `crossover`: its ``crossover`` rows."""
    costs = costs[np.isfinite(costs["train_flops"].astype(float))]
    targets = sorted(costs["target"].unique())
    sets = _problem_sets(costs)
    with mpl.rc_context(_STYLE):
        ncols = max(len(targets), 1)
        fig = Figure(figsize=(4.6 * ncols + 1.6, 4.8 * len(sets)), dpi=DPI, layout="constrained")
        grid = fig.subplots(len(sets), ncols, squeeze=False)
        size_p = _size_params(costs, params)
        colors = model_colors(size_p)
        costs = costs.assign(_p=costs["model"].astype(str).map(size_p)).sort_values(
            "_p", kind="stable")  # legend in size order, small to large
        # Q range: two decades either side of where inference spending equals training
        q_eq = (costs["train_flops"] / costs["inference_flops"]).astype(float)
        q_eq = q_eq[np.isfinite(q_eq) & (q_eq > 0)]
        lo_q, hi_q = (q_eq.min() / 100, q_eq.max() * 100) if len(q_eq) else (1.0, 1e12)
        qs = np.logspace(math.log10(lo_q), math.log10(hi_q), 200)
        for axes, (desc, block) in zip(grid, sets, strict=True):
            xs = crossover
            if desc and "problem_set" in crossover:
                xs = crossover[crossover["problem_set"] == desc]
            for ax, target in zip(axes, targets, strict=False):
                _cost_panel(ax, block[block["target"] == target], xs[xs["target"] == target]
                            if not xs.empty else xs, qs, colors)  # fmt: skip
                title = f"target accuracy {100 * target:.0f}%"
                ax.set_title(title + (f"\non {desc}" if desc and len(sets) > 1 else ""),
                             fontsize=9)  # fmt: skip
            axes[0].set_ylabel("total FLOPs = training + Q × inference")
        only = sets[0][0] if len(sets) == 1 else ""
        extra = f" — on {only}" if only and not only.startswith("all ") else ""
        fig.suptitle(_title("Total cost vs query volume", family, task, extra))
    return fig


def _cost_panel(ax, c: pd.DataFrame, crossover: pd.DataFrame, qs: np.ndarray, colors) -> None:
    for _, r in c.iterrows():
        total = float(r["train_flops"]) + qs * float(r["inference_flops"])
        ax.plot(qs, total, color=colors.get(r["model"], "0.4"), lw=1.5, label=cost_label(r))
    if not crossover.empty:
        cr = crossover[crossover["status"] == "ok"]
        none = crossover[crossover["status"] != "ok"]
    else:
        cr = none = crossover
    for _, r in none.iterrows():
        if isinstance(r.get("from_model"), str):
            ax.text(0.98, 0.04, f"no crossover:\n{r['from_model']} cheapest at every Q",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5)  # fmt: skip
    for _, r in cr.iterrows():
        q, lo, hi = (float(r[k]) for k in ("q_star", "q_lo", "q_hi"))
        ax.axvline(q, color="crimson", lw=1.2, ls="--")
        ax.axvspan(max(lo, qs[0]), min(hi, qs[-1]), color="crimson", alpha=0.12)
        ax.annotate(f"Q* ≈ {_sci(q)}\n{r['from_model']} → {r['to_model']}", (q, 0.04),
                    xycoords=("data", "axes fraction"), fontsize=7.5, rotation=90,
                    ha="right", va="bottom")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("queries served Q (log scale)")
    _legend(ax, fontsize=7, loc="upper left")


# ----------------------------------------------------------------------------- assembly


FIGURE_KINDS = (
    "accuracy_vs_budget", "thinking_tokens", "pass_maj_at_k", "emergence", "emergence_seeds",
    "flops_frontier",
    "iso_accuracy", "cost_vs_queries", "budget_control",
)  # fmt: skip


@dataclass
class FigureSpec:
    name: str  # file stem, e.g. "accuracy_vs_budget_add_sweep"
    kind: str  # accuracy_vs_budget | thinking_tokens | pass_maj_at_k | emergence | flops_frontier
    task: str
    family: str
    caption: str
    figure: Figure


def slug(*parts: object) -> str:
    s = "_".join(str(p) for p in parts if p is not None and str(p) != "")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-._") or "x"


def _base_level(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's lowest "Wait"-extension level (0 in truncate mode)."""
    if df.empty or "extensions" not in df:
        return df
    least = df.groupby("model")["extensions"].transform("min")
    return df[df["extensions"] == least]


def _families(df: pd.DataFrame, emergence: pd.DataFrame, task: str) -> str:
    if "family" in emergence and not emergence.empty:
        fams = emergence.loc[emergence["task"] == task, "family"].dropna().unique()
        if len(fams):
            return " + ".join(sorted(map(str, fams)))
    return family_name(df["model"].unique()) if not df.empty else ""


def analysis_params(analysis) -> dict[str, float]:
    """model -> parameter count, from whichever analysis tables have it."""
    out: dict[str, float] = {}
    for name in ("emergence", "budgets", "compute"):
        df = getattr(analysis, name, None)
        if df is None or df.empty or "params" not in df:
            continue
        for m, p in df.groupby("model")["params"].first().items():
            if math.isfinite(_finite_or(p, math.nan)):
                out.setdefault(str(m), float(p))
    return out


def build_figures(analysis) -> list[FigureSpec]:
    """Every figure that applies to `analysis` (an :class:`evalharness.analysis.Analysis`)."""
    a = analysis
    specs: list[FigureSpec] = []
    P = analysis_params(a)
    tasks = sorted(set(a.budgets["task"]) if not a.budgets.empty else set())
    for task in tasks:
        bud = _base_level(a.budgets[a.budgets["task"] == task])
        fam = _families(bud, a.emergence, task)
        fits = a.fits[a.fits["task"] == task] if not a.fits.empty else None
        if fits is not None and "extensions" in fits:
            lvl = bud.groupby("model")["extensions"].first()
            fits = fits[fits["extensions"] == fits["model"].map(lvl)]
        if bud["budget"].nunique() >= 2:
            specs.append(
                FigureSpec(
                    slug("accuracy_vs_budget", task),
                    "accuracy_vs_budget",
                    task,
                    fam,
                    "Accuracy vs thinking budget, per model, with 95% bootstrap CI bands over "
                    "problems and the fitted a + b·log₂T line (dashed) over the budgets it was "
                    "fitted on.",
                    plot_accuracy_vs_budget(bud, fits, task=task, family=fam, params=P),
                )
            )
        if bud["budget"].nunique() >= 2 and "think_mean" in bud:
            specs.append(
                FigureSpec(
                    slug("thinking_tokens", task),
                    "thinking_tokens",
                    task,
                    fam,
                    "Thinking tokens actually used vs budget (mean, p10–p90 band); the dotted "
                    "line is y = x.",
                    plot_thinking_usage(bud, task=task, family=fam, params=P),
                )
            )
        cov = (
            _base_level(a.coverage[a.coverage["task"] == task])
            if not a.coverage.empty
            else a.coverage
        )
        if not cov.empty:
            kmax = cov.groupby(["model", "budget"])["k"].transform("max")
            cov = cov[kmax > 1]
        if not cov.empty:
            cfits = (
                a.coverage_fits[a.coverage_fits["task"] == task]
                if not a.coverage_fits.empty
                else None
            )
            specs.append(
                FigureSpec(
                    slug("pass_maj_at_k", task),
                    "pass_maj_at_k",
                    task,
                    fam,
                    "pass@k (unbiased), majority@k and best-of-k (by the answer's mean token "
                    "log-prob) vs k, expectations over random k-subsets of the n samples; "
                    "dashed: coverage fit −log pass@k = c·k^(−β).",
                    plot_pass_maj_at_k(cov, cfits, task=task, family=fam, params=P),
                )
            )
        em = a.emergence[a.emergence["task"] == task] if not a.emergence.empty else a.emergence
        for family, g in em.groupby("family", sort=True) if not em.empty else []:
            if g["params"].dropna().nunique() < 2:
                continue
            sh = a.sharpness
            if not sh.empty:
                sh = sh[(sh["task"] == task) & (sh["family"] == family)]
            specs.append(
                FigureSpec(
                    slug("emergence", family, task),
                    "emergence",
                    task,
                    str(family),
                    "Emergence panel: exact match vs parameters beside teacher-forced per-token "
                    "accuracy and log-prob of the correct answer, on the same samples; sharpness "
                    "= share of the total rise in the steepest doubling of parameters."
                    + _seed_line_note(g),
                    plot_emergence(g, sh, task=task, family=str(family), params=P),
                )
            )
        specs += _seed_figures(a, task)
        comp = a.compute[a.compute["task"] == task] if not a.compute.empty else a.compute
        if not comp.empty and np.isfinite(comp["flops"].astype(float)).sum() >= 2:
            specs.append(
                FigureSpec(
                    slug("flops_frontier", task),
                    "flops_frontier",
                    task,
                    fam,
                    "Accuracy vs inference FLOPs per problem for every (model, budget, n); the red "
                    "step line is the Pareto frontier. "
                    + _frontier_sets_note(_base_level(comp))
                    + " " + flops_axis_label(comp.get("flops_rule", []))
                    .replace("inference FLOPs", "Inference FLOPs").removesuffix(" (log scale)")
                    + "; " + flops_rule_note(comp.get("flops_rule", [])) + ".",
                    plot_flops_frontier(_base_level(comp), task=task, family=fam, params=P),
                )
            )
        specs += _buy_figures(a, task, fam, P)
        specs += _control_figures(a, task, fam, P)
    return specs


def _frontier_sets_note(comp: pd.DataFrame) -> str:
    """Caption words naming the problem sets the frontier panels are drawn on."""
    sets = [d for d, _ in _problem_sets(comp) if d]
    if len(sets) <= 1:
        return f"All points on {sets[0]}." if sets else ""
    return (f"One panel per problem set ({'; '.join(sets)}): points are compared only on "
            "problems all of them saw.")


def _seed_line_note(emergence: pd.DataFrame) -> str:
    """Caption words for how the emergence lines treat seeds."""
    seeds = per_size_means(emergence, [])["n_seeds"]
    if seeds.max() < 2:
        return " One checkpoint per size."
    k = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    return (f" Lines join the per-size means over {k} seeds; dots are the single checkpoints "
            "(seeds), coloured by size.")


def _seed_figures(a, task: str) -> list[FigureSpec]:
    """The over-seeds emergence figure per family of one task (>= 2 sizes)."""
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
        ))  # fmt: skip
    return out


def _control_figures(a, task: str, fam: str, P: Mapping[str, float]) -> list[FigureSpec]:
    """The budget-control figure of one task, where a forced end failed to bite at least once
    (answer cut, thinking re-opened or no answer); otherwise the report's table says so."""
    from evalharness.diagnostics import WARN_SHARE

    diag = getattr(a, "diagnostics", pd.DataFrame())
    if diag.empty:
        return []
    diag = _base_level(diag[diag["task"] == task])
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
    )]  # fmt: skip


def _buy_figures(a, task: str, fam: str, P: Mapping[str, float]) -> list[FigureSpec]:
    """The iso-accuracy surface (per family with a thinking-budget fit over >= 3 sizes) and
    the cost-vs-queries crossover figure of one task."""
    out: list[FigureSpec] = []
    ex = getattr(a, "exchange", pd.DataFrame())
    if not ex.empty:
        ex = ex[(ex["task"] == task) & (ex["axis"] == "budget") & (ex["bucket"] == "all")]
    for _, fit in ex.iterrows():
        if not math.isfinite(_finite_or(fit["b"], math.nan)):
            continue  # too few levels to draw a surface
        bud = _base_level(a.budgets[a.budgets["task"] == task])
        em = a.emergence
        members = set(em.loc[(em["task"] == task) & (em["family"] == fit["family"]), "model"])
        pts = bud[bud["model"].isin(members)] if members else bud
        out.append(FigureSpec(
            slug("iso_accuracy", fit["family"], task), "iso_accuracy", task, str(fit["family"]),
            "Iso-accuracy contours of the fitted logistic surface over thinking budget and "
            "parameters, drawn only inside the region the fit read data from (dotted outline: "
            "per size, the budgets up to its plateau), with the measured points (colour = "
            "accuracy; hollow: left out of the fit). Along a contour one doubling of T trades "
            "for c/b doublings of N.",
            plot_iso_accuracy(fit, pts, task=task, family=str(fit["family"])),
        ))  # fmt: skip
    costs = getattr(a, "buy_costs", pd.DataFrame())
    cross = getattr(a, "crossover", pd.DataFrame())
    if not costs.empty:
        costs = costs[(costs["task"] == task) & np.isfinite(costs["train_flops"].astype(float))]
    if not costs.empty and costs["model"].nunique() >= 2:
        cross = cross[cross["task"] == task] if not cross.empty else cross
        out.append(FigureSpec(
            slug("cost_vs_queries", task), "cost_vs_queries", task, fam,
            "Total compute = training FLOPs + Q × inference FLOPs per query, per model at its "
            "cheapest configuration reaching each target; dashed: the crossover query volume "
            "where the preferred model changes, shaded: its 95% bootstrap CI over problems. "
            "Lines are labelled with their configuration: size, T, n and decoding (greedy or "
            "t=temperature, top-p); configurations are compared only within one problem set.",
            plot_cost_vs_queries(costs, cross, task=task, family=fam, params=P),
        ))  # fmt: skip
    return out


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write `fig` as ``stem.<fmt>`` for each format (no timestamps in the files)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        meta = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
        with mpl.rc_context(_STYLE):
            fig.savefig(path, format=fmt, dpi=DPI, metadata=meta)
        out.append(path)
    return out


def load_analysis(results_dir: Path):
    """(scores, analysis) for a results folder: ``load_scores`` then ``analyze``."""
    from evalharness.analysis import analyze
    from evalharness.scoring import load_scores

    scores = load_scores(Path(results_dir))
    return scores, analyze(scores)


def make_plots(results_dir: Path, out_dir: Path | None = None, *, analysis=None) -> list[Path]:
    """Write every applicable figure as PNG + SVG into `out_dir` (default
    ``results_dir/plots``) and return the paths. Pure function of ``results_dir``: works on a
    copy of ``results/`` alone, offline. `analysis` skips re-analysis when the caller has one.
    Figures of ours left from an earlier call that no longer apply are removed."""
    results_dir = Path(results_dir)
    out_dir = results_dir / "plots" if out_dir is None else Path(out_dir)
    if analysis is None:
        _, analysis = load_analysis(results_dir)
    paths: list[Path] = []
    for spec in build_figures(analysis):
        paths += save_figure(spec.figure, out_dir / spec.name)
    if out_dir.is_dir():
        for old in out_dir.iterdir():
            ours = old.suffix[1:] in FIGURE_FORMATS and old.stem.startswith(FIGURE_KINDS)
            if ours and old not in paths:
                old.unlink()
    return paths
