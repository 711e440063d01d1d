"""Best-of-N coverage: the pass@k power-law fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evalharness.analysis.budget import MIN_POINTS
from evalharness.stats import bootstrap_means, column_intervals, ols_lines, r_squared

COVERAGE_RULE = (
    "fit log(-log pass@k) = log c - beta * log k by least squares over k with "
    f"0 < pass@k < 1; need >= {MIN_POINTS} values of k"
)


@dataclass(frozen=True)
class CoverageFit:
    """-log pass@k = c * k^(-beta) (Schaeffer et al.'s power law for repeated sampling)."""

    status: str
    c: float = math.nan
    beta: float = math.nan
    c_lo: float = math.nan
    c_hi: float = math.nan
    beta_lo: float = math.nan
    beta_hi: float = math.nan
    r2: float = math.nan
    ks: tuple[int, ...] = ()
    rule: str = COVERAGE_RULE


def fit_coverage_from(
    ks: np.ndarray, point: np.ndarray, reps: np.ndarray, alpha: float
) -> CoverageFit:
    keep = (point > 0) & (point < 1) & np.isfinite(point)
    if keep.sum() < MIN_POINTS:
        return CoverageFit(status=f"no fit: only {int(keep.sum())} values of k with "
                                  f"0 < pass@k < 1 (need {MIN_POINTS})")
    if np.ptp(point[keep]) < 1e-12:
        # pass@k == pass@1 for every k (e.g. samples that all agree): beta = 0 with a CI of
        # +-1e-32 is not a measurement, the sampling adds no coverage
        return CoverageFit(status="no fit: pass@k flat in k (pass@k == pass@1, beta = 0)",
                           ks=tuple(int(k) for k in ks[keep]))
    x = np.log(ks[keep].astype(float))

    def transform(p: np.ndarray) -> np.ndarray:
        return np.log(-np.log(np.clip(p, 1e-12, 1 - 1e-12)))

    y = transform(point[keep])
    log_c, slope = (float(v[0]) for v in ols_lines(x, y))
    r_log_c, r_slope = ols_lines(x, transform(reps[:, keep]))
    (c_lo, b_lo), (c_hi, b_hi) = column_intervals(np.column_stack([np.exp(r_log_c), -r_slope]), alpha)
    return CoverageFit(
        status="ok",
        c=math.exp(log_c),
        beta=-slope,
        c_lo=float(c_lo),
        c_hi=float(c_hi),
        beta_lo=float(b_lo),
        beta_hi=float(b_hi),
        r2=r_squared(x, y, log_c, slope),
        ks=tuple(int(k) for k in ks[keep]),
    )


def fit_coverage(
    ks: np.ndarray,
    pass_per_problem: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> CoverageFit:
    """Fit -log pass@k = c * k^(-beta); `pass_per_problem` is problems x len(ks)."""
    values = np.asarray(pass_per_problem, dtype=float)
    reps = bootstrap_means(values, n_boot, seed)
    return fit_coverage_from(np.asarray(ks), np.nanmean(values, axis=0), reps, alpha)

