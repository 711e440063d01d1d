"""Analysis: score rows in, tables and fits out (pure; no I/O except `Analysis.write`).

The unit of resampling everywhere is the *problem*: samples and budgets of one problem share a
prompt (and, in the one-pass sweep, a thinking prefix), so they are not independent. Every CI
here is a percentile bootstrap over problems, and one set of problem resamples is shared by all
budgets and all k of a curve, so a fit's replicate sees one consistent resample.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.isotonic import IsotonicRegression

from evalharness import buy, science
from evalharness.diagnostics import BITE_RULE, budget_control
from evalharness.flops import RULE_FALLBACK, add_flops
from evalharness.metrics import (
    best_of_k_weights,
    bootstrap_means,
    majority_at_k_counts,
    pass_at_k,
)
from evalharness.scoring import canonical_answer
from evalharness.scoring.columns import EMERGENCE_COLUMNS

CURVE = ["model", "task", "extensions"]  # one accuracy-vs-budget curve
POINT = CURVE + ["budget"]  # one point on it

FLOOR, CEILING, PLATEAU_TOL, MIN_POINTS = 0.02, 0.98, 0.02, 3
SATURATION_RULE = (
    f"fit over budgets T > 0 (log2 T is undefined at 0); cut the plateau: keep budgets up to "
    f"the first whose accuracy is within {PLATEAU_TOL} of the curve's maximum; drop budgets "
    f"with accuracy <= {FLOOR} or >= {CEILING} (floor/ceiling); need >= {MIN_POINTS} budgets; "
    f"points chosen on the full data and kept fixed across bootstrap replicates"
)
COVERAGE_RULE = (
    "fit log(-log pass@k) = log c - beta * log k by least squares over k with "
    f"0 < pass@k < 1; need >= {MIN_POINTS} values of k"
)
SHARPNESS_RULE = (science.MONOTONE_SHARPNESS_RULE + "; on the per-size means over seeds; CI: "
                  + science.SHARPNESS_CI_RULE)
FLOPS_RULE = (
    "inference FLOPs per problem = mean over samples of the record's FLOPs * n, a record with "
    "L = prompt + generated tokens costing 2 * N * L + 2 * n_layers * d_attn * L(L+1)/2 "
    "(Kaplan: N = non-embedding parameters, d_attn = heads * head_dim, prefill included; "
    "column flops_rule), or 2 * params * L where the model's config is unknown; flops_2n keeps "
    "2 * params * tokens * n for comparison; accuracy = expected majority vote over n samples; "
    "frontier = points no other point of the task beats on both FLOPs (<=) and accuracy (>=)"
)
# exact match, the registry's emergence columns (scoring.columns), and derived predictions
EMERGENCE_METRICS = ("em", "ref_exact", *EMERGENCE_COLUMNS, "pred_em_ref", "pred_em_gold")
SPAN_METRICS = ("ref_token_acc", "gold_token_acc", "gold_answer_acc", "ref_logprob_mean")


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


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intercepts and slopes of y (replicates x points) on x, one least-squares line per row."""
    y = np.atleast_2d(y)
    xc = x - x.mean()
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return y.mean(axis=1) - slope * x.mean(), slope


