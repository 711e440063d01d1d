"""Accuracy vs thinking budget: the a + b log2 T fit, thinking usage, and the log-T checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evalharness.analysis.emergence_tests import monotone_sharpness
from evalharness.analysis.logt_tests import (
    DifficultyMix,
    compare_log_models,
    difficulty_buckets,
    difficulty_mix,
    lack_of_fit,
    ols_rows,
    reselecting_ci,
    step_model,
)
from evalharness.analysis.records import CURVE, POINT
from evalharness.stats import bootstrap_means, column_intervals, ols_lines, r_squared

FLOOR, CEILING, PLATEAU_TOL, MIN_POINTS = 0.02, 0.98, 0.02, 3
SATURATION_RULE = (
    f"fit over budgets T > 0 (log2 T is undefined at 0); cut the plateau: keep budgets up to "
    f"the first whose accuracy is within {PLATEAU_TOL} of the curve's maximum; drop budgets "
    f"with accuracy <= {FLOOR} or >= {CEILING} (floor/ceiling); need >= {MIN_POINTS} budgets; "
    f"points chosen on the full data and kept fixed across bootstrap replicates"
)


# ---------------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogBudgetFit:
    """accuracy = a + b * log2(T) over the unsaturated budgets (see `rule`)."""

    status: str  # "ok", or "no fit: <reason>"
    a: float = math.nan
    b: float = math.nan
    a_lo: float = math.nan
    a_hi: float = math.nan
    b_lo: float = math.nan
    b_hi: float = math.nan
    r2: float = math.nan
    gain_per_doubling: float = math.nan  # = b: accuracy gained each time T doubles
    budgets: tuple[int, ...] = ()
    n_problems: int = 0
    rule: str = SATURATION_RULE


def select_budgets(budgets: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the budgets the log-T fit uses (`SATURATION_RULE`)."""
    budgets = np.asarray(budgets, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    keep = (budgets > 0) & np.isfinite(accuracy)
    if keep.any():
        plateau_at = np.flatnonzero(keep & (accuracy >= accuracy[keep].max() - PLATEAU_TOL))[0]
        keep &= np.arange(budgets.size) <= plateau_at
    return keep & (accuracy > FLOOR) & (accuracy < CEILING)


def _fit_log_budget_from(
    budgets: np.ndarray, point: np.ndarray, reps: np.ndarray, n_problems: int, alpha: float
) -> LogBudgetFit:
    """The log-T fit from column means (`point`) and bootstrap replicates (`reps`)."""
    order = np.argsort(budgets)
    budgets, point, reps = budgets[order], point[order], reps[:, order]
    keep = select_budgets(budgets, point)
    used = tuple(int(b) for b in budgets[keep])
    if keep.sum() < MIN_POINTS:
        return LogBudgetFit(
            status=f"no fit: only {int(keep.sum())} unsaturated budgets (need {MIN_POINTS})",
            budgets=used,
            n_problems=n_problems,
        )
    x = np.log2(budgets[keep])
    a, b = (float(v[0]) for v in ols_lines(x, point[keep]))
    ra, rb = ols_lines(x, reps[:, keep])
    (a_lo, b_lo), (a_hi, b_hi) = column_intervals(np.column_stack([ra, rb]), alpha)
    return LogBudgetFit(
        status="ok",
        a=a,
        b=b,
        a_lo=float(a_lo),
        a_hi=float(a_hi),
        b_lo=float(b_lo),
        b_hi=float(b_hi),
        r2=r_squared(x, point[keep], a, b),
        gain_per_doubling=b,
        budgets=used,
        n_problems=n_problems,
    )


def fit_log_budget(
    per_problem: pd.DataFrame, n_boot: int = 1000, alpha: float = 0.05, seed: int | None = 0
) -> LogBudgetFit:
    """Fit accuracy = a + b * log2(T) for one (model, task) curve.

    `per_problem` has columns problem_id, budget, correct (one row per sample, or per problem
    with `correct` already a mean); it is averaged per (problem, budget) first. CIs for a and b
    are percentiles over `n_boot` resamples of problems; the rule for which budgets count as
    unsaturated is in the result's `rule`.
    """
    matrix = per_problem.groupby(["problem_id", "budget"])["exact_match"].mean().unstack("budget")
    values = matrix.to_numpy(dtype=float)
    point = np.nanmean(values, axis=0)
    reps = bootstrap_means(values, n_boot, seed)
    budgets = matrix.columns.to_numpy(dtype=float)
    return _fit_log_budget_from(budgets, point, reps, len(matrix), alpha)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def thinking_stats(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(POINT, sort=True, observed=True)
    stats = g.agg(
        n_samples=("exact_match", "size"),
        think_mean=("thinking_tokens", "mean"),
        cut_rate=("cut", "mean"),
        tokens_mean=("tokens", "mean"),
        ref_token_acc=("ref_token_acc", "mean"),
        ref_logprob_mean=("ref_logprob_mean", "mean"),
        params=("params", "first"),
    )
    if "flops" in df:
        stats = stats.join(g.agg(flops_mean=("flops", "mean"), flops_rule=("flops_rule", "first")))
    q = g["thinking_tokens"].quantile([0.1, 0.5, 0.9]).unstack()
    q.columns = ["think_p10", "think_p50", "think_p90"]
    return stats.join(q).reset_index()


def logt_tables(pp: pd.DataFrame, df: pd.DataFrame, n_boot: int, alpha: float,
                seed: int | None):
    """(logt_buckets, logt_bucket_fits, logt_tests, logt_models, logt_residuals) per greedy
    accuracy-vs-T curve with >= 3 budgets T > 0: per-difficulty curves and slopes, lack of fit,
    the window-reselecting CI, linear vs logistic by AIC/BIC, and the difficulty-mix verdict."""
    diff = df.groupby(["task", "problem_id"])["difficulty"].first()
    top = df[df["budget"] == df.groupby(CURVE)["budget"].transform("max")]
    natural = top.groupby(CURVE + ["problem_id"])["natural_thinking_tokens"].mean()
    greedy = set(df.loc[df["greedy"], "model"])
    buckets_rows, fit_rows, test_rows, model_rows, resid_rows = [], [], [], [], []
    for key, cur in pp[pp["model"].isin(greedy)].groupby(CURVE, sort=True, observed=True):
        ident = dict(zip(CURVE, key, strict=True))
        wide = cur.pivot_table(index="problem_id", columns="budget", values="exact_match")
        budgets = wide.columns.to_numpy(dtype=float)
        if (budgets > 0).sum() < MIN_POINTS:
            continue
        values = wide.to_numpy(dtype=float)
        point = np.nanmean(values, axis=0)
        reps = bootstrap_means(values, n_boot, seed)
        window = select_budgets(budgets, point)
        fixed = _fit_log_budget_from(budgets, point, reps, len(wide), alpha)
        lof = lack_of_fit(budgets, point, reps, window, alpha)
        for t, r, lo, hi in zip(lof.budgets if lof.resid else (), lof.resid, lof.resid_lo,
                                lof.resid_hi, strict=True):
            resid_rows.append({**ident, "budget": t, "resid": r, "resid_lo": lo, "resid_hi": hi})
        re = reselecting_ci(budgets, point, reps, select_budgets, alpha)
        counts = cur.groupby("budget")[["c", "n"]].sum()
        for scope, mask in (("window", window), ("all T > 0", budgets > 0)):
            if mask.sum() >= 2:
                m = compare_log_models(budgets[mask], counts["c"].to_numpy()[mask],
                                               counts["n"].to_numpy()[mask])
                model_rows += [{**ident, "scope": scope, **r} for r in m.to_dict("records")]
        # difficulty buckets: the task's field, else quartiles of the natural thinking length
        pids = wide.index.to_numpy()
        nat = natural.reindex([(*key, p) for p in pids]).to_numpy(dtype=float)
        has_nat = np.isfinite(nat).any()
        nat = np.where(np.isfinite(nat), nat, np.inf) if has_nat else nat
        labels, source = difficulty_buckets(
            diff.reindex([(ident["task"], p) for p in pids]).to_numpy(dtype=float), nat)
        bfits = []
        for b in sorted({lab for lab in labels if lab}):
            sub = values[labels == b]
            acc_b = np.nanmean(sub, axis=0)
            for t, a in zip(budgets, acc_b, strict=True):
                buckets_rows.append({**ident, "bucket": b, "bucket_source": source,
                                     "budget": t, "exact_match": a, "n_problems": len(sub)})
            pos = budgets > 0
            step = monotone_sharpness(np.log2(budgets[pos]), acc_b[pos], sigmoid=False)
            row = {**ident, "bucket": b, "bucket_source": source, "n_problems": len(sub),
                   "step_share": step.value, "step_status": step.status}
            if window.sum() >= 2 and np.ptp(acc_b[window]) == 0:
                row.update(b=math.nan, b_lo=math.nan, b_hi=math.nan,
                           status="no fit: zero variance (flat over the pooled window)")
            elif window.sum() >= 2:
                xw = np.log2(budgets[window])
                r_b = bootstrap_means(sub, n_boot, seed)[:, window]
                b0 = float(ols_rows(xw, acc_b[window])[1][0])
                lo, hi = column_intervals(ols_rows(xw, r_b)[1][:, None], alpha)
                row.update(b=b0, b_lo=float(lo[0]), b_hi=float(hi[0]), status="ok")
            else:
                row.update(b=math.nan, b_lo=math.nan, b_hi=math.nan,
                           status="no fit: fewer than 2 budgets in the pooled window")
            bfits.append(row)
        fit_rows += bfits
        bf = pd.DataFrame(bfits)
        gap = math.nan
        if has_nat and window.any():
            final = values[:, -1]
            pred = step_model(budgets, np.nan_to_num(final), nat)
            gap = float(np.nanmax(np.abs(point - pred)[window]))
        mix = (difficulty_mix((fixed.b, fixed.b_lo, fixed.b_hi), bf, gap)
               if source != "none" else DifficultyMix(
                   "undetermined", "no difficulty field or natural thinking length to "
                   "break the curve down by"))
        best = {}
        for scope in ("window", "all T > 0"):
            ms = [r for r in model_rows if r["scope"] == scope and all(
                r[c] == ident[c] for c in CURVE)]
            for crit in ("aic", "bic"):
                won = [r["form"] for r in ms if r[f"preferred_{crit}"]]
                best[f"preferred_{crit}_{scope.split()[0]}"] = won[0] if won else ""
        test_rows.append({
            **ident, "fit_status": fixed.status, "b": fixed.b, "b_lo_fixed": fixed.b_lo,
            "b_hi_fixed": fixed.b_hi, "b_lo_reselect": re.b_lo, "b_hi_reselect": re.b_hi,
            "reselect_valid_share": re.valid_share, "window": " ".join(map(str, lof.budgets)),
            "lof_status": lof.status, "lof_chi2": lof.stat, "lof_df": lof.df,
            "lof_p": lof.p_value, "bucket_source": source, "mix_verdict": mix.verdict,
            "mix_sentence": mix.sentence, "median_step_share": mix.median_step_share,
            "step_model_gap": mix.step_model_gap, **best,
        })
    return tuple(pd.DataFrame(r) for r in (buckets_rows, fit_rows, test_rows, model_rows,
                                           resid_rows))

