"""Emergence statistics a referee asks for: seed-aware size curves, monotone sharpness and its
CI, and the Schaeffer "mirage" test with its verdict sentence.

Pure functions on numpy arrays and small frames; no I/O. Two resampling units are crossed
here: *problems* (shared by every size, so one problem resample is applied to all sizes at
once) and *seeds* (checkpoints of one size, resampled among themselves). Every interval states
which it resamples.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression

from evalharness.stats import size_seed_weights

# ---------------------------------------------------------------------------------------------
# Seed-aware curves
# ---------------------------------------------------------------------------------------------

SEED_CI_RULE = (
    "per size: mean over seeds; CI = mean +- t(df) * SD of a joint bootstrap that resamples "
    "problems (one resample shared by all sizes) and seeds within each size (seed deviations "
    "scaled by sqrt(k/(k-1)) so k resampled seeds have the variance of k new ones); "
    "df = Welch-Satterthwaite with the seed part on k-1 degrees of freedom"
)


@dataclass(frozen=True)
class SeedDesign:
    """Which checkpoint belongs to which size (checkpoints are rows of the value matrices)."""

    sizes: tuple[str, ...]
    log2_params: np.ndarray  # per size
    size_of: np.ndarray  # per checkpoint: index into `sizes`

    @property
    def n_seeds(self) -> np.ndarray:
        return np.bincount(self.size_of, minlength=len(self.sizes))


@dataclass(frozen=True)
class SizeCurve:
    """One metric per size: seed mean, seed spread, CI and the joint bootstrap replicates."""

    mean: np.ndarray
    sd: np.ndarray  # between seeds (NaN with one seed)
    seed_min: np.ndarray
    seed_max: np.ndarray
    ci_lo: np.ndarray
    ci_hi: np.ndarray
    reps: np.ndarray  # (n_boot x sizes), joint resamples of problems and seeds
    per_seed: np.ndarray  # per checkpoint, full data


def design_from(sizes, log2_params, size_of) -> SeedDesign:
    return SeedDesign(tuple(sizes), np.asarray(log2_params, float), np.asarray(size_of, int))


def _ratio(num: np.ndarray, den: np.ndarray, wp: np.ndarray) -> np.ndarray:
    """Per checkpoint, sum(w * num) / sum(w * den) over problems: (checkpoints x rows of wp)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.nan_to_num(num) @ wp.T) / (np.nan_to_num(den) @ wp.T)


def size_curve(
    design: SeedDesign,
    num: np.ndarray,
    den: np.ndarray,
    wp: np.ndarray,
    ws: np.ndarray,
    alpha: float = 0.05,
) -> SizeCurve:
    """A per-size curve of the ratio metric sum(num)/sum(den) over problems (checkpoints x
    problems; for a mean, `den` is 1 where the cell is present, 0 where missing)."""
    n_sizes, k = len(design.sizes), design.n_seeds
    per_seed = _ratio(num, den, np.ones((1, num.shape[1])))[:, 0]
    reps_c = _ratio(num, den, wp).T  # n_boot x checkpoints
    mean = np.full(n_sizes, np.nan)
    sd, smin, smax = mean.copy(), mean.copy(), mean.copy()
    v_seed = np.zeros(n_sizes)
    reps = np.full((wp.shape[0], n_sizes), np.nan)
    for s in range(n_sizes):
        idx = np.flatnonzero(design.size_of == s)
        vals = per_seed[idx]
        mean[s], smin[s], smax[s] = np.nanmean(vals), np.nanmin(vals), np.nanmax(vals)
        prob_only = np.nanmean(reps_c[:, idx], axis=1)  # seeds fixed, problems resampled
        if idx.size > 1:
            sd[s] = np.nanstd(vals, ddof=1)
            v_seed[s] = sd[s] ** 2 / idx.size
            w = ws[:, idx]
            seeded = (w * reps_c[:, idx]).sum(axis=1) / w.sum(axis=1)
            # resampling k seeds has (k-1)/k of the variance of drawing k new ones
            reps[:, s] = prob_only + math.sqrt(idx.size / (idx.size - 1)) * (seeded - prob_only)
        else:
            reps[:, s] = prob_only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(reps, axis=0, ddof=1)
        # Welch-Satterthwaite: the seed share of the variance is known on k-1 df only
        df = np.where(v_seed > 0, se**4 * (k - 1) / np.maximum(v_seed, 1e-300) ** 2, np.inf)
    q = stats.t.ppf(1 - alpha / 2, np.maximum(df, 1.0))
    return SizeCurve(mean, sd, smin, smax, mean - q * se, mean + q * se, reps, per_seed)