def _r2(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    resid = y - (a + b * x)
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else math.nan


def _quantiles(reps: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column; a replicate that is NaN in a column (no problem of that
    column drawn) is left out of that column only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN interval
        lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
    return lo, hi


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
    a, b = (float(v[0]) for v in _ols(x, point[keep]))
    ra, rb = _ols(x, reps[:, keep])
    (a_lo, b_lo), (a_hi, b_hi) = _quantiles(np.column_stack([ra, rb]), alpha)
    return LogBudgetFit(
        status="ok",
        a=a,
        b=b,
        a_lo=float(a_lo),
        a_hi=float(a_hi),
        b_lo=float(b_lo),
        b_hi=float(b_hi),
        r2=_r2(x, point[keep], a, b),
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
    matrix = per_problem.groupby(["problem_id", "budget"])["correct"].mean().unstack("budget")
    values = matrix.to_numpy(dtype=float)
    point = np.nanmean(values, axis=0)
    reps = bootstrap_means(values, n_boot, seed)
    budgets = matrix.columns.to_numpy(dtype=float)
    return _fit_log_budget_from(budgets, point, reps, len(matrix), alpha)


def _fit_coverage_from(
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
                           ks=tuple(int(k) for k in ks[keep]))  # fmt: skip
    x = np.log(ks[keep].astype(float))

    def transform(p: np.ndarray) -> np.ndarray:
        return np.log(-np.log(np.clip(p, 1e-12, 1 - 1e-12)))

    y = transform(point[keep])
    log_c, slope = (float(v[0]) for v in _ols(x, y))
    r_log_c, r_slope = _ols(x, transform(reps[:, keep]))
    (c_lo, b_lo), (c_hi, b_hi) = _quantiles(np.column_stack([np.exp(r_log_c), -r_slope]), alpha)
    return CoverageFit(
        status="ok",
        c=math.exp(log_c),
        beta=-slope,
        c_lo=float(c_lo),
        c_hi=float(c_hi),
        beta_lo=float(b_lo),
        beta_hi=float(b_hi),
        r2=_r2(x, y, log_c, slope),
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
    return _fit_coverage_from(np.asarray(ks), np.nanmean(values, axis=0), reps, alpha)


# ---------------------------------------------------------------------------------------------
# Emergence: sharpness and the EM jump
# ---------------------------------------------------------------------------------------------


def _curve(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, finite points with duplicate x averaged (two checkpoints of equal size)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    s = pd.Series(y[ok]).groupby(x[ok]).mean()
    return s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)


def steepest_doubling(log2_params, y) -> tuple[float, float]:
    """(sharpness, start of the steepest doubling in log2 params); see `sharpness`."""
    x, v = _curve(log2_params, y)
    if x.size >= 2:
        # on the isotonic (monotone) fit of the curve: a dip below the end points used to give
        # shares above 100% (issue #15); a monotone curve's one-doubling rise <= its total rise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "auto" on few points warns
            v = IsotonicRegression(increasing="auto").fit(x, v).predict(x)
    if x.size < 2 or v[-1] == v[0]:
        return math.nan, math.nan
    total = v[-1] - v[0]
    if x[-1] - x[0] <= 1:
        return 1.0, float(x[0])
    # rise(s) = f(s+1) - f(s) is piecewise linear in s, with kinks where s or s+1 is a model,
    # so its maximum is at one of those candidates.
    starts = np.concatenate([x, x - 1])
    starts = np.unique(starts[(starts >= x[0]) & (starts <= x[-1] - 1)])
    shares = (np.interp(starts + 1, x, v) - np.interp(starts, x, v)) / total
    best = int(np.argmax(shares))
    return float(shares[best]), float(starts[best])


def sharpness(log2_params, y) -> float:
    """Share of a metric's total change that happens in the steepest doubling of model size.

    Models are points (log2 params, y), joined by straight lines (duplicate sizes averaged).
    Total change R = y(largest model) - y(smallest model). For each window [s, s + 1] of one
    doubling inside the range, its change is f(s + 1) - f(s); sharpness = max over s of that
    change / R. A straight line over D doublings gives 1/D; a step gives 1. It is 1 when the
    models span at most one doubling, NaN with fewer than two sizes or R = 0; a curve that
    overshoots can exceed 1. Works for falling metrics too (R < 0): it is the share of the fall.
    """
    return steepest_doubling(log2_params, y)[0]


@dataclass(frozen=True)
class EmergenceSpan:
    """The size range over which EM climbs from `lo` to `hi`, with monotone support."""

    lo_log2_params: float
    hi_log2_params: float
    doublings: float
    em_share: float  # share of EM's total rise inside the span
    metric_share: float  # share of the continuous metric's total rise inside the same span
    monotone: bool = True  # EM never falls from one size to the next inside the span


SPAN_RULE = (
    "on the per-size means of EM over seeds: from the largest size at or below which every "
    "size has EM < lo to the smallest size at or above which every size has EM > hi (so no "
    "single weak or lucky size can open or close the span); none when no size starts below lo "
    "or none ends above hi; 'monotone' says whether EM falls anywhere inside it"
)


def emergence_span(
    log2_params, em, metric, lo: float = 0.2, hi: float = 0.8
) -> EmergenceSpan | None:
    """The span EM needs to climb from `lo` to `hi` (`SPAN_RULE`), measured between real sizes
    (duplicate sizes, seeds, averaged first), and the share of each metric's total rise
    (largest size minus smallest) inside it. None without such a climb.

    Monotone support: the lower end is the last size of the run of sizes, from the smallest,
    that all sit below `lo`; the upper end the first of the run, to the largest, that all sit
    above `hi`. Picking the narrowest (below, above) pair instead lets one weak checkpoint
    just before a strong one report a sudden jump that the rest of the curve does not show.
    Between real sizes, not interpolated crossings: interpolating would cap EM's share at
    (hi - lo) / total rise by construction.
    """
    x, e = _curve(log2_params, em)
    if x.size < 2:
        return None
    below = np.cumprod(e < lo).astype(bool)  # sizes that, with all smaller ones, sit below lo
    above = np.cumprod((e > hi)[::-1]).astype(bool)[::-1]  # with all larger ones, above hi
    if not below.any() or not above.any():
        return None
    i, j = int(np.flatnonzero(below)[-1]), int(np.flatnonzero(above)[0])
    if j <= i:
        return None
    x1, x2 = float(x[i]), float(x[j])
    monotone = bool(np.all(np.diff(e[i : j + 1]) >= 0))

    def share(xs, ys) -> float:
        if xs.size >= 2:  # on the isotonic fit: a share of a monotone rise stays within [0, 1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                ys = IsotonicRegression(increasing="auto").fit(xs, ys).predict(xs)
        total = ys[-1] - ys[0]
        if xs.size < 2 or total == 0:
            return math.nan
        return float((np.interp(x2, xs, ys) - np.interp(x1, xs, ys)) / total)

    mx, mv = _curve(log2_params, metric)
    return EmergenceSpan(x1, x2, x2 - x1, share(x, e), share(mx, mv), monotone)


# ---------------------------------------------------------------------------------------------
# Compute frontier
# ---------------------------------------------------------------------------------------------


def pareto_frontier(flops, accuracy) -> np.ndarray:
    """Mask of points no other point beats: none has flops <= and accuracy >= (one strictly).

    Of exact duplicates one is kept. NaN points are never on the frontier.
    """
    f = np.asarray(flops, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    ok = np.isfinite(f) & np.isfinite(a)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((-a[idx], f[idx]))]  # cheapest first, best first within equal cost
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(a[order])[:-1]])
    out = np.zeros(f.size, dtype=bool)
    out[order] = a[order] > best_before
    return out


# ---------------------------------------------------------------------------------------------
# Per-problem aggregation
# ---------------------------------------------------------------------------------------------


def k_grid(n: int) -> list[int]:
    """Every k up to 16 samples, then powers of two plus n itself (keeps tables short)."""
    if n <= 16:
        return list(range(1, n + 1))
    return sorted({2**i for i in range(int(math.log2(n)) + 1)} | {n})


_NEEDED = POINT + [
    "problem_id", "sample", "pred", "correct", "thinking_tokens", "cut", "prompt_tokens",
    "generated_tokens", "ref_len", "ref_token_acc", "ref_logprob_mean", "ref_logprob_sum",
    "ref_prob", "edit_distance", "answer_logprob_mean", "gold_think_acc", "gold_answer_acc",
    "gold_token_acc", "gold_answer_logprob", "gold_answer_len", "gold_think_len",
    "answer_type", "params", "family", "temperature", "difficulty", *EMERGENCE_COLUMNS,
    "natural_thinking_tokens", "model_seed", "size", "gold_info_acc", "gold_info_logprob",
    "gold_info_len", "scratch_edit_distance", "top_p", "run_id", "spec_label",
]  # fmt: skip
_NEEDED = list(dict.fromkeys(_NEEDED))


def _prepare(scores: pd.DataFrame) -> pd.DataFrame:
    """The columns analysis reads, with defaults for frames not joined with manifests."""
    df = scores[[c for c in _NEEDED if c in scores]].copy()
    for name in _NEEDED:
        if name not in df:
            df[name] = np.nan
    if df["answer_type"].isna().all():
        df["answer_type"] = "string"
    df["family"] = df["family"].astype(object).where(df["family"].notna(), df["model"])
    # a family curve joins sizes of one configuration: runs of another spec are their own
    # family (the spec label load_scores gives them)
    spec = df["spec_label"].astype(object).fillna("").astype(str)
    df["family"] = df["family"].astype(str) + np.where(spec != "", " [" + spec + "]", "")
    df["params"] = pd.to_numeric(df["params"], errors="coerce").astype(float)
    df["extensions"] = df["extensions"].fillna(0).astype(np.int64)
    df["correct"] = df["correct"].astype(bool)
    df["tokens"] = df["prompt_tokens"].astype(float) + df["generated_tokens"].astype(float)
    # A greedy sweep and a best-of-N run of one model are different curves, never pooled into
    # one point: sampled runs are labelled by their sampling settings.
    temp = pd.to_numeric(df["temperature"], errors="coerce").fillna(0.0)
    df["greedy"] = temp == 0
    df["base_model"] = df["model"]  # the checkpoint, before the sampled-run label
    # a size groups the seeds of one model shape; old results (no column): each model its own
    df["size"] = df["size"].astype(object).where(df["size"].notna(), df["model"])
    df["base_size"] = df["size"]  # what one buys: seeds are its replicates
    top_p = pd.to_numeric(df["top_p"], errors="coerce").fillna(1.0)
    # every decoding setting in words, so no table can put a greedy and a sampled row
    # under one label ("greedy", "t=0.7", "t=0.7 top-p=0.95")
    df["decoding"] = np.where(df["greedy"], "greedy", "t=" + temp.map("{:g}".format)) + np.where(
        top_p < 1, " top-p=" + top_p.map("{:g}".format), "")
    if (~df["greedy"]).any():
        n = df.groupby(["model", "task", "temperature", "top_p"],
                       dropna=False)["sample"].transform("max") + 1
        tag = (" (n=" + n.astype(str) + ", temp=" + temp.astype(str)
               + np.where(top_p < 1, ", top_p=" + top_p.astype(str), "") + ")")
        df["model"] = df["model"].where(df["greedy"], df["model"].astype(str) + tag)
        df["size"] = df["size"].where(df["greedy"], df["size"].astype(str) + tag)
        df["base_family"] = df["family"]
        df["family"] = df["family"].where(df["greedy"], df["family"] + " (" + df["decoding"] + ")")
    return df


def _vote_classes(df: pd.DataFrame) -> np.ndarray:
    """Vote class per row: 0 = correct (all correct answers agree with the reference, hence
    with each other, so they are one class), -1 = no answer, 1.. = distinct wrong answers."""
    # Canonicalise once per distinct (prediction, answer type).
    p_codes, p_uniq = pd.factorize(df["pred"].astype(object))
    t_codes, t_uniq = pd.factorize(df["answer_type"].astype(str))
    pairs, inverse = np.unique(p_codes * len(t_uniq) + t_codes, return_inverse=True)
    canon = np.array(
        [
            canonical_answer(p_uniq[c // len(t_uniq)] if c >= 0 else None, t_uniq[c % len(t_uniq)])
            for c in pairs
        ],
        dtype=object,
    )[inverse.reshape(-1)]
    codes, _ = pd.factorize(canon)
    return np.where(df["correct"].to_numpy(), 0, np.where(codes < 0, -1, codes + 1))


def _majority_columns(gid: np.ndarray, votes: np.ndarray, n: np.ndarray, ks: list[int]):
    """maj@k per problem group for each k (NaN where k > n), via cached vote profiles."""
    n_groups = n.size
    width = int(votes.max()) + 2
    combos, counts = np.unique(gid * width + (votes + 1), return_counts=True)
    g, cls = combos // width, combos % width - 1
    right = np.zeros(n_groups, dtype=np.int64)
    abstain = np.zeros(n_groups, dtype=np.int64)
    right[g[cls == 0]] = counts[cls == 0]
    abstain[g[cls == -1]] = counts[cls == -1]
    wrong = cls > 0
    wg, wc = g[wrong], counts[wrong]
    order = np.lexsort((-wc, wg))
    wg, wc = wg[order], wc[order]
    split = np.split(wc, np.searchsorted(wg, np.arange(1, n_groups)))
    profiles = [
        ((int(r),) if r else (), tuple(int(v) for v in w), int(a))
        for r, w, a in zip(right, split, abstain, strict=True)
    ]
    ids: dict[tuple, int] = {}
    pid = np.array([ids.setdefault(p, len(ids)) for p in profiles], dtype=np.int64)
    table = np.full((len(ids), len(ks)), np.nan)
    for prof, i in ids.items():
        size = sum(prof[0]) + sum(prof[1]) + prof[2]
        for j, k in enumerate(ks):
            if k == 1:
                table[i, j] = sum(prof[0]) / size  # one sample: its own correctness
            elif k <= size:
                table[i, j] = majority_at_k_counts(prof[0], prof[1], prof[2], k)
    out = table[pid]
    out[np.asarray(ks)[None, :] > n[:, None]] = np.nan
    return out


def _best_of_columns(
    gid: np.ndarray, score: np.ndarray, correct: np.ndarray, n: np.ndarray, ks: list[int]
):
    """Expected best-of-k (selected by the answer's mean log-prob) per problem group."""
    s = np.where(np.isnan(score), -np.inf, score)
    order = np.lexsort((-s, gid))
    g, s, c = gid[order], s[order], correct[order].astype(float)
    start = np.searchsorted(g, g)  # first row of each row's group (g is sorted)
    rank = np.arange(g.size) - start
    new_tie = np.concatenate([[True], (g[1:] != g[:-1]) | (s[1:] != s[:-1])])
    tie = np.cumsum(new_tie) - 1
    c = (np.bincount(tie, weights=c) / np.bincount(tie))[tie]
    out = np.empty((n.size, len(ks)))
    for j, k in enumerate(ks):
        w = best_of_k_weights(n[g], rank, k)
        out[:, j] = np.bincount(g, weights=w * c, minlength=n.size)
    out[np.asarray(ks)[None, :] > n[:, None]] = np.nan
    return out


def per_problem(scores: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """One row per (model, task, extensions, budget, problem): n, c, acc, and pass/maj/best-of
    at every k of the global grid (columns ``pass@k``, ``maj@k``, ``bok@k``); and that grid."""
    return _per_problem(_prepare(scores))


def _per_problem(df: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    keys = POINT + ["problem_id"]
    gid = df.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    first = np.unique(gid, return_index=True)[1]
    out = df.iloc[first][keys].reset_index(drop=True)
    n = np.bincount(gid)
    c = np.bincount(gid, weights=df["correct"].to_numpy(dtype=float))
    out["n"], out["c"], out["acc"] = n, c, c / n
    out["tokens"] = np.bincount(gid, weights=df["tokens"].to_numpy()) / n
    if "flops" in df:  # mean inference FLOPs of one sample of this problem
        out["flops"] = np.bincount(gid, weights=df["flops"].to_numpy(dtype=float)) / n
    ks = sorted({k for m in np.unique(n) for k in k_grid(int(m))})
    pk = pass_at_k(n[:, None], c[:, None], np.asarray(ks)[None, :])  # NaN where k > n
    maj = _majority_columns(gid, _vote_classes(df), n, ks)
    bok = _best_of_columns(
        gid, df["answer_logprob_mean"].to_numpy(dtype=float), df["correct"].to_numpy(), n, ks
    )
    cols = {}
    for j, k in enumerate(ks):
        cols[f"pass@{k}"], cols[f"maj@{k}"], cols[f"bok@{k}"] = pk[:, j], maj[:, j], bok[:, j]
    return pd.concat([out, pd.DataFrame(cols)], axis=1), ks


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _thinking_stats(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(POINT, sort=True, observed=True)
    stats = g.agg(
        n_samples=("correct", "size"),
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


def _curve_tables(pp: pd.DataFrame, ks: list[int], n_boot: int, alpha: float, seed: int | None):
    """Accuracy / coverage tables and fits for every curve, from one resample set per curve."""
    budget_rows, coverage_rows, fit_rows, cov_fit_rows = [], [], [], []
    metric_cols = ["acc"] + [f"{m}@{k}" for k in ks for m in ("pass", "maj", "bok")]
    for curve_key, cur in pp.groupby(CURVE, sort=True, observed=True):
        ident = dict(zip(CURVE, curve_key, strict=True))
        wide = cur.set_index(["problem_id", "budget"])[metric_cols].unstack("budget")
        wide = wide.loc[:, wide.notna().any()]  # k beyond every problem's n: no column
        values = wide.to_numpy(dtype=float)
        point = np.nanmean(values, axis=0)
        reps = bootstrap_means(values, n_boot, seed)
        lo, hi = _quantiles(reps, alpha)
        col = {key: i for i, key in enumerate(wide.columns)}
        budgets = np.sort(cur["budget"].unique())
        n_problems = int(cur["problem_id"].nunique())
        for b in budgets:
            i = col[("acc", b)]
            nb = int(cur.loc[cur["budget"] == b, "problem_id"].nunique())
            budget_rows.append(
                {
                    **ident,
                    "budget": b,
                    "n_problems": nb,
                    "accuracy": point[i],
                    "acc_lo": lo[i],
                    "acc_hi": hi[i],
                }  # fmt: skip
            )
            k_here = [k for k in ks if (f"pass@{k}", b) in col]
            for k in k_here:
                row = {**ident, "budget": b, "k": k}
                for m in ("pass", "maj", "bok"):
                    j = col[(f"{m}@{k}", b)]
                    row[f"{m}_at_k"], row[f"{m}_lo"], row[f"{m}_hi"] = point[j], lo[j], hi[j]
                coverage_rows.append(row)
            pass_idx = [col[(f"pass@{k}", b)] for k in k_here]
            cov = _fit_coverage_from(np.asarray(k_here), point[pass_idx], reps[:, pass_idx], alpha)
            cov_fit_rows.append({**ident, "budget": b, **_flat(cov)})
        acc_idx = [col[("acc", b)] for b in budgets]
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
                                         "(those every budget saw)"), **_flat(fit)})
    return (
        pd.DataFrame(budget_rows),
        pd.DataFrame(coverage_rows),
        pd.DataFrame(fit_rows),
        pd.DataFrame(cov_fit_rows),
    )


def _flat(obj) -> dict:
    d = asdict(obj)
    return {k: (" ".join(map(str, v)) if isinstance(v, tuple) else v) for k, v in d.items()}


def emergence_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model (at its largest budget): exact match beside the continuous metrics.

    Means are over records (one per problem x sample). ``ref_exact`` is the share of records
    whose every reference token is the argmax under teacher forcing. Predicted EMs assume
    independent tokens: ``pred_em_ref`` = p^L with p the token-pooled reference accuracy and
    L the mean reference length; ``pred_em_gold`` the same over all gold tokens (thinking +
    answer) and ``pred_em_gold_answer`` over the gold answer tokens only.
    """
    return _emergence(_prepare(scores))


_EMERGENCE_NAMED = {"ref_token_acc", "ref_logprob_mean", "ref_logprob_sum", "edit_distance",
                    "gold_answer_acc", "gold_token_acc", "gold_info_acc", "gold_info_logprob",
                    "gold_info_len", "scratch_edit_distance"}


def _emergence_records(df: pd.DataFrame) -> pd.DataFrame:
    """The records emergence compares across sizes: one configuration per family curve. A
    family's sampled runs and its runs of another spec are families of their own (`_prepare`
    labels them); within one, greedy runs where there are any, the fewest "Wait" extensions,
    and one budget for every size: the budget the most sizes ran (the largest among ties), so
    no curve joins sizes read at different budgets. Sizes without that budget are left out."""
    base = df["base_family"] if "base_family" in df else df["family"]
    has_greedy = df.groupby([base, df["task"]])["greedy"].transform("any")
    df = df[df["greedy"] | ~has_greedy]
    least_ext = df.groupby(["model", "task"])["extensions"].transform("min")
    df = df[df["extensions"] == least_ext]
    keep = []
    for _, g in df.groupby(["family", "task"], sort=False):
        sizes = g.groupby("budget")["size"].nunique()
        best = sizes[sizes == sizes.max()].index.max()
        keep.append(g[g["budget"] == best])
    return pd.concat(keep).copy() if keep else df.iloc[0:0].copy()


def _emergence(df: pd.DataFrame) -> pd.DataFrame:
    df = _emergence_records(df)
    df["ref_exact"] = (df["ref_token_acc"] == 1).astype(float)
    df["_ref_hits"] = df["ref_token_acc"] * df["ref_len"]
    df["_gold_len"] = df["gold_answer_len"] + df["gold_think_len"]
    df["_gold_hits"] = df["gold_token_acc"] * df["_gold_len"]
    df["_gold_ans_hits"] = df["gold_answer_acc"] * df["gold_answer_len"]
    g = df.groupby(["family", "task", "model"], sort=True, observed=True)
    out = g.agg(
        params=("params", "first"),
        size=("size", "first"),
        model_seed=("model_seed", "first"),
        budget=("budget", "first"),
        n_problems=("problem_id", "nunique"),
        n_samples=("correct", "size"),
        em=("correct", "mean"),
        ref_exact=("ref_exact", "mean"),
        ref_token_acc=("ref_token_acc", "mean"),
        ref_logprob_mean=("ref_logprob_mean", "mean"),
        ref_logprob_sum=("ref_logprob_sum", "mean"),
        ref_prob=("ref_prob", "mean"),
        edit_distance=("edit_distance", "mean"),
        ref_len=("ref_len", "mean"),
        gold_n=("gold_token_acc", "count"),
        gold_think_acc=("gold_think_acc", "mean"),
        gold_answer_acc=("gold_answer_acc", "mean"),
        gold_token_acc=("gold_token_acc", "mean"),
        gold_answer_logprob=("gold_answer_logprob", "mean"),
        gold_answer_len=("gold_answer_len", "mean"),
        gold_think_len=("gold_think_len", "mean"),
        _ref_hits=("_ref_hits", "sum"),
        _ref_tokens=("ref_len", "sum"),
        _gold_hits=("_gold_hits", "sum"),
        _gold_tokens=("_gold_len", "sum"),
        _gold_ans_hits=("_gold_ans_hits", "sum"),
        _gold_ans_tokens=("gold_answer_len", "sum"),
        gold_info_acc=("gold_info_acc", "mean"),
        gold_info_logprob=("gold_info_logprob", "mean"),
        gold_info_len=("gold_info_len", "mean"),
        scratch_edit_distance=("scratch_edit_distance", "mean"),
        # a metric registered as an emergence column needs no line here
        **{c: (c, "mean") for c in EMERGENCE_COLUMNS if c not in _EMERGENCE_NAMED},
    ).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        p_ref = out.pop("_ref_hits") / out.pop("_ref_tokens")
        p_gold = out.pop("_gold_hits") / out.pop("_gold_tokens")
        p_ans = out.pop("_gold_ans_hits") / out.pop("_gold_ans_tokens")
        out["pred_em_ref"] = p_ref ** out["ref_len"]
        out["pred_em_gold"] = p_gold ** (out["gold_answer_len"] + out["gold_think_len"])
        out["pred_em_gold_answer"] = p_ans ** out["gold_answer_len"]
        out.insert(4, "log2_params", np.log2(out["params"]))
    for name in ("pred_em_gold", "pred_em_gold_answer"):
        out.loc[out["gold_n"] == 0, name] = np.nan
    return out.sort_values(["family", "task", "params"]).reset_index(drop=True)


def _size_replicates(rec: pd.DataFrame, metrics: list[str], n_boot: int, alpha: float,
                     seed: int | None) -> tuple[science.SeedDesign, dict[str, np.ndarray]]:  # fmt: skip
    """Joint bootstrap replicates (problems once for all sizes, seeds within a size) of the
    per-size mean of each record metric of one (family, task): metric -> n_boot x sizes, the
    sizes in `design` order (by params)."""
    rec = rec.assign(em=rec["correct"].astype(float))
    if "ref_token_acc" in rec:
        rec = rec.assign(ref_exact=(rec["ref_token_acc"] == 1).astype(float))
    ckpt = rec.groupby("model", sort=False).agg(size=("size", "first"), params=("params", "mean"))
    sizes = ckpt.groupby("size")["params"].mean().sort_values()
    order = ckpt.assign(_p=ckpt["size"].map(sizes)).sort_values("_p").index
    index = {s: i for i, s in enumerate(sizes.index)}
    design = science.design_from(sizes.index, np.log2(sizes.to_numpy(float)),
                                 ckpt.loc[order, "size"].map(index).to_numpy())  # fmt: skip
    metrics = [m for m in metrics if m in rec]
    mean = rec.groupby(["model", "problem_id"])[metrics].mean()
    problems = mean.index.get_level_values("problem_id").unique()
    wp, ws = science.resample_weights(design, len(problems), n_boot, seed)
    out = {}
    for m in metrics:
        v = mean[m].unstack("problem_id").reindex(index=order, columns=problems).to_numpy(float)
        if not np.isfinite(v).any(axis=1).all():
            continue  # a checkpoint without the metric: no per-size curve to resample
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a replicate may miss a cell
            out[m] = science.size_curve(design, v, np.isfinite(v).astype(float), wp, ws,
                                        alpha).reps  # fmt: skip
    return design, out


def sharpness_table(emergence: pd.DataFrame, records: pd.DataFrame | None = None,
                    n_boot: int = science.SHARPNESS_CI_BOOT, alpha: float = 0.05,
                    seed: int | None = 0) -> pd.DataFrame:  # fmt: skip
    """Monotone-fit sharpness (`science.monotone_sharpness`) per (family, task, metric), on the
    per-size means over seeds; 'no fit: <reason>' in `status` where there is none. With the
    emergence `records` (`_emergence_records`), each sharpness of a record metric gets a CI
    (``sharpness_lo``/``sharpness_hi``, `science.SHARPNESS_CI_RULE`): problems and seeds
    resampled jointly, each replicate refitted the way the point estimate was. The predicted
    curves (p^L) are derived, not record means: no CI."""
    rows = []
    for (family, task), fam in emergence.groupby(["family", "task"], sort=True):
        fam = fam[np.isfinite(fam["log2_params"])]
        size = fam["size"] if "size" in fam else fam["model"]
        if size.nunique() < 2:
            continue
        reps, design = {}, None
        if records is not None and n_boot > 0 and "size" in fam:
            rec = records[(records["family"] == family) & (records["task"] == task)]
            rec = rec[rec["model"].isin(set(fam["model"])) & np.isfinite(rec["params"])]
            if rec["size"].nunique() >= 3:
                design, reps = _size_replicates(rec, list(EMERGENCE_METRICS), n_boot, alpha,
                                                seed)  # fmt: skip
        for metric in EMERGENCE_METRICS:
            if metric not in fam or fam[metric].notna().sum() < 2:
                continue
            per = fam.assign(_size=size).groupby("_size")[["log2_params", metric]].mean()
            per = per.dropna().sort_values("log2_params")
            res = science.monotone_sharpness(per["log2_params"], per[metric])
            x, y = per["log2_params"].to_numpy(), per[metric].to_numpy()
            start = res.start_log2
            ci = {"sharpness_lo": math.nan, "sharpness_hi": math.nan, "sharpness_ci_boot": 0,
                  "sharpness_ci_resamples": "no CI: " + ("a derived prediction, not a record "
                                                         "mean" if metric.startswith("pred_")
                                                         else "no fit or no records")}  # fmt: skip
            if res.status == "ok" and metric in reps and set(per.index) == set(design.sizes):
                inc = bool(spearmanr(x, y).statistic >= 0) if x.size > 1 else True
                lo, hi, used = science.sharpness_interval(design.log2_params, reps[metric],
                                                          res.fit, inc, alpha)  # fmt: skip
                seeds = ("problems and seeds" if design.n_seeds.max() > 1
                         else "problems only (one seed per size)")
                ci = {"sharpness_lo": lo, "sharpness_hi": hi, "sharpness_ci_boot": used,
                      "sharpness_ci_resamples": seeds}  # fmt: skip
            rows.append(
                {
                    "family": family,
                    "task": task,
                    "metric": metric,
                    "status": res.status,
                    "sharpness": res.value,
                    "fit": res.fit,
                    "sharpness_sigmoid": res.sigmoid,
                    "sharpness_isotonic": res.isotonic,
                    "midpoint_params": 2.0**res.midpoint_log2,
                    "width_doublings": res.width_log2,
                    "total_rise": y[-1] - y[0] if y.size else math.nan,
                    "steepest_from_params": 2.0**start,
                    "steepest_to_params": 2.0 ** min(start + 1, x[-1]) if x.size else math.nan,
                    "n_models": int(fam["model"].nunique()),
                    "n_sizes": int(per.shape[0]),
                    **ci,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def span_table(emergence: pd.DataFrame, lo: float = 0.2, hi: float = 0.8) -> pd.DataFrame:
    """Where EM climbs from `lo` to `hi` per (family, task, continuous metric) (`SPAN_RULE`):
    on per-size seed means, with the seed counts of the sizes it rests on (``seeds``: "3" or
    "1–3") so one checkpoint per size reads as such."""
    rows = []
    for (family, task), fam in emergence.groupby(["family", "task"], sort=True):
        fam = fam[np.isfinite(fam["log2_params"])]
        seeds = fam.groupby("log2_params")["model"].nunique()
        for metric in SPAN_METRICS:
            if metric not in fam or fam[metric].notna().sum() < 2:
                continue
            span = emergence_span(fam["log2_params"], fam["em"], fam[metric], lo, hi)
            if span is None:
                continue
            k = seeds[(seeds.index >= span.lo_log2_params) & (seeds.index <= span.hi_log2_params)]
            rows.append(
                {
                    "family": family,
                    "task": task,
                    "metric": metric,
                    "em_from": lo,
                    "em_to": hi,
                    "lo_params": 2.0**span.lo_log2_params,
                    "hi_params": 2.0**span.hi_log2_params,
                    **asdict(span),
                    "seeds": f"{k.min()}" if k.min() == k.max() else f"{k.min()}–{k.max()}",
                    "basis": "per-size means over seeds",
                    "rule": SPAN_RULE,
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


# the per-token metric of the Schaeffer test, best first: informative gold tokens (digits of
# scratchpad and answer), every gold token, the reference answer's tokens
TOKEN_METRICS = (("gold_info_acc", "gold_info_len"), ("gold_token_acc", "_gold_len"),
                 ("ref_token_acc", "ref_len"))  # fmt: skip
SEED_EXTRAS = ("gold_info_logprob", "scratch_edit_distance")


def _token_metric(rec: pd.DataFrame) -> tuple[str, str] | None:
    for acc, length in TOKEN_METRICS:
        if rec[acc].notna().any() and (rec[length] > 0).any():
            return acc, length
    return None


def seed_tables(df: pd.DataFrame, n_boot: int, alpha: float, seed: int | None):
    """(seed_curves, seed_points, schaeffer, verdicts) per (family, task) over sizes, from the
    emergence records; see `science` for the rules."""
    rec = _emergence_records(df)
    rec["_gold_len"] = rec["gold_answer_len"] + rec["gold_think_len"]
    curves, points, tests, verdicts = [], [], [], []
    for (family, task), g in rec.groupby(["family", "task"], sort=True):
        g = g[np.isfinite(g["params"]) & (g["params"] > 0)]
        if g["size"].nunique() < 2:
            continue
        metric = _token_metric(g)
        acc, length = metric if metric else ("_none", "_none_len")
        g = g.assign(_none=np.nan, _none_len=np.nan) if metric is None else g
        extras = tuple(c for c in SEED_EXTRAS if g[c].notna().any())
        fc = science.family_curves(g, acc, length, extras, n_boot, alpha, seed)
        d = fc.design
        ident = {"family": family, "task": task}
        names = {"em": "em", "token_acc": fc.metric}
        for key, c in fc.curves.items():
            if key == "token_acc" and metric is None:
                continue
            for i, size in enumerate(d.sizes):
                curves.append({**ident, "metric": names.get(key, key), "size": size,
                               "params": 2.0 ** d.log2_params[i],
                               "log2_params": d.log2_params[i], "n_seeds": int(d.n_seeds[i]),
                               "mean": c.mean[i], "sd": c.sd[i], "seed_min": c.seed_min[i],
                               "seed_max": c.seed_max[i], "ci_lo": c.ci_lo[i],
                               "ci_hi": c.ci_hi[i], "n_problems": fc.n_problems})  # fmt: skip
            seeds = g.groupby("model")["model_seed"].first()
            for j, model in enumerate(fc.models):
                points.append({**ident, "metric": names.get(key, key), "model": model,
                               "size": d.sizes[d.size_of[j]], "model_seed": seeds.get(model),
                               "params": 2.0 ** d.log2_params[d.size_of[j]],
                               "value": c.per_seed[j]})  # fmt: skip
        res = science.schaeffer_test(d, fc.curves["em"], fc.curves["token_acc"],
                                     fc.tokens_per_size, alpha, fc.metric if metric else "",
                                     fc.n_problems)  # fmt: skip
        if metric is None:
            res = science.SchaefferResult("undetermined", "no per-token accuracy of the gold "
                                          "target or answer in the scores", res.table)
        sharp = science.monotone_sharpness(d.log2_params, fc.curves["em"].mean)
        summary = {"l_eff": res.l_eff, "l_eff_lo": res.l_eff_lo, "l_eff_hi": res.l_eff_hi,
                   "token_slope": res.slope, "token_slope_lo": res.slope_lo,
                   "token_slope_hi": res.slope_hi, "token_metric": res.metric}  # fmt: skip
        tests.append(res.table.assign(**ident, **summary, verdict=res.verdict))
        verdicts.append({**ident, "verdict": res.verdict, "reason": res.reason,
                         "sentence": science.verdict_sentence(task, str(family), res, sharp),
                         "em_sharpness": sharp.value, "em_sharpness_fit": sharp.fit or
                         sharp.status, "n_sizes": len(d.sizes),
                         "max_seeds": int(d.n_seeds.max()), **summary})  # fmt: skip

    def frame(rows):
        return pd.DataFrame(rows)

    schaeffer = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame()
    return frame(curves), frame(points), schaeffer, frame(verdicts)


def logt_tables(pp: pd.DataFrame, df: pd.DataFrame, n_boot: int, alpha: float,
                seed: int | None):  # fmt: skip
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
        wide = cur.pivot_table(index="problem_id", columns="budget", values="acc")
        budgets = wide.columns.to_numpy(dtype=float)
        if (budgets > 0).sum() < MIN_POINTS:
            continue
        values = wide.to_numpy(dtype=float)
        point = np.nanmean(values, axis=0)
        reps = bootstrap_means(values, n_boot, seed)
        window = select_budgets(budgets, point)
        fixed = _fit_log_budget_from(budgets, point, reps, len(wide), alpha)
        lof = science.lack_of_fit(budgets, point, reps, window, alpha)
        for t, r, lo, hi in zip(lof.budgets if lof.resid else (), lof.resid, lof.resid_lo,
                                lof.resid_hi, strict=True):  # fmt: skip
            resid_rows.append({**ident, "budget": t, "resid": r, "resid_lo": lo, "resid_hi": hi})
        re = science.reselecting_ci(budgets, point, reps, select_budgets, alpha)
        counts = cur.groupby("budget")[["c", "n"]].sum()
        for scope, mask in (("window", window), ("all T > 0", budgets > 0)):
            if mask.sum() >= 2:
                m = science.compare_log_models(budgets[mask], counts["c"].to_numpy()[mask],
                                               counts["n"].to_numpy()[mask])  # fmt: skip
                model_rows += [{**ident, "scope": scope, **r} for r in m.to_dict("records")]
        # difficulty buckets: the task's field, else quartiles of the natural thinking length
        pids = wide.index.to_numpy()
        nat = natural.reindex([(*key, p) for p in pids]).to_numpy(dtype=float)
        has_nat = np.isfinite(nat).any()
        nat = np.where(np.isfinite(nat), nat, np.inf) if has_nat else nat
        labels, source = science.difficulty_buckets(
            diff.reindex([(ident["task"], p) for p in pids]).to_numpy(dtype=float), nat)
        bfits = []
        for b in sorted({lab for lab in labels if lab}):
            sub = values[labels == b]
            acc_b = np.nanmean(sub, axis=0)
            for t, a in zip(budgets, acc_b, strict=True):
                buckets_rows.append({**ident, "bucket": b, "bucket_source": source,
                                     "budget": t, "accuracy": a, "n_problems": len(sub)})
            pos = budgets > 0
            step = science.monotone_sharpness(np.log2(budgets[pos]), acc_b[pos], sigmoid=False)
            row = {**ident, "bucket": b, "bucket_source": source, "n_problems": len(sub),
                   "step_share": step.value, "step_status": step.status}
            if window.sum() >= 2 and np.ptp(acc_b[window]) == 0:
                row.update(b=math.nan, b_lo=math.nan, b_hi=math.nan,
                           status="no fit: zero variance (flat over the pooled window)")
            elif window.sum() >= 2:
                xw = np.log2(budgets[window])
                r_b = bootstrap_means(sub, n_boot, seed)[:, window]
                b0 = float(science._ols_rows(xw, acc_b[window])[1][0])
                lo, hi = _quantiles(science._ols_rows(xw, r_b)[1][:, None], alpha)
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
            pred = science.step_model(budgets, np.nan_to_num(final), nat)
            gap = float(np.nanmax(np.abs(point - pred)[window]))
        mix = (science.difficulty_mix((fixed.b, fixed.b_lo, fixed.b_hi), bf, gap)
               if source != "none" else science.DifficultyMix(
                   "undetermined", "no difficulty field or natural thinking length to "
                   "break the curve down by"))  # fmt: skip
        best = {}
        for scope in ("window", "all T > 0"):
            ms = [r for r in model_rows if r["scope"] == scope and all(
                r[c] == ident[c] for c in CURVE)]  # fmt: skip
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
        })  # fmt: skip
    return tuple(pd.DataFrame(r) for r in (buckets_rows, fit_rows, test_rows, model_rows,
                                           resid_rows))  # fmt: skip


def _problem_sets(pp: pd.DataFrame, keys: list[str]) -> list[tuple[frozenset, pd.DataFrame]]:
    """Distinct problem sets of the groups `keys` (largest first), each with the rows of every
    group that saw all of it, restricted to it: the blocks of a paired comparison."""
    own = pp.groupby(keys, sort=True, observed=True, dropna=False)["problem_id"].agg(frozenset)
    out = []
    for S in sorted(set(own), key=lambda s: (-len(s), sorted(map(str, s))[:1])):
        covering = own[own.map(lambda o, S=S: S <= o)].index
        rows = pp.set_index(keys).loc[covering].reset_index()
        out.append((S, rows[rows["problem_id"].isin(S)]))
    return out


def describe_problems(ids: frozenset | set, every: set, difficulty: pd.Series | None) -> str:
    """"all 305 problems" or "100 of 305 problems (difficulty 1–2)": which problems a row saw."""
    return buy._describe(np.array(sorted(ids, key=str), dtype=object),
                         np.array(sorted(every, key=str), dtype=object), difficulty)


def compute_table(pp: pd.DataFrame, ks: list[int], thinking: pd.DataFrame,
                  difficulty: pd.Series | None = None) -> pd.DataFrame:
    """Every (model, budget, n) point with its inference FLOPs, accuracy and frontier flag, per
    problem set: points are compared (the frontier) only on problems all of them saw, so a
    point run on a subset appears in that subset's block beside every other point restricted
    to the same problems (``problem_set``, ``problems``)."""
    metric_cols = [f"{m}@{k}" for k in ks for m in ("pass", "maj", "bok")]
    base = thinking.set_index(POINT)
    rows = []
    for task, tp in pp.groupby("task", sort=True):
        every = set(tp["problem_id"])
        diff = difficulty.loc[task] if difficulty is not None and task in difficulty else None
        for S, block in _problem_sets(tp, POINT):
            where = {"problems": len(S), "problem_set": describe_problems(S, every, diff)}
            g = block.groupby(POINT, sort=True, observed=True)
            means = g[metric_cols].mean()
            n_min = g["n"].min()
            toks = g["tokens"].mean()
            flops = g["flops"].mean() if "flops" in block else None
            for key, row in means.iterrows():
                params = base.loc[key, "params"]
                simple = 2.0 * params * toks.loc[key]  # the old axis, kept beside the new one
                per_sample = flops.loc[key] if flops is not None else simple
                rule = base.loc[key, "flops_rule"] if "flops_rule" in base else RULE_FALLBACK
                for k in k_grid(int(n_min.loc[key])):
                    rows.append({
                        **dict(zip(POINT, key, strict=True)), "n": k, **where,
                        "params": params, "flops": per_sample * k, "flops_2n": simple * k,
                        "flops_rule": rule, "accuracy": row[f"maj@{k}"],
                        "pass_at_n": row[f"pass@{k}"], "best_of_n": row[f"bok@{k}"],
                    })  # fmt: skip
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["on_frontier"] = False
    for _, idx in out.groupby(["task", "problem_set"]).groups.items():
        out.loc[idx, "on_frontier"] = pareto_frontier(
            out.loc[idx, "flops"], out.loc[idx, "accuracy"]
        )
    return out


# ---------------------------------------------------------------------------------------------
# The buy decision: model info, FLOPs per record, exchange rates, cheapest configs, crossovers
# ---------------------------------------------------------------------------------------------

MODEL_INFO_COLUMNS = ("model_config", "params_non_embedding", "train_tokens", "train_flops")


def model_info(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per model: config (dict or None), non_embedding_params, train_flops and where
    they came from. Sources, first found: the score columns the run manifests carry
    (``model_config``, ``params_non_embedding``, ``train_flops`` or ``train_tokens`` ->
    6 * params * tokens). Runs whose manifests lack them get the 2*N*tokens FLOPs rule and no
    training cost (said in the tables' ``flops_rule`` / ``info_source``)."""
    if scores.empty or "model" not in scores:
        return pd.DataFrame(columns=["model", "config", "non_embedding_params", "train_flops",
                                     "info_source"])  # fmt: skip
    cols = [c for c in ("model", "params", *MODEL_INFO_COLUMNS) if c in scores]
    first = scores[cols].drop_duplicates("model").set_index("model")
    rows = []
    for model, r in first.iterrows():
        params = pd.to_numeric(pd.Series([r.get("params")]), errors="coerce").iloc[0]
        cfg = r.get("model_config")
        cfg = cfg if isinstance(cfg, dict) and cfg else None
        ne = pd.to_numeric(pd.Series([r.get("params_non_embedding")]), errors="coerce").iloc[0]
        train = pd.to_numeric(pd.Series([r.get("train_flops")]), errors="coerce").iloc[0]
        tokens = pd.to_numeric(pd.Series([r.get("train_tokens")]), errors="coerce").iloc[0]
        if not np.isfinite(train) and np.isfinite(tokens) and np.isfinite(params):
            train = 6.0 * params * tokens
        source = "manifest" if cfg is not None or np.isfinite(train) else "none"
        rows.append({"model": model, "config": cfg, "non_embedding_params": ne,
                     "train_flops": train, "info_source": source})  # fmt: skip
    return pd.DataFrame(rows)


def _with_flops(df: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """Per-record ``flops`` and ``flops_rule`` (see `evalharness.flops`), by base model."""
    res = add_flops(df.assign(model=df["base_model"]), info)
    return df.assign(flops=res["flops"].to_numpy(), flops_rule=res["flops_rule"].to_numpy())


def _difficulty(df: pd.DataFrame) -> pd.Series:
    out = pd.Series(np.nan, index=df.index)
    for task, idx in df.groupby("task", sort=False).groups.items():
        out.loc[idx] = buy.difficulty_of(task, df.loc[idx, "problem_id"],
                                         df.loc[idx, "difficulty"]).to_numpy()  # fmt: skip
    return out


def _exchange_cells(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int]) -> list[tuple]:
    """(family, task, axis, at, cells) for each surface to fit: thinking budget over the
    greedy sweeps, samples n over each budget of the sampled runs (maj@n)."""
    meta = df.groupby("model", sort=False).agg(
        base=("base_model", "first"), family=("family", "first"), params=("params", "first"),
        greedy=("greedy", "first"), temperature=("temperature", "first"),
    )  # fmt: skip
    pp = pp.join(meta, on="model")
    pp = pp[pp["extensions"] == pp.groupby("model")["extensions"].transform("min")]
    out = []
    greedy = pp[pp["greedy"].astype(bool)]
    for (family, task), g in greedy.groupby(["family", "task"], sort=True):
        cells = g.assign(level=g["budget"].astype(float), y=g["acc"])
        out.append((family, task, "budget", "", cells))
    sampled = pp[~pp["greedy"].astype(bool)]
    for (family, task, budget, temp), g in sampled.groupby(
        ["family", "task", "budget", "temperature"], sort=True
    ):
        long = [g.assign(level=float(k), y=g[f"maj@{k}"]) for k in ks if f"maj@{k}" in g]
        cells = pd.concat(long, ignore_index=True)
        out.append((family, task, "samples", f"T={budget:g}, temp={temp:g}", cells))
    return out


def fit_cells(cut: pd.DataFrame) -> str:
    """The (size, level) cells a surface fit read, as "params@level" joined by spaces: a
    figure draws the fitted surface only over these (past a model's plateau, or at a level it
    never ran, the surface is an extrapolation the fit never saw)."""
    used = cut[(cut["level"] > 0) & cut["y"].notna() & (cut["params"] > 0)]
    pairs = used[["params", "level"]].drop_duplicates().sort_values(["params", "level"])
    return " ".join(f"{p:.10g}@{lv:.10g}" for p, lv in pairs.itertuples(index=False))


def exchange_table(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int], n_boot: int,
                   alpha: float, seed: int | None) -> pd.DataFrame:  # fmt: skip
    """Exchange-rate fits per (family, task, axis, difficulty bucket); bucket "all" pools."""
    diff = df.groupby(["task", "problem_id"])["difficulty"].first()
    rows = []
    for family, task, axis, at, cells in _exchange_cells(pp, df, ks):
        cells = cells.join(diff, on=["task", "problem_id"])
        buckets = [("all", cells)]
        levels = sorted(cells["difficulty"].dropna().unique())
        if len(levels) > 1:
            buckets += [(f"{v:g}", cells[cells["difficulty"] == v]) for v in levels]
        for bucket, sub in buckets:
            cut = pd.concat([buy.plateau_cut(c) for _, c in sub.groupby("model", sort=True)])
            fit = buy.fit_exchange(cut[["problem_id", "model", "params", "level", "y"]],
                                   axis, n_boot, alpha, seed)  # fmt: skip
            rows.append({"family": family, "task": task, "axis": axis, "setting": at,
                         "bucket": bucket, **buy.flat(fit), "cells": fit_cells(cut)})  # fmt: skip
    return pd.DataFrame(rows)


def _buy_points(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """Per (problem, configuration, seed) accuracy (maj@n) and inference FLOPs (per-sample mean
    * n) for every (model, budget, n) of the compute table. `model` is the size one buys (seeds
    are its replicates); the configuration label names the decoding, so a greedy and a sampled
    run of one budget and n are two configurations, never one."""
    meta = df.groupby("model", sort=False).agg(
        size=("base_size", "first"), seed=("model_seed", "first"), decoding=("decoding", "first"),
        runs=("run_id", lambda r: ";".join(sorted(set(map(str, r))))))
    frames = []
    for k in ks:
        col = f"maj@{k}"
        g = pp[pp[col].notna()] if col in pp else pp.iloc[0:0]
        if g.empty:
            continue
        ext = np.where(g["extensions"] > 0, " +" + g["extensions"].astype(str) + " Wait", "")
        size = g["model"].map(meta["size"]).astype(str)
        frames.append(pd.DataFrame({
            "task": g["task"].to_numpy(), "problem_id": g["problem_id"].to_numpy(),
            "model": size.to_numpy(), "seed": g["model"].map(meta["seed"]).to_numpy(float),
            "config": (size + " T=" + g["budget"].astype(str) + ext + f" n={k} "
                       + g["model"].map(meta["decoding"])).to_numpy(),
            "budget": g["budget"].to_numpy(), "n": k, "acc": g[col].to_numpy(float),
            "flops": g["flops"].to_numpy(float) * k, "difficulty": np.nan,
            "run_id": g["model"].map(meta["runs"]).to_numpy(),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def buy_tables(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int], info: pd.DataFrame,
               n_boot: int, alpha: float, seed: int | None):  # fmt: skip
    """(exchange, cheapest, crossover, buy_costs) tables; see `evalharness.buy`."""
    exchange = exchange_table(pp, df, ks, n_boot, alpha, seed)
    points = _buy_points(pp, df, ks)
    if not points.empty:
        diff = df.groupby(["task", "problem_id"])["difficulty"].first().rename("difficulty")
        points = points.drop(columns="difficulty").join(diff, on=["task", "problem_id"])
    # training FLOPs of a size: the mean over its seeds (one recipe: they differ by a hair)
    size_of = df.groupby("base_model")["base_size"].first()
    train = ({} if info.empty else info.assign(size=info["model"].map(size_of))
             .groupby("size")["train_flops"].mean().to_dict())
    cheap, cross, lines = [], [], []
    if not points.empty:
        points = points[np.isfinite(points["flops"])]
    for task, g in points.groupby("task", sort=True) if not points.empty else []:
        cheap.append(buy.cheapest_configs(g, n_boot=n_boot, alpha=alpha, seed=seed)
                     .assign(task=task))  # fmt: skip
        c, ln = buy.crossovers(g, train, n_boot=n_boot, alpha=alpha, seed=seed)
        cross.append(c.assign(task=task))
        lines.append(ln.assign(task=task))

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return exchange, cat(cheap), cat(cross), cat(lines)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _jsonable(v):
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _provenance(table: pd.DataFrame, recs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`table` with ``runs`` (the run ids its row read, ';'-joined) and ``problems`` (how many
    problems) for each row, from the records `recs` grouped by the row's `keys`. A count the
    table computed itself (a paired block, a fit on common problems) is kept."""
    if table.empty:
        return table
    keys = [k for k in keys if k in table and k in recs]
    g = recs.groupby(keys, sort=False, observed=True, dropna=False)
    prov = pd.DataFrame({
        "runs": g["run_id"].agg(lambda r: ";".join(sorted(set(map(str, r))))),
        "_problems": g["problem_id"].nunique(),
    }).reset_index()
    out = table.merge(prov, on=keys, how="left")
    own = out["problems"] if "problems" in out else out.get("n_problems")
    out["problems"] = own.fillna(out["_problems"]) if own is not None else out["_problems"]
    return out.drop(columns="_problems")


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


@dataclass(frozen=True)
class Analysis:
    """Every table the plots and the report read; `write` puts them under results/analysis."""

    budgets: pd.DataFrame  # accuracy (+CI) and thinking tokens used, per budget
    fits: pd.DataFrame  # accuracy = a + b log2 T, per (model, task, extensions)
    coverage: pd.DataFrame  # pass@k, maj@k, best-of-k (+CI) per budget and k
    coverage_fits: pd.DataFrame  # -log pass@k = c k^-beta per budget
    emergence: pd.DataFrame  # per model at its largest budget: EM beside continuous metrics
    sharpness: pd.DataFrame  # steepest-doubling share per (family, task, metric)
    spans: pd.DataFrame  # narrowest EM 0.2 -> 0.8 size range and metric shares in it
    compute: pd.DataFrame  # (model, budget, n) points: FLOPs, accuracy, on_frontier
    exchange: pd.DataFrame  # doublings of N one doubling of T (or n) is worth, per bucket
    cheapest: pd.DataFrame  # cheapest (model, T, n) per target accuracy, runner-up, margin
    crossover: pd.DataFrame  # query volume Q where the preferred model changes (train + Q*inf)
    buy_costs: pd.DataFrame  # per target and model: training FLOPs, inference FLOPs per query
    diagnostics: pd.DataFrame  # per run x budget: did budget forcing bite (diagnostics.py)
    seed_curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # per size: seed mean, CI
    seed_points: pd.DataFrame = field(default_factory=pd.DataFrame)  # per checkpoint values
    schaeffer: pd.DataFrame = field(default_factory=pd.DataFrame)  # observed vs p^L_eff per size
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)  # one sentence per family/task
    logt_buckets: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy per bucket x T
    logt_bucket_fits: pd.DataFrame = field(default_factory=pd.DataFrame)  # slope, step share
    logt_tests: pd.DataFrame = field(default_factory=pd.DataFrame)  # lack of fit, CIs, mix
    logt_models: pd.DataFrame = field(default_factory=pd.DataFrame)  # AIC/BIC per model form
    logt_residuals: pd.DataFrame = field(default_factory=pd.DataFrame)  # per budget, with CI
    rules: dict[str, str] = field(
        default_factory=lambda: {
            "log_budget_fit": SATURATION_RULE,
            "coverage_fit": COVERAGE_RULE,
            "sharpness": SHARPNESS_RULE,
            "span": SPAN_RULE,
            "flops": FLOPS_RULE,
            "exchange": buy.SURFACE_RULE,
            "cheapest": buy.CHEAPEST_RULE,
            "crossover": buy.CROSSOVER_RULE,
            "budget_control": BITE_RULE,
            "seed_ci": science.SEED_CI_RULE,
            "schaeffer": science.SCHAEFFER_RULE,
            "lack_of_fit": science.LACK_OF_FIT_RULE,
        }
    )

    TABLES = ("budgets", "fits", "coverage", "coverage_fits", "emergence", "sharpness",
              "spans", "compute", "exchange", "cheapest", "crossover", "buy_costs",
              "diagnostics", "seed_curves", "seed_points", "schaeffer", "verdicts",
              "logt_buckets", "logt_bucket_fits", "logt_tests", "logt_models",
              "logt_residuals")  # fmt: skip

    def to_json(self) -> dict:
        """The fits and headline numbers as plain JSON-able data (NaN -> None)."""
        return {
            "rules": dict(self.rules),
            "log_budget_fits": _records(self.fits),
            "coverage_fits": _records(self.coverage_fits),
            "sharpness": _records(self.sharpness),
            "emergence_spans": _records(self.spans),
            "frontier": _records(self.compute[self.compute["on_frontier"]])
            if "on_frontier" in self.compute
            else [],
            "exchange": _records(self.exchange),
            "cheapest": _records(self.cheapest),
            "crossover": _records(self.crossover),
            "verdicts": _records(self.verdicts),
            "logt_tests": _records(self.logt_tests),
        }

    def write(self, out_dir: Path) -> list[Path]:
        """Write every table as ``<name>.csv`` and the fits as ``fits.json`` into `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.TABLES:
            path = out_dir / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            paths.append(path)
        path = out_dir / "fits.json"
        path.write_text(json.dumps(self.to_json(), indent=2))
        return paths + [path]


def analyze(
    scores: pd.DataFrame, n_boot: int = 1000, alpha: float = 0.05, seed: int | None = 0
) -> Analysis:
    """All tables and fits from score rows (`scoring.load_scores`)."""
    if scores.empty:
        empty = pd.DataFrame()
        return Analysis(*[empty] * len(Analysis.TABLES))
    df = _prepare(scores)
    info = model_info(scores)
    df = _with_flops(df, info)
    df["difficulty"] = _difficulty(df)
    pp, ks = _per_problem(df)
    thinking = _thinking_stats(df)
    budgets, coverage, fits, coverage_fits = _curve_tables(pp, ks, n_boot, alpha, seed)
    if not budgets.empty:
        budgets = budgets.merge(thinking, on=POINT, how="left")
    emergence = _emergence(df)
    em_recs = _emergence_records(df)
    tables = dict(
        budgets=budgets,
        fits=fits,
        coverage=coverage,
        coverage_fits=coverage_fits,
        emergence=emergence,
        sharpness=sharpness_table(emergence, em_recs, min(n_boot, science.SHARPNESS_CI_BOOT),
                                  alpha, seed),
        spans=span_table(emergence),
        compute=compute_table(pp, ks, thinking,
                              df.groupby(["task", "problem_id"])["difficulty"].first()),
        **dict(zip(("exchange", "cheapest", "crossover", "buy_costs"),
                   buy_tables(pp, df, ks, info, n_boot, alpha, seed), strict=True)),
        diagnostics=budget_control(scores),
        **dict(zip(("seed_curves", "seed_points", "schaeffer", "verdicts"),
                   seed_tables(df, n_boot, alpha, seed), strict=True)),
        **dict(zip(("logt_buckets", "logt_bucket_fits", "logt_tests", "logt_models",
                    "logt_residuals"), logt_tables(pp, df, n_boot, alpha, seed), strict=True)),
    )  # fmt: skip
    # every row names the runs and the number of problems it read
    per_point = POINT + ["n"]
    for name in ("budgets", "coverage", "coverage_fits", "compute", "fits", "logt_buckets",
                 "logt_bucket_fits", "logt_tests", "logt_models", "logt_residuals"):
        tables[name] = _provenance(tables[name], df, per_point)
    tables["diagnostics"] = _provenance(tables["diagnostics"], df.assign(n=np.nan),
                                        ["run_id", "budget"])
    for name in ("emergence", "seed_points"):
        tables[name] = _provenance(tables[name], em_recs, ["family", "task", "model"])
    tables["seed_curves"] = _provenance(tables["seed_curves"], em_recs,
                                        ["family", "task", "size"])
    for name in ("sharpness", "spans", "schaeffer", "verdicts"):
        tables[name] = _provenance(tables[name], em_recs, ["family", "task"])
    exch = df.assign(axis=np.where(df["greedy"], "budget", "samples"))
    tables["exchange"] = _provenance(tables["exchange"], exch, ["family", "task", "axis"])
    return Analysis(**tables)
