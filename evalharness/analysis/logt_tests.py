"""Checks of the log-T fit: lack of fit, re-selecting CIs, model forms, difficulty mix."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit, logit

from evalharness.analysis.emergence_tests import line_fit

# ---------------------------------------------------------------------------------------------
# log-T: lack of fit, window-reselecting CIs, logistic alternative, difficulty mix
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LackOfFit:
    status: str
    budgets: tuple[int, ...] = ()
    resid: tuple[float, ...] = ()
    resid_lo: tuple[float, ...] = ()
    resid_hi: tuple[float, ...] = ()
    stat: float = math.nan  # Wald chi-square of the residuals vs the per-budget means model
    df: int = 0
    p_value: float = math.nan


LACK_OF_FIT_RULE = (
    "residuals of the per-budget means from a + b*log2 T over the fitted window, CIs from the "
    "problem bootstrap; Wald chi-square r' pinv(Cov_boot(r)) r on (budgets - 2) df against the "
    "saturated per-budget means model (paired across budgets through the bootstrap covariance)"
)


def ols_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return line_fit(x, y, np.ones(x.size, bool))


def lack_of_fit(
    budgets: np.ndarray, point: np.ndarray, reps: np.ndarray, window: np.ndarray,
    alpha: float = 0.05,
) -> LackOfFit:
    """Lack-of-fit of the line over the window (`LACK_OF_FIT_RULE`); reps: n_boot x budgets."""
    used = tuple(int(b) for b in budgets[window])
    k = int(window.sum())
    if k < 3:
        return LackOfFit(f"no fit: only {k} unsaturated budgets (need 3)", used)
    x = np.log2(budgets[window].astype(float))
    y, yr = point[window], reps[:, window]
    a, b = (float(v[0]) for v in ols_rows(x, y))
    ar, br = ols_rows(x, yr)
    r = y - (a + b * x)
    rr = yr - (ar[:, None] + br[:, None] * x[None, :])
    rr = rr[np.all(np.isfinite(rr), axis=1)]
    lo, hi = np.quantile(rr - rr.mean(axis=0), [alpha / 2, 1 - alpha / 2], axis=0) + r
    df = k - 2
    if df == 0 or rr.shape[0] < 10:
        return LackOfFit("no test: residuals have 0 degrees of freedom", used, tuple(r),
                         tuple(lo), tuple(hi))
    cov = np.cov(rr, rowvar=False)
    stat = float(r @ np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ r)
    return LackOfFit("ok", used, tuple(map(float, r)), tuple(map(float, lo)),
                     tuple(map(float, hi)), stat, df, float(stats.chi2.sf(stat, df)))


@dataclass(frozen=True)
class ReselectingCI:
    b_lo: float
    b_hi: float
    fixed_lo: float
    fixed_hi: float
    valid_share: float  # share of replicates with >= 3 unsaturated budgets


def reselecting_ci(
    budgets: np.ndarray, point: np.ndarray, reps: np.ndarray, select, alpha: float = 0.05
) -> ReselectingCI:
    """Slope CI with the budget window chosen again (by `select(budgets, accuracy) -> mask`)
    inside each replicate, beside the CI with the full-data window held fixed."""
    budgets = np.asarray(budgets, float)
    fixed = select(budgets, point)
    slopes_fixed = (ols_rows(np.log2(budgets[fixed]), reps[:, fixed])[1]
                    if fixed.sum() >= 3 else np.full(reps.shape[0], np.nan))
    slopes = np.full(reps.shape[0], np.nan)
    for i, row in enumerate(reps):
        w = select(budgets, row)
        if w.sum() >= 3:
            slopes[i] = ols_rows(np.log2(budgets[w]), row[w])[1][0]
    q = [alpha / 2, 1 - alpha / 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(slopes, q) if np.isfinite(slopes).any() else (math.nan,) * 2
        flo, fhi = (np.nanquantile(slopes_fixed, q) if np.isfinite(slopes_fixed).any()
                    else (math.nan,) * 2)
    return ReselectingCI(float(lo), float(hi), float(flo), float(fhi),
                         float(np.isfinite(slopes).mean()))


def _bernoulli_ll(p: np.ndarray, s: np.ndarray, n: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(np.sum(s * np.log(p) + (n - s) * np.log(1 - p)))


def compare_log_models(budgets, successes, trials) -> pd.DataFrame:
    """AIC / BIC on the Bernoulli likelihood of the outcomes for accuracy vs x = log2 T:
    linear a + b*x (clipped to (0, 1)), logistic regression expit(c + d*x), and the 4-parameter
    logistic lo + (hi - lo)*expit((x - m)/s); each by maximum likelihood on per-budget counts."""
    t = np.asarray(budgets, float)
    s, n = np.asarray(successes, float), np.asarray(trials, float)
    ok = (t > 0) & (n > 0)
    t, s, n = t[ok], s[ok], n[ok]
    x = np.log2(t)
    rate = s / n
    n_obs = float(n.sum())
    rows = []

    def add(model: str, k: int, fun, starts, show=lambda th: th):  # model: the form's name
        best = None
        for p0 in starts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = optimize.minimize(lambda th: -_bernoulli_ll(fun(th), s, n), p0,
                                        method="Nelder-Mead",
                                        options={"maxiter": 2000, "xatol": 1e-6,
                                                 "fatol": 1e-8})
            if best is None or res.fun < best.fun:
                best = res
        ll = -float(best.fun)
        rows.append({"form": model, "k": k, "loglik": ll, "aic": 2 * k - 2 * ll,
                     "bic": k * math.log(n_obs) - 2 * ll, "params": " ".join(
                         f"{v:.4g}" for v in show(best.x))})

    if x.size < 2 or n_obs == 0 or s.sum() in (0, n_obs):
        return pd.DataFrame(rows)  # no fit: too few budgets, or every outcome alike
    a0, b0 = (float(v[0]) for v in ols_rows(x, rate))
    add("linear in log2 T", 2, lambda th: th[0] + th[1] * x, [[a0, b0]])
    lr = np.clip(rate, 0.02, 0.98)
    c0, d0 = (float(v[0]) for v in ols_rows(x, logit(lr)))
    add("logistic regression in log2 T", 2, lambda th: expit(th[0] + th[1] * x), [[c0, d0]])
    if x.size >= 4:
        span = max(x[-1] - x[0], 1.0)

        def four(th):
            # unconstrained: lo, hi in (0, 1) through expit, the width > 0 through exp (the
            # bounded L-BFGS-B took ~0.1 s a fit here, Nelder-Mead on this form ~0.01 s)
            return expit(th[0]) + (expit(th[1]) - expit(th[0])) * expit((x - th[2])
                                                                       / np.exp(th[3]))

        lo0, hi0 = logit(np.clip([rate.min(), rate.max()], 0.01, 0.99))
        add("4-parameter logistic in log2 T", 4, four,
            [[lo0, hi0, m, np.log(span / 4)] for m in np.linspace(x[0], x[-1], 3)],
            show=lambda th: (expit(th[0]), expit(th[1]), th[2], np.exp(th[3])))  # lo hi m s
    out = pd.DataFrame(rows)
    out["preferred_aic"] = out["aic"] == out["aic"].min()
    out["preferred_bic"] = out["bic"] == out["bic"].min()
    out["n_outcomes"] = int(n_obs)
    return out


def difficulty_buckets(difficulty, natural_len, max_buckets: int = 8) -> tuple[np.ndarray, str]:
    """Bucket label per problem and where it came from: the task's difficulty field (its own
    levels when few, quantiles otherwise), else quartiles of the natural thinking length."""
    d = pd.to_numeric(pd.Series(difficulty), errors="coerce").to_numpy(float)
    if np.isfinite(d).sum() and np.unique(d[np.isfinite(d)]).size > 1:
        levels = np.unique(d[np.isfinite(d)])
        if levels.size <= max_buckets:
            return np.array([f"{v:g}" if np.isfinite(v) else "" for v in d], object), "difficulty"
        return _quantile_labels(d, 4), "difficulty quartile"
    n = pd.to_numeric(pd.Series(natural_len), errors="coerce").to_numpy(float)
    if np.isfinite(n).sum() and np.unique(n[np.isfinite(n)]).size > 1:
        return _quantile_labels(n, 4), "natural thinking length quartile"
    return np.full(d.size, "", object), "none"


def _quantile_labels(v: np.ndarray, q: int) -> np.ndarray:
    # inf (never ended thinking by itself) falls in the top bucket
    ranked = pd.Series(np.where(np.isfinite(v), v, np.nan)).rank(method="first")
    ranked = ranked.fillna(np.inf) if np.isinf(v).any() else ranked
    cut = pd.qcut(ranked.replace(np.inf, ranked[np.isfinite(ranked)].max() + 1), q, labels=False,
                  duplicates="drop")
    lo_hi = pd.Series(v).groupby(cut).agg(["min", "max"])
    return np.array([f"Q{int(c) + 1} ({lo_hi.loc[c, 'min']:g}-{lo_hi.loc[c, 'max']:g})"
                     if c == c else "" for c in cut], object)


@dataclass(frozen=True)
class DifficultyMix:
    verdict: str  # "difficulty mix" | "not the difficulty mix" | "partly" | "undetermined"
    sentence: str
    median_step_share: float = math.nan
    step_model_gap: float = math.nan  # max |pooled - step model| over the window


def step_model(budgets, final_acc, natural_len) -> np.ndarray:
    """Pooled accuracy if each problem were solved (at its final accuracy) exactly when its
    natural thinking length fits in T: mean_i final_i * [L_i <= T]."""
    b = np.asarray(budgets, float)
    L = np.where(np.isfinite(natural_len), natural_len, np.inf)
    return (np.asarray(final_acc, float)[:, None] * (L[:, None] <= b[None, :])).mean(axis=0)


def difficulty_mix(
    pooled_slope: tuple[float, float, float], bucket_fits: pd.DataFrame, gap: float
) -> DifficultyMix:
    """Is the pooled log-T slope a mixture of per-difficulty steps? Rule: per-bucket curves
    step-like (median share of their rise in one doubling >= 0.6) and the step model within
    0.1 of the pooled curve -> "difficulty mix"; neither -> "not the difficulty mix"."""
    b, lo, hi = pooled_slope
    if not math.isfinite(b):
        return DifficultyMix("undetermined", "no pooled log-T fit to explain")
    sh = bucket_fits["step_share"].dropna() if not bucket_fits.empty else pd.Series(dtype=float)
    if sh.empty:
        return DifficultyMix("undetermined", "no difficulty buckets with a rise over T")
    med = float(sh.median())
    steps, tracks = med >= 0.6, math.isfinite(gap) and gap <= 0.1
    slopes = bucket_fits["b"].dropna()
    within = (f"within-bucket slopes {100 * slopes.min():+.1f} to {100 * slopes.max():+.1f} "
              "pts/doubling" if not slopes.empty else "no within-bucket slopes")
    gap_s = (f"the step model (each problem solved once its natural thinking fits in T) is "
             f"within {gap:.3f} of the pooled curve" if math.isfinite(gap)
             else "no natural thinking lengths for the step model")
    verdict = ("difficulty mix" if steps and (tracks or not math.isfinite(gap))
               else "not the difficulty mix" if not steps and not tracks else "partly")
    head = {"difficulty mix": "the pooled log-T slope is driven by the difficulty mix",
            "not the difficulty mix": "the pooled log-T slope is not explained by the "
                                      "difficulty mix",
            "partly": "the difficulty mix explains the pooled log-T slope only in part"}[verdict]
    pooled = f"{100 * b:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]" if math.isfinite(b) else "–"
    return DifficultyMix(
        verdict,
        f"{head}: pooled slope {pooled} pts/doubling; per-bucket curves put a median "
        f"{100 * med:.0f}% of their rise in one doubling of T; {within}; {gap_s}.",
        med, gap,
    )