# ---------------------------------------------------------------------------------------------
# Sharpness from a monotone fit
# ---------------------------------------------------------------------------------------------

MONOTONE_SHARPNESS_RULE = (
    "fit a monotone curve in log2 params (sigmoid lower + (upper-lower)*expit((x-mid)/width) by "
    "bounded least squares; isotonic regression, joined by straight lines, where the sigmoid "
    "does not converge); sharpness = largest rise of the fitted curve within one doubling / its "
    "rise over the measured range, in [0, 1]; needs >= 3 sizes spanning > 1 doubling"
)


@dataclass(frozen=True)
class Sharpness:
    status: str  # "ok" or "no fit: <reason>"
    value: float = math.nan  # the reported sharpness (from `fit`)
    fit: str = ""  # "sigmoid" | "isotonic"
    sigmoid: float = math.nan
    isotonic: float = math.nan
    midpoint_log2: float = math.nan  # sigmoid midpoint (log2 params)
    width_log2: float = math.nan  # sigmoid width (doublings)
    start_log2: float = math.nan  # start of the steepest doubling of the chosen fit


def _sigmoid(x, lower, upper, mid, width):
    return lower + (upper - lower) * expit((x - mid) / width)


def _window_share(x_grid: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """(largest rise in one doubling / total rise, its start) of a monotone curve on a grid."""
    total = f[-1] - f[0]
    step = x_grid[1] - x_grid[0]
    shift = int(round(1 / step))
    rises = f[shift:] - f[:-shift]
    best = int(np.argmax(rises / total))
    return float(np.clip(rises[best] / total, 0.0, 1.0)), float(x_grid[best])


def isotonic_curve(x, y, weights=None) -> np.ndarray:
    """Isotonic fit, direction by the sign of the trend (Spearman), at the given x."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "auto" on few points warns; we know
        return IsotonicRegression(increasing="auto").fit(x, y, sample_weight=weights).predict(x)


def monotone_sharpness(log2_params, y, weights=None, sigmoid: bool = True) -> Sharpness:
    """Sharpness of a per-size curve from a monotone fit (`MONOTONE_SHARPNESS_RULE`); never
    above 1, whatever the input (a non-monotone curve is first made monotone). `sigmoid=False`
    uses the isotonic fit alone (cheap: for many small curves)."""
    x = np.asarray(log2_params, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.unique(x).size < 3:
        return Sharpness(f"no fit: {np.unique(x).size} sizes (need 3)")
    if x[-1] - x[0] <= 1:
        return Sharpness("no fit: sizes span at most one doubling")
    if np.ptp(y) == 0:
        return Sharpness("no fit: zero variance (the curve is flat)")
    grid = np.linspace(x[0], x[-1], int(round((x[-1] - x[0]) * 200)) + 1)
    iso = isotonic_curve(x, y, weights)
    iso_share = iso_start = math.nan
    if iso[-1] != iso[0]:
        iso_share, iso_start = _window_share(grid, np.interp(grid, *_dedupe(x, iso)))
    span = np.ptp(y)
    lo_b, hi_b = y.min() - span, y.max() + span  # room to bend a sigmoid into a line
    p0 = [y[0], y[-1], (x[0] + x[-1]) / 2, (x[-1] - x[0]) / 4]
    p0[0], p0[1] = np.clip(p0[0], lo_b, hi_b), np.clip(p0[1], lo_b, hi_b)
    bounds = ([lo_b, lo_b, x[0] - 2, 0.02], [hi_b, hi_b, x[-1] + 2, 4 * (x[-1] - x[0])])
    sig = None
    try:
        if not sigmoid:
            raise RuntimeError("sigmoid not asked for")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sig, _ = optimize.curve_fit(_sigmoid, x, y, p0=p0, bounds=bounds, max_nfev=400)
    except (RuntimeError, ValueError):
        sig = None
    sig_share = sig_start = math.nan
    if sig is not None and np.all(np.isfinite(sig)):
        f = _sigmoid(grid, *sig)
        if abs(f[-1] - f[0]) > 1e-9 * max(span, 1e-12):
            sig_share, sig_start = _window_share(grid, f)
    if math.isfinite(sig_share):
        return Sharpness("ok", sig_share, "sigmoid", sig_share, iso_share, float(sig[2]),
                         float(sig[3]), sig_start)
    if math.isfinite(iso_share):
        return Sharpness("ok", iso_share, "isotonic", math.nan, iso_share, start_log2=iso_start)
    return Sharpness("no fit: the monotone fit is flat (no net trend across sizes)")


SHARPNESS_CI_RULE = (
    "95% percentile interval of the sharpness over joint bootstrap replicates of the per-size "
    "curve (problems resampled once for all sizes, seeds within each size, as for the seed "
    "CIs), each replicate refitted with the point estimate's fit: isotonic exactly; sigmoid "
    "by profile least squares over a grid of midpoints (0.05 doublings) and widths (48, "
    "log-spaced), lower and upper solved in closed form"
)
SHARPNESS_CI_BOOT = 400  # replicates per interval: enough for a 95% percentile interval


def _pava(y: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit of `y` (pool adjacent violators, unit weights)."""
    vals, counts = [], []
    for v in y:
        vals.append(float(v))
        counts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            n = counts[-2] + counts[-1]
            vals[-2] = (vals[-2] * counts[-2] + vals[-1] * counts[-1]) / n
            counts[-2] = n
            vals.pop()
            counts.pop()
    return np.repeat(vals, counts)


def _piecewise_share(x: np.ndarray, f: np.ndarray) -> float:
    """Largest rise of the piecewise-linear curve (x, f) within one doubling / its total rise:
    the maximum sits where a window edge meets a point, so those starts are the candidates."""
    total = f[-1] - f[0]
    if total == 0:
        return math.nan
    starts = np.concatenate([x, x - 1])
    starts = starts[(starts >= x[0]) & (starts <= x[-1] - 1)]
    rises = np.interp(starts + 1, x, f) - np.interp(starts, x, f)
    return float(np.clip(np.max(rises / total), 0.0, 1.0))


def _sigmoid_share(mid: np.ndarray, width: np.ndarray, x0: float, x1: float) -> np.ndarray:
    """Sharpness of sigmoids (any lower/upper: the share does not depend on them) over
    [x0, x1]: the steepest doubling is centred on the midpoint, moved inside the range."""
    s = np.clip(mid - 0.5, x0, x1 - 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        rise = expit((s + 1 - mid) / width) - expit((s - mid) / width)
        total = expit((x1 - mid) / width) - expit((x0 - mid) / width)
        return np.clip(rise / total, 0.0, 1.0)


def sharpness_replicates(log2_params, reps: np.ndarray, fit: str, increasing: bool = True,
                         chunk: int = 200) -> np.ndarray:
    """Sharpness of each replicate curve (rows of `reps`, one column per size in the order of
    `log2_params`) under the fit the point estimate used (`SHARPNESS_CI_RULE`). NaN where a
    replicate has a missing size or no net change."""
    x = np.asarray(log2_params, float)
    order = np.argsort(x)
    x, reps = x[order], np.atleast_2d(np.asarray(reps, float))[:, order]
    out = np.full(reps.shape[0], np.nan)
    ok = np.all(np.isfinite(reps), axis=1)
    if x.size < 3 or x[-1] - x[0] <= 1 or not ok.any():
        return out
    if fit == "isotonic":
        sign = 1.0 if increasing else -1.0
        for i in np.flatnonzero(ok):
            out[i] = _piecewise_share(x, sign * _pava(sign * reps[i]))
        return out
    if fit != "sigmoid":
        return out
    # profile least squares: for fixed (mid, width) the curve is linear in (lower, upper), so
    # the best fit maximises the squared norm of y projected on span{1 - s, s} = span{1, s}
    mids = np.arange(x[0] - 2, x[-1] + 2 + 1e-9, 0.05)
    widths = np.geomspace(0.02, 4 * (x[-1] - x[0]), 48)
    mm, ww = (a.ravel() for a in np.meshgrid(mids, widths))
    basis = expit((x[None, :] - mm[:, None]) / ww[:, None])  # combos x sizes
    # an orthonormal basis of span{1, s} is {1/sqrt(k), centred s / its norm}; the first
    # component of the projection is the same for every combo, so the second decides
    u = basis - basis.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    u = np.divide(u, norm, out=np.zeros_like(u), where=norm > 1e-12)
    idx = np.flatnonzero(ok)
    for start in range(0, idx.size, chunk):
        rows = idx[start : start + chunk]
        best = np.argmax((reps[rows] @ u.T) ** 2, axis=1)
        out[rows] = _sigmoid_share(mm[best], ww[best], x[0], x[-1])
    flat_rows = np.ptp(reps, axis=1) == 0
    out[flat_rows] = np.nan
    return out


def sharpness_interval(log2_params, reps: np.ndarray, fit: str, increasing: bool = True,
                       alpha: float = 0.05) -> tuple[float, float, int]:
    """(lo, hi, replicates with a value) of the percentile interval of `sharpness_replicates`."""
    vals = sharpness_replicates(log2_params, reps, fit, increasing)
    vals = vals[np.isfinite(vals)]
    if vals.size < 20:
        return math.nan, math.nan, int(vals.size)
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi), int(vals.size)


def _dedupe(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = pd.Series(y).groupby(x).mean()
    return s.index.to_numpy(float), s.to_numpy(float)


# ---------------------------------------------------------------------------------------------
# The Schaeffer test: is exact match's jump the metric, or the model?
# ---------------------------------------------------------------------------------------------

SCHAEFFER_RULE = (
    "per-token error e on the informative gold tokens, per size (seed mean), fitted as "
    "logit(e) = c + d*log2 N over the sizes with at least one token error; predicted "
    "EM = p^L_eff with p = 1 - fitted e and L_eff fitted by least squares of observed EM on "
    "p^L; CIs from a joint bootstrap of problems and seeds, Bonferroni-corrected over sizes. "
    "Verdict 'real transition' when a residual of the smooth per-token trend excludes zero (the "
    "per-token metric itself jumps); 'metric-induced' when no residual does and observed minus "
    "predicted EM includes zero at every size with every such CI within ±0.2; otherwise "
    "'undetermined' (also with < 4 sizes, one checkpoint per size, < 3 sizes with token "
    "errors, or EM range < 0.1)"
)
MIN_SIZES = 4
# a "metric-induced" verdict needs every size's observed-minus-predicted CI within ± this
MAX_GAP_HALF_WIDTH = 0.2
L_GRID = np.geomspace(0.05, 1e4, 4000)


@dataclass(frozen=True)
class SchaefferResult:
    verdict: str  # "metric-induced" | "real transition" | "undetermined"
    reason: str
    table: pd.DataFrame  # per size: observed / predicted EM, per-token error, residuals
    l_eff: float = math.nan
    l_eff_lo: float = math.nan
    l_eff_hi: float = math.nan
    slope: float = math.nan  # d: logit(error) per doubling of N
    slope_lo: float = math.nan
    slope_hi: float = math.nan
    metric: str = ""


def _fit_l(p: np.ndarray, em: np.ndarray) -> np.ndarray:
    """L minimising sum over sizes of (em - p^L)^2, per row (grid on log L; rows = replicates)."""
    p = np.atleast_2d(p)
    em = np.atleast_2d(em)
    out = np.empty(p.shape[0])
    for i in range(0, p.shape[0], 64):  # blocks keep replicates x grid x sizes small
        lp = np.log(np.clip(p[i : i + 64], 1e-300, 1))
        pred = np.exp(lp[:, None, :] * L_GRID[None, :, None])
        sse = np.nansum((em[i : i + 64, None, :] - pred) ** 2, axis=2)
        out[i : i + 64] = L_GRID[np.argmin(sse, axis=1)]
    return out


def line_fit(x: np.ndarray, z: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of z: (intercept, slope) of least squares over the columns in `use`."""
    xs, zs = x[use], np.atleast_2d(z)[:, use]
    xc = xs - xs.mean()
    slope = (zs - zs.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return zs.mean(axis=1) - slope * xs.mean(), slope


def _logit_error(acc: np.ndarray, floor: np.ndarray) -> np.ndarray:
    return logit(np.clip(1 - acc, floor, 1 - floor))


def schaeffer_test(
    design: SeedDesign,
    em: SizeCurve,
    acc: SizeCurve,
    tokens_per_size: np.ndarray,
    alpha: float = 0.05,
    metric: str = "gold_info_acc",
    n_problems: int = 0,
) -> SchaefferResult:
    """Smooth per-token trend -> predicted exact match, compared with the observed one.

    `em`, `acc`: per-size curves of exact match and per-token accuracy built from the *same*
    resample weights (so replicates pair). `tokens_per_size`: informative tokens scored per size
    (one half-token is the floor of the error, so a size without errors stays finite).
    `n_problems`: a gap smaller than half a problem (0.5 / n_problems) is below what the data
    resolve and never counts as a miss (observed 0 vs predicted 1e-6 is no miss).
    """
    x = design.log2_params
    n = x.size
    floor = 0.5 / np.maximum(np.asarray(tokens_per_size, float), 1.0)
    has_err = (1 - acc.mean) > floor  # sizes with at least one token error
    a_bonf = alpha / max(n, 1)
    table = pd.DataFrame({"size": design.sizes, "log2_params": x, "params": 2.0**x,
                          "exact_match": em.mean, "exact_match_lo": em.ci_lo, "exact_match_hi": em.ci_hi,
                          "token_error": 1 - acc.mean, "has_token_errors": has_err})

    def undetermined(why: str) -> SchaefferResult:
        return SchaefferResult("undetermined", why, table, metric=metric)

    if n < MIN_SIZES:
        return undetermined(f"only {n} sizes (need {MIN_SIZES})")
    if np.max(design.n_seeds) < 2:
        return undetermined("one checkpoint per size: the seed-to-seed spread is not measured, "
                            "so no departure from a smooth trend can be told from seed noise")
    if not np.all(np.isfinite(acc.mean)):
        return undetermined(f"no per-token accuracy ({metric}) at every size")
    if np.nanmax(em.mean) - np.nanmin(em.mean) < 0.1:
        return undetermined(
            f"exact match hardly changes across sizes (range {np.ptp(em.mean):.2f}), "
            "no transition to explain"
        )
    if has_err.sum() < 3:
        return undetermined(f"only {int(has_err.sum())} sizes make any token error (need 3) "
                            "— the per-token metric is saturated")
    z = _logit_error(acc.mean, floor)
    c, d = (float(v[0]) for v in line_fit(x, z, has_err))
    z_rep = _logit_error(acc.reps, floor)
    c_rep, d_rep = line_fit(x, z_rep, has_err)
    p_fit = 1 - expit(c + d * x)
    p_rep = 1 - expit(c_rep[:, None] + d_rep[:, None] * x[None, :])
    l_eff = float(_fit_l(p_fit, em.mean)[0])
    l_rep = _fit_l(p_rep, em.reps)
    pred, pred_rep = p_fit**l_eff, p_rep ** l_rep[:, None]
    resid = z - (c + d * x)
    resid_rep = z_rep - (c_rep[:, None] + d_rep[:, None] * x[None, :])
    diff, diff_rep = em.mean - pred, em.reps - pred_rep

    def band(reps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanquantile(reps, [a_bonf / 2, 1 - a_bonf / 2], axis=0)

    # percentile bands of the replicate *deviations*, centred on the full-data value
    r_lo, r_hi = band(resid_rep - np.nanmean(resid_rep, axis=0)) + resid
    d_lo, d_hi = band(diff_rep - np.nanmean(diff_rep, axis=0)) + diff
    p_lo, p_hi = band(pred_rep)
    table = table.assign(p_fit=p_fit, em_pred=pred, em_pred_lo=p_lo, em_pred_hi=p_hi,
                         em_minus_pred=diff, em_minus_pred_lo=d_lo, em_minus_pred_hi=d_hi,
                         logit_error=z, resid=np.where(has_err, resid, np.nan),
                         resid_lo=np.where(has_err, r_lo, np.nan),
                         resid_hi=np.where(has_err, r_hi, np.nan))
    (l_lo, l_hi), (s_lo, s_hi) = (np.nanquantile(v, [alpha / 2, 1 - alpha / 2])
                                  for v in (l_rep, d_rep))
    jump = has_err & ((r_lo > 0) | (r_hi < 0))
    tol = 0.5 / n_problems if n_problems else 0.0
    miss = (d_lo > tol) | (d_hi < -tol)
    common = dict(table=table, l_eff=l_eff, l_eff_lo=float(l_lo), l_eff_hi=float(l_hi),
                  slope=d, slope_lo=float(s_lo), slope_hi=float(s_hi), metric=metric)
    if jump.any():
        i = int(np.argmax(np.where(jump, np.abs(resid), -np.inf)))
        return SchaefferResult(
            "real transition",
            f"the per-token error itself departs from its smooth trend at {int(jump.sum())} of "
            f"{int(has_err.sum())} sizes (largest at {_fmt_params(x[i])}: logit residual "
            f"{resid[i]:+.2f} [{r_lo[i]:+.2f}, {r_hi[i]:+.2f}])",
            **common,
        )
    half = (d_hi - d_lo) / 2
    if not miss.any() and np.nanmax(half) > MAX_GAP_HALF_WIDTH:
        i = int(np.nanargmax(half))
        return SchaefferResult(
            "undetermined",
            f"observed exact match is within the CI of p^L_eff (L_eff = {l_eff:.3g}) at all {n} "
            f"sizes, but too imprecisely to call the jump metric-induced: at "
            f"{_fmt_params(x[i])} observed minus predicted is {diff[i]:+.3f} "
            f"[{d_lo[i]:+.3f}, {d_hi[i]:+.3f}] (exact match seed SD there "
            f"{em.sd[i]:.2f})",
            **common,
        )
    if not miss.any():
        i = int(np.argmax(np.abs(diff)))
        return SchaefferResult(
            "metric-induced",
            f"a smooth per-token trend (logit error {d:+.2f} [{s_lo:+.2f}, {s_hi:+.2f}] per "
            f"doubling) with L_eff = {l_eff:.3g} [{l_lo:.3g}, {l_hi:.3g}] predicts exact match "
            f"at all {n} sizes (largest gap {diff[i]:+.3f} [{d_lo[i]:+.3f}, {d_hi[i]:+.3f}] at "
            f"{_fmt_params(x[i])})",
            **common,
        )
    i = int(np.argmax(np.where(miss, np.abs(diff), -np.inf)))
    return SchaefferResult(
        "undetermined",
        f"the per-token trend is smooth but p^L_eff (L_eff = {l_eff:.3g}) misses observed exact "
        f"match at {int(miss.sum())} of {n} sizes (at {_fmt_params(x[i])}: observed "
        f"{em.mean[i]:.3f}, predicted {pred[i]:.3f} [{p_lo[i]:.3f}, {p_hi[i]:.3f}])",
        **common,
    )


def _fmt_params(log2_p: float) -> str:
    p = 2.0**log2_p
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if p >= div:
            return f"{p / div:.3g}{unit} params"
    return f"{p:.0f} params"


def verdict_sentence(task: str, family: str, res: SchaefferResult, sharp: Sharpness) -> str:
    """One sentence per task: what the data show and why, with the deciding numbers."""
    s = (f"{task} ({family}): exact match's sharpness is {100 * sharp.value:.0f}% "
         f"({sharp.fit} fit)" if sharp.status == "ok"
         else f"{task} ({family}): exact match's sharpness: {sharp.status}")
    label = {"metric-induced": "the jump is metric-induced",
             "real transition": "a real transition",
             "undetermined": "undetermined"}[res.verdict]
    return f"{s}; {label}: {res.reason}."


# ---------------------------------------------------------------------------------------------
# From records to curves (one family x task)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyCurves:
    design: SeedDesign
    models: tuple[str, ...]  # checkpoint per row of the matrices
    curves: dict[str, SizeCurve]  # "exact_match", "token_acc" (token-pooled), "token_logprob", ...
    tokens_per_size: np.ndarray  # informative tokens scored per size (full data)
    metric: str  # the per-token accuracy column used
    n_problems: int


def family_curves(
    records: pd.DataFrame,
    acc_col: str,
    len_col: str,
    extra_means: tuple[str, ...] = (),
    n_boot: int = 400,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> FamilyCurves:
    """Seed-aware per-size curves of one family on one task from per-record rows (columns
    model, size, params, problem_id, correct, `acc_col`, `len_col`, `extra_means`). Exact match
    and the extras are means per (checkpoint, problem) then over problems; per-token accuracy is
    token-pooled (hits / tokens) so p^L speaks of one token. One resample set serves them all,
    so replicates pair across metrics."""
    df = records.assign(_hits=records[acc_col] * records[len_col], _one=1.0)
    ckpt = df.groupby("model", sort=False).agg(size=("size", "first"), params=("params", "mean"))
    sizes = ckpt.groupby("size")["params"].mean().sort_values()
    order = ckpt.assign(_p=ckpt["size"].map(sizes)).sort_values(["_p"]).index
    size_index = {s: i for i, s in enumerate(sizes.index)}
    design = design_from(sizes.index, np.log2(sizes.to_numpy(float)),
                         ckpt.loc[order, "size"].map(size_index).to_numpy())
    cols = ["exact_match", "_hits", len_col, "_one", *extra_means]
    g = df.assign(exact_match=df["exact_match"].astype(float)).groupby(["model", "problem_id"])[cols]
    mean = g.mean()
    problems = mean.index.get_level_values("problem_id").unique()

    def mat(col: str) -> np.ndarray:
        return mean[col].unstack("problem_id").reindex(index=order, columns=problems).to_numpy(
            float)

    present = np.isfinite(mat("_one")).astype(float)
    wp, ws = size_seed_weights(design, len(problems), n_boot, seed)
    curves = {"exact_match": size_curve(design, mat("exact_match"), present, wp, ws, alpha)}
    hits, toks = mat("_hits"), mat(len_col)
    curves["token_acc"] = size_curve(design, hits, np.where(np.isfinite(hits), toks, 0), wp, ws,
                                     alpha)
    # both are shares: mean ± t·SE over 3 seeds can leave [0, 1]; the interval is clipped to it
    for key in ("exact_match", "token_acc"):
        c = curves[key]
        curves[key] = dataclasses.replace(c, ci_lo=np.clip(c.ci_lo, 0, 1), ci_hi=np.clip(c.ci_hi, 0, 1))
    for c in extra_means:
        v = mat(c)
        curves[c] = size_curve(design, v, np.isfinite(v).astype(float), wp, ws, alpha)
    tok_sum = np.nansum(np.where(np.isfinite(hits), toks, 0), axis=1)
    per_size = np.bincount(design.size_of, weights=tok_sum, minlength=len(design.sizes))
    return FamilyCurves(design, tuple(order), curves, per_size, acc_col, len(problems))

