"""The per-budget tables: accuracy, pass@k / majority@k / best-of-k, and their fits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalharness.analysis.budget import _fit_log_budget_from
from evalharness.analysis.records import CURVE, flatten
from evalharness.analysis.sampling import fit_coverage_from
from evalharness.stats import bootstrap_means, column_intervals


def curve_tables(pp: pd.DataFrame, ks: list[int], n_boot: int, alpha: float, seed: int | None):
    """Accuracy / coverage tables and fits for every curve, from one resample set per curve."""
    budget_rows, coverage_rows, fit_rows, cov_fit_rows = [], [], [], []
    metric_cols = ["exact_match"] + [f"{m}@{k}" for k in ks for m in ("pass", "maj", "bok")]
    for curve_key, cur in pp.groupby(CURVE, sort=True, observed=True):
        ident = dict(zip(CURVE, curve_key, strict=True))
        wide = cur.set_index(["problem_id", "budget"])[metric_cols].unstack("budget")
        wide = wide.loc[:, wide.notna().any()]  # k beyond every problem's n: no column
        values = wide.to_numpy(dtype=float)
        point = np.nanmean(values, axis=0)
        reps = bootstrap_means(values, n_boot, seed)
        lo, hi = column_intervals(reps, alpha)
        col = {key: i for i, key in enumerate(wide.columns)}
        budgets = np.sort(cur["budget"].unique())
        n_problems = int(cur["problem_id"].nunique())
        for b in budgets:
            i = col[("exact_match", b)]
            nb = int(cur.loc[cur["budget"] == b, "problem_id"].nunique())
            budget_rows.append(
                {
                    **ident,
                    "budget": b,
                    "n_problems": nb,
                    "exact_match": point[i],
                    "exact_match_lo": lo[i],
                    "exact_match_hi": hi[i],
                }
            )
            k_here = [k for k in ks if (f"pass@{k}", b) in col]
            for k in k_here:
                row = {**ident, "budget": b, "k": k}
                for m in ("pass", "maj", "bok"):
                    j = col[(f"{m}@{k}", b)]
                    row[f"{m}_at_k"], row[f"{m}_lo"], row[f"{m}_hi"] = point[j], lo[j], hi[j]
                coverage_rows.append(row)
            pass_idx = [col[(f"pass@{k}", b)] for k in k_here]
            cov = fit_coverage_from(np.asarray(k_here), point[pass_idx], reps[:, pass_idx], alpha)
            cov_fit_rows.append({**ident, "budget": b, **flatten(cov)})
        acc_idx = [col[("exact_match", b)] for b in budgets]
        # the fit compares budgets, so it reads only the problems every budget saw
        common = ~np.isnan(values[:, acc_idx]).any(axis=1)
        f_point, f_reps = point[acc_idx], reps[:, acc_idx]
        if not common.all():
            sub = values[common][:, acc_idx]
            f_point = sub.mean(axis=0) if len(sub) else np.full(len(acc_idx), np.nan)
            f_reps = bootstrap_means(sub, n_boot, seed) if len(sub) else f_reps * np.nan
        fit = _fit_log_budget_from(
            budgets.astype(float), f_point, f_reps, int(common.sum()), alpha
        )
        fit_rows.append({**ident, "problems": int(common.sum()),
                         "problem_set": (f"all {n_problems} problems" if common.all() else
                                         f"{int(common.sum())} of {n_problems} problems "
                                         "(those every budget saw)"), **flatten(fit)})
    return (
        pd.DataFrame(budget_rows),
        pd.DataFrame(coverage_rows),
        pd.DataFrame(fit_rows),
        pd.DataFrame(cov_fit_rows),
    )

