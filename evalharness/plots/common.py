"""What every figure shares: colours by size, labels, axes, the figure registry, saving.

A figure is added by one registry entry: a builder decorated with `@figure(kind, order=...)`
in its topic module (budget, sampling, emergence, compute, diagnostics), taking the `TaskView`
of one task and returning the `FigureSpec`s that apply (none when the data do not support it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CMAP = "viridis"
_CMAP_RANGE = (0.82, 0.05)  # small models light (but no yellow on white), large models dark
FIGURE_FORMATS = ("png", "svg")
DPI = 130

STYLE = {
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
        bases[b] = min(bases.get(b, math.inf), finite_or(p, math.inf))
    order = model_order(bases)
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
    p = finite_or(p, math.nan)
    if not math.isfinite(p):
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if p >= div:
            return f"{p / div:.3g}{suffix}"
    return f"{p:.0f}"


def finite_or(x, default):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def params_of(df: pd.DataFrame, given: Mapping[str, float] | None = None) -> dict[str, float]:
    """model -> params for the models in `df`: from `given` (a report-wide mapping, so colours
    agree across figures) where it has the model, else from df's ``params`` column."""
    if df.empty:
        return {}
    if given:
        own = params_of(df)
        return {m: finite_or(given.get(m), own.get(m, math.nan)) for m in own}
    if "params" not in df:
        return {str(m): math.nan for m in df["model"].unique()}
    first = df.groupby("model", sort=False)["params"].first()
    return {str(m): finite_or(p, math.nan) for m, p in first.items()}


def model_order(params: Mapping[str, float]) -> list[str]:
    return sorted(params, key=lambda m: (finite_or(params[m], math.inf), m))


def model_label(model: str, params: Mapping[str, float]) -> str:
    """``"m (n=8, temp=0.7)"`` with 16k params -> ``"m (16k), n=8, temp=0.7"``."""
    base, cfg = split_model(model)
    p = params.get(model, math.nan)
    out = f"{base} ({format_params(p)})" if math.isfinite(p) else base
    return f"{out}, {cfg}" if cfg else out


def fmt2(v: float) -> str:
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def curves_with_budgets(df: pd.DataFrame, min_budgets: int = 2) -> pd.DataFrame:
    """Rows of the models that have a curve (>= `min_budgets` budgets); all rows if none has.
    A best-of-N run at a single budget is a point for the pass@k figure, not a curve."""
    counts = df.groupby("model")["budget"].nunique()
    keep = counts[counts >= min_budgets].index
    return df[df["model"].isin(keep)] if len(keep) else df


def figure_title(kind: str, family: str | None, task: str | None, extra: str = "") -> str:
    bits = [b for b in (f"{family} family" if family else "", f"task {task}" if task else "") if b]
    return kind + (" — " + " · ".join(bits) if bits else "") + extra


def parse_budgets(v) -> list[float]:
    """Fit budgets as stored by analysis (``"8 16 32"``) or as a sequence."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, str):
        return [float(t) for t in v.replace(",", " ").split()]
    if isinstance(v, Sequence | np.ndarray):
        return [float(t) for t in v]
    return [float(v)]


class BudgetAxis:
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


def new_figure(w: float, h: float, ncols: int = 1, **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kw)[0]
    return fig, axes


def add_legend(ax, **kw) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(frameon=False, **kw)


def log_x(ax, formatter, lo: float, hi: float) -> None:
    """Log x axis over [lo, hi] with readable ticks: 1-2-5 ticks when the range spans fewer
    than three decades (one decade tick alone says little), powers of ten otherwise."""
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    subs = (1.0, 2.0, 5.0) if hi / lo < 1e3 else (1.0,)
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(formatter))
    ax.xaxis.set_minor_locator(mpl.ticker.LogLocator(base=10, subs="auto"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def log_params_axis(ax, x: np.ndarray) -> None:
    x = x[np.isfinite(x) & (x > 0)]
    log_x(ax, lambda v, _: format_params(v), float(x.min()) / 1.3, float(x.max()) * 1.3)
    ax.set_xlabel("parameters (log scale)")


def sci_label(v: float, _=None) -> str:
    """``2e+06`` -> ``2×10⁶`` (tick labels)."""
    if v <= 0:
        return ""
    exp = int(math.floor(math.log10(v) + 1e-9))
    mant = v / 10**exp
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"10{sup}" if abs(mant - 1) < 1e-6 else f"{mant:.0f}×10{sup}"


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


def base_level(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's lowest "Wait"-extension level (0 in truncate mode)."""
    if df.empty or "extensions" not in df:
        return df
    least = df.groupby("model")["extensions"].transform("min")
    return df[df["extensions"] == least]


def families_label(df: pd.DataFrame, emergence: pd.DataFrame, task: str) -> str:
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
            if math.isfinite(finite_or(p, math.nan)):
                out.setdefault(str(m), float(p))
    return out


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write `fig` as ``stem.<fmt>`` for each format (no timestamps in the files)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        meta = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
        with mpl.rc_context(STYLE):
            fig.savefig(path, format=fmt, dpi=DPI, metadata=meta)
        out.append(path)
    return out



@dataclass(frozen=True)
class TaskView:
    """What a figure builder reads for one task: the analysis, the task's budget rows at their
    base extension level, the family label for titles and parameters per model (colours)."""

    analysis: Any  # evalharness.analysis.Analysis (not imported: plots read tables only)
    task: str
    budgets: pd.DataFrame
    family: str
    params: Mapping[str, float]
    # emergence over training: the x-axes drawn side by side (params | train_flops | tokens)
    x_axes: tuple[str, ...] = ("params", "train_flops")


FigureBuilder = Callable[[TaskView], list[FigureSpec]]
# (order, kinds, builder): figures are drawn, saved and shown in `order`; `kinds` name the file
# stems a builder may write, so stale files of a kind are recognised as ours and removed
FIGURES: list[tuple[int, tuple[str, ...], FigureBuilder]] = []


def figure(*kinds: str, order: int) -> Callable[[FigureBuilder], FigureBuilder]:
    """Register a builder of the figures of `kinds` for one task."""

    def register(build: FigureBuilder) -> FigureBuilder:
        FIGURES.append((order, kinds, build))
        FIGURES.sort(key=lambda entry: entry[0])
        return build

    return register


def figure_kinds() -> tuple[str, ...]:
    """Every registered figure kind, in drawing order."""
    return tuple(k for _, kinds, _ in FIGURES for k in kinds)
