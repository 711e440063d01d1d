"""Every bootstrap and interval of the analysis, in one place.

The unit of resampling is the *problem* (samples and budgets of one problem share a prompt and,
in the one-pass sweep, a thinking prefix, so they are not independent); seeds of one model size
are resampled among themselves on top of that. A resample is expressed as *counts* per item, so
a weighted mean over it is a matrix product and one resample serves every budget, k and
configuration at once (replicates stay aligned across them, which the fits need).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from evalharness.analysis.emergence_tests import SeedDesign


class CI(NamedTuple):
    estimate: float
    lo: float
    hi: float


def bootstrap_weights(
    n_items: int, n_boot: int, rng: np.random.Generator, max_cells: int = 4_000_000
):
    """Yield blocks of resampling counts (rows: replicates, columns: items, rows sum to n).

    Expressing a resample as counts turns any weighted mean over it into a matrix product,
    so one block of counts serves every budget / k at once and resamples stay aligned across
    them (which the fits need: a replicate is one resample of problems, seen at all budgets).
    """
    rows = max(1, max_cells // max(n_items, 1))
    done = 0
    while done < n_boot:
        b = min(rows, n_boot - done)
        idx = rng.integers(0, n_items, size=(b, n_items))
        flat = (np.arange(b)[:, None] * n_items + idx).ravel()
        yield np.bincount(flat, minlength=b * n_items).reshape(b, n_items).astype(float)
        done += b


def bootstrap_means(values: np.ndarray, n_boot: int = 1000, seed: int | None = 0) -> np.ndarray:
    """Bootstrap replicates of column means of `values` (items x columns), NaN-aware.

    Rows are resampled; a NaN cell (e.g. a problem missing at one budget) is left out of that
    column's mean. Returns an (n_boot x columns) array.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    present = ~np.isnan(v)
    filled = np.where(present, v, 0.0)
    rng = np.random.default_rng(seed)
    blocks = []
    for w in bootstrap_weights(v.shape[0], n_boot, rng):
        with np.errstate(invalid="ignore", divide="ignore"):
            blocks.append((w @ filled) / (w @ present))
    return np.vstack(blocks)


def bootstrap_ci(
    values_per_problem: Sequence[float] | np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> CI:
    """Percentile bootstrap CI of `stat` over problems (resampled with replacement).

    Problems, not samples, are the unit: samples of one problem are correlated, so resampling
    them would understate the uncertainty. `stat=np.mean` takes a vectorised fast path; NaN
    values are dropped first.
    """
    v = np.asarray(values_per_problem, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return CI(np.nan, np.nan, np.nan)
    estimate = float(stat(v))
    if stat is np.mean:
        reps = bootstrap_means(v, n_boot, seed)[:, 0]
    else:
        rng = np.random.default_rng(seed)
        reps = np.array([stat(v[rng.integers(0, v.size, v.size)]) for _ in range(n_boot)])
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return CI(estimate, float(lo), float(hi))


def ols_lines(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intercepts and slopes of y (replicates x points) on x, one least-squares line per row."""
    y = np.atleast_2d(y)
    xc = x - x.mean()
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return y.mean(axis=1) - slope * x.mean(), slope


def r_squared(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    resid = y - (a + b * x)
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else math.nan


def column_intervals(reps: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column; a replicate that is NaN in a column (no problem of that
    column drawn) is left out of that column only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN interval
        lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
    return lo, hi


# ----------------------------------------------------------------------------- bootstrap


def resample_counts(n_items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot x n_items) resampling counts (rows sum to n_items)."""
    return np.vstack(list(bootstrap_weights(n_items, n_boot, rng)))


def group_resample_counts(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot x units) counts resampling units within each group (seed replicates of one size
    resampled among themselves; a group of one is always weight 1)."""
    out = np.ones((n_boot, groups.size))
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if idx.size > 1:
            pick = rng.integers(0, idx.size, size=(n_boot, idx.size))
            out[:, idx] = np.stack([np.bincount(p, minlength=idx.size) for p in pick])
    return out


def seed_draw_counts(size: np.ndarray, unit: np.ndarray, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """(n_boot x rows) weights: per size, n-1 of its n distinct units (training seeds) drawn
    with replacement, scaled by n/(n-1) so a size keeps its weight; each row gets its unit's
    weight (a size with one unit: weight 1). A bootstrap drawing n of n seeds estimates the
    variance of their mean with divisor n instead of n-1, a third too small at 3 seeds; n-1
    draws make it unbiased."""
    size, unit = np.asarray(size, dtype=object), np.asarray(unit, dtype=object)
    out = np.ones((n_boot, size.size))
    for s in pd.unique(size):
        rows = np.flatnonzero(size == s)
        units, inv = np.unique(unit[rows].astype(str), return_inverse=True)
        n = units.size
        if n < 2:
            continue
        pick = rng.integers(0, n, size=(n_boot, n - 1))
        counts = np.stack([np.bincount(p, minlength=n) for p in pick]) * (n / (n - 1))
        out[:, rows] = counts[:, inv]
    return out


def percentile_interval(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    # no interpolation: replicates may be inf (no crossing), and inf - inf is NaN
    lo = np.quantile(reps, alpha / 2, method="lower")
    hi = np.quantile(reps, 1 - alpha / 2, method="higher")
    return float(lo), float(hi)


def seed_resample_weights(models: np.ndarray, present: np.ndarray, n_boot: int,
                  rng: np.random.Generator) -> np.ndarray:
    """(n_boot+1) x seeds x configs weights: row 0 all ones; then, per model, its seeds
    resampled with replacement (one draw shared by all configurations of that model)."""
    n_seeds = present.shape[0]
    out = np.ones((n_boot + 1, n_seeds, len(models)))
    for m in pd.unique(models):
        cols = np.flatnonzero(models == m)
        have = np.flatnonzero(present[:, cols].any(axis=1))
        if have.size < 2:
            continue
        pick = rng.integers(0, have.size, size=(n_boot, have.size))
        counts = np.stack([np.bincount(p, minlength=have.size) for p in pick])
        w = np.zeros((n_boot, n_seeds))
        w[:, have] = counts
        out[1:, :, cols] = w[:, :, None]
    return out


def seeded_means(values: np.ndarray, w: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """replicates x configs: per seed the problem-weighted mean, then the seed-weighted mean
    of those (seeds are replicates of a size; problems are resampled within every seed)."""
    present = ~np.isnan(values)
    num = np.einsum("rp,spc->rsc", w, np.where(present, values, 0.0))
    den = np.einsum("rp,spc->rsc", w, present.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = num / den
    have = np.isfinite(per_seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ws * np.where(have, per_seed, 0.0)).sum(1) / (ws * have).sum(1)


def size_seed_weights(
    design: SeedDesign, n_problems: int, n_boot: int, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(problem weights n_boot x problems, seed weights n_boot x checkpoints): multinomial
    counts; problems drawn once per replicate for all sizes, seeds within each size."""
    rng = np.random.default_rng(seed)
    wp = rng.multinomial(n_problems, np.full(n_problems, 1 / n_problems), size=n_boot)
    ws = np.zeros((n_boot, design.size_of.size))
    for s in range(len(design.sizes)):
        idx = np.flatnonzero(design.size_of == s)
        ws[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1 / idx.size), size=n_boot)
    return wp.astype(float), ws


