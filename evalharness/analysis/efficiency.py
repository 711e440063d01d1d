"""Thinking efficiency without a judge: the budget each problem needs, overthinking, and
compute-optimal allocation of thinking (frames in, frames out).

The sweep already records what a judge would guess at: the forced answer after thinking[:T]
at every budget T of the grid, and the natural thinking length L (reported on the records whose
budget it fits in). Per (configuration, problem, sample) -- a *unit* -- with the grid's budgets
T_1 < ... < T_K and correctness c_1..c_K:

- T*_first: the smallest budget whose forced answer is correct;
- T*_stable: the smallest budget from which every larger budget is correct;
- N*_stable: the thinking tokens the record at T*_stable used (min(T*_stable, L)): a budget
  past the natural end spends only L;
- L_nat: the natural thinking length (censored, "did not end", when thinking ran past T_K) and
  whether the natural answer (the record at T_K, which repeats it) is correct.

Every metric is computed per unit, averaged over a problem's samples, then over problems; the
problem is the unit of resampling (`evalharness.stats`). Rows never pool configurations: one
row is one (model, task, extensions) curve -- the model label already separates greedy from
sampled runs, specs and seeds -- over the problems that share one budget grid.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from evalharness.analysis.buy import describe_ids
from evalharness.analysis.records import CURVE
from evalharness.stats import (
    bootstrap_means,
    column_intervals,
    percentile_interval,
    resample_counts,
)

MAX_LEVELS = 8  # a task's difficulty with more levels than this is bucketed by quartiles
LAMBDAS = (0.0, 1 / 64, 1 / 16, 1 / 4, 1.0, 4.0, 16.0)  # price of thinking, in units below
MATCH = 2.0  # sequential and parallel are compared where their FLOPs differ by < this factor

METRICS = {
    "natural_length": "mean natural thinking length L_nat (units whose thinking ended within "
                      "the largest budget)",
    "t_first": "mean T*_first: the smallest budget whose forced answer is correct (units "
               "solved at some budget)",
    "t_stable": "mean T*_stable: the smallest budget from which every larger budget is "
                "correct (units correct at the largest budget)",
    "natural_correct": "share of units whose natural answer (thinking ended by itself) is "
                       "correct (exact match)",
    "censored": "share of units with no observed natural end: the thinking did not close with "
                "its end marker within the largest budget — it ran past it (L_nat > T_max), or "
                "the reply stopped without the marker (a chat model's end-of-sequence) — so they "
                "are not in the L_nat-based metrics",
    "overthinking_tokens": "mean L_nat - N*_stable over units solved at their natural end "
                           "(N*_stable = thinking tokens used at T*_stable = "
                           "min(T*_stable, L_nat))",
    "token_efficiency": "mean N*_stable / L_nat over units with an observed natural end, 0 "
                        "where the natural answer is wrong (EvalScope's T-hat / T)",
    "falls_with_budget": "share of units correct at some budget and wrong at a larger one "
                         "(overthinking that hurts)",
    "underthinking": "share of units with an observed natural end whose natural answer is "
                     "wrong but which are right after a 'Wait' extension (a budget past L_nat "
                     "at an extension level)",
}
EFFICIENCY_RULE = (
    "per (configuration, problem, sample) on the configuration's budget grid, averaged over a "
    "problem's samples, then over problems; CIs: percentile bootstrap over problems; T* are "
    "grid budgets (the need lies between the previous budget and T*); a metric with no unit "
    "it applies to is 'not identifiable: <reason>'"
)
ALLOCATION_RULE = (
    "tokens = mean thinking tokens spent per problem (min(T, L_nat)); uniform: one budget for "
    "all; oracle_stable: each problem its T*_stable (the smallest budget if never stably "
    "solved); oracle_first: each problem the smallest budget reaching its best accuracy; "
    "the uniform reference is the smallest budget with the best uniform accuracy on all "
    "problems (in-sample, which favours the uniform baseline); predicted: problems split in two halves (seeded); on one half each difficulty bucket gets "
    "argmax_T acc(T) - lam * tokens(T) / tokens at T_max (ties: the smaller budget; a bucket "
    "empty in that half: the half's overall choice), applied to the other half, and both ways "
    "round (cross-fitted, a problem never chooses its own budget); continuous predictors are "
    "cut at the quartiles of the choosing half; CIs resample problems (split fixed)"
)
SEQPAR_RULE = (
    "per difficulty bucket, on the problems both configurations saw: a greedy sweep's budget "
    "T (sequential) against majority vote of k samples at a shorter budget (parallel), the "
    "greedy budget the one whose inference FLOPs per problem are nearest (in log) to the "
    f"parallel point's, kept where they differ by < {MATCH:g}x; difference = sequential - "
    "parallel accuracy with a paired bootstrap CI over problems; winner where the CI excludes 0"
)


# ----------------------------------------------------------------------------- units


def unit_needs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, extensions, problem, sample): the grid it was swept on and
    its budget needs (see the module docstring). `df`: prepared score rows."""
    keys = CURVE + ["problem_id", "sample"]
    d = df[keys + ["budget", "exact_match", "thinking_tokens", "natural_thinking_tokens"]]
    gid = d.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    budget = d["budget"].to_numpy(float)
    order = np.lexsort((budget, gid))
    d, u, budget = d.iloc[order], gid[order], budget[order]
    new = np.concatenate([[True], u[1:] != u[:-1]])
    start = np.flatnonzero(new)
    uid = np.cumsum(new) - 1
    rank = np.arange(u.size) - start[uid]
    count = np.diff(np.append(start, u.size))
    correct = d["exact_match"].to_numpy(bool)
    used = d["thinking_tokens"].to_numpy(float)
    nat = pd.to_numeric(d["natural_thinking_tokens"], errors="coerce").to_numpy(float)
    big = np.iinfo(np.int64).max
    # rows are sorted by budget within a unit: reductions over ranks give T*
    first_ok = np.minimum.reduceat(np.where(correct, rank, big), start)
    last_bad = np.maximum.reduceat(np.where(correct, -1, rank), start)
    solved = first_ok < big
    stable = last_bad < count - 1
    at_first = start + np.where(solved, first_ok, 0)
    at_stable = start + np.where(stable, last_bad + 1, 0)
    lnat = np.fmax.reduceat(nat, start)
    has_nat = np.isfinite(lnat)
    last = start + count - 1
    out = d.iloc[start][keys].reset_index(drop=True)
    out["budget_grid"] = _grids(budget, start)
    out["t_max"] = budget[last]
    out["t_first"] = np.where(solved, budget[at_first], np.nan)
    out["t_stable"] = np.where(stable, budget[at_stable], np.nan)
    out["need_first_tokens"] = np.where(solved, used[at_first], np.nan)
    out["need_stable_tokens"] = np.where(stable, used[at_stable], np.nan)
    out["natural_tokens"] = lnat
    out["natural_correct"] = np.where(has_nat, correct[last], np.nan)
    out["falls"] = solved & (first_ok < last_bad)
    return out


def _grids(budget: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The budget grid of each unit ("0 8 32"), via a bit mask of the budgets it has: units
    swept on different grids are never one row."""
    levels = np.unique(budget)
    if levels.size > 62:  # too many for a bit mask: spell each unit's grid out
        return np.array([" ".join(f"{x:g}" for x in b)
                         for b in np.split(budget, start[1:])], dtype=object)
    bits = np.left_shift(1, np.searchsorted(levels, budget)).astype(np.int64)
    masks = np.bitwise_or.reduceat(bits, start)
    uniq, inv = np.unique(masks, return_inverse=True)
    names = np.array([" ".join(f"{t:g}" for j, t in enumerate(levels) if m >> j & 1)
                      for m in uniq], dtype=object)
    return names[inv]


def _rescued(df: pd.DataFrame, units: pd.DataFrame) -> np.ndarray:
    """Per unit of units (level 0): right after a 'Wait' extension, i.e. correct at some
    extension level >= 1 at a budget past its level-0 natural end; NaN where the model has no
    extension level."""
    out = np.full(len(units), np.nan)
    ext = df[df["extensions"] > 0]
    if ext.empty:
        return out
    key = ["model", "task", "problem_id", "sample"]
    base = units.loc[units["extensions"] == 0, key + ["natural_tokens"]]
    m = ext[key + ["budget", "exact_match"]].merge(base, on=key, how="inner")
    hit = m[m["exact_match"].astype(bool) & (m["budget"] > m["natural_tokens"])]
    rescued = set(map(tuple, hit[key].itertuples(index=False)))
    have = set(ext["model"])
    idx = units.index[(units["extensions"] == 0) & units["model"].isin(have)]
    tup = units.loc[idx, key].itertuples(index=False)
    out[units.index.get_indexer(idx)] = [float(tuple(t) in rescued) for t in tup]
    return out


def unit_metrics(units: pd.DataFrame) -> pd.DataFrame:
    """Per unit, each metric of `METRICS` (NaN where it does not apply)."""
    lnat = units["natural_tokens"].to_numpy(float)
    has = np.isfinite(lnat)
    nc = units["natural_correct"].to_numpy(float)
    need = units["need_stable_tokens"].to_numpy(float)
    ok = has & (nc == 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(lnat > 0, need / lnat, 1.0)  # L = 0: it used nothing, needed nothing
    under = units["rescued"].to_numpy(float) if "rescued" in units else np.full(len(units), np.nan)
    return pd.DataFrame({
        "natural_length": np.where(has, lnat, np.nan),
        "t_first": units["t_first"].to_numpy(float),
        "t_stable": units["t_stable"].to_numpy(float),
        "natural_correct": np.where(has, nc, np.nan),
        "censored": (~has).astype(float),
        "overthinking_tokens": np.where(ok, lnat - need, np.nan),
        "token_efficiency": np.where(has, np.where(ok, ratio, 0.0), np.nan),
        "falls_with_budget": units["falls"].to_numpy(float),
        "underthinking": np.where(has & np.isfinite(under), (nc == 0) & (under == 1), np.nan)
        .astype(float),
    }, index=units.index)


_WHY = {
    "natural_length": "no unit's thinking ended within the largest budget",
    "t_first": "no unit is correct at any budget",
    "t_stable": "no unit is correct at the largest budget",
    "natural_correct": "no unit's thinking ended within the largest budget",
    "censored": "no units",
    "overthinking_tokens": "no unit is solved at its natural end",
    "token_efficiency": "no unit's thinking ended within the largest budget",
    "falls_with_budget": "no units",
    "underthinking": "no 'Wait' extension levels (in truncate mode every budget past a "
                     "sample's natural end repeats its natural answer)",
}

# a need measured on a one-budget grid is that budget whatever the problem needs
_NEED_A_GRID = {"t_first", "t_stable", "overthinking_tokens", "token_efficiency",
                "falls_with_budget", "underthinking"}


# ----------------------------------------------------------------------------- buckets


def task_buckets(difficulty: np.ndarray) -> tuple[np.ndarray, str]:
    """Bucket label per problem from the task's difficulty (its levels when few, quartiles
    otherwise) and the source; all "" when the task has none."""
    d = np.asarray(difficulty, float)
    levels = np.unique(d[np.isfinite(d)])
    if levels.size < 2:
        return np.full(d.size, "", object), "none"
    if levels.size <= MAX_LEVELS:
        return np.array([f"{v:g}" if np.isfinite(v) else "" for v in d], object), "difficulty"
    edges = np.nanquantile(d, [0.25, 0.5, 0.75])
    q = np.searchsorted(edges, d, side="right")
    return np.array([f"Q{c + 1}" if np.isfinite(v) else "" for c, v in zip(q, d, strict=True)],
                    object), "difficulty quartile"


def _codes(values: np.ndarray, categorical: bool, choose: np.ndarray) -> np.ndarray:
    """Bucket code per problem; continuous values are cut at the quartiles of the problems in
    `choose` only (the choosing half), so the other half's values never move the edges."""
    v = np.asarray(values, float)
    if categorical:
        _, codes = np.unique(np.where(np.isfinite(v), v, np.inf), return_inverse=True)
        return codes
    ref = v[choose & np.isfinite(v)]
    if ref.size == 0:
        return np.zeros(v.size, int)
    edges = np.quantile(ref, [0.25, 0.5, 0.75])
    return np.where(np.isfinite(v), np.searchsorted(edges, v, side="right"), 4)


# ----------------------------------------------------------------------------- allocation


def halves(n: int, seed: int | None) -> np.ndarray:
    """A seeded split of n problems into two halves (0/1)."""
    perm = np.random.default_rng(seed).permutation(n)
    out = np.zeros(n, int)
    out[perm[n // 2:]] = 1
    return out


def crossfit(acc: np.ndarray, tok: np.ndarray, predictor: np.ndarray, categorical: bool,
             half: np.ndarray, lam: float, w: np.ndarray | None = None):
    """The predicted allocation, cross-fitted.

    `acc`, `tok`: problems x budgets (accuracy and thinking tokens spent at each budget);
    `predictor`: per problem; `half`: 0/1 per problem; `w`: replicates x problems resampling
    counts (None: the point estimate). For each direction the choosing half picks a budget per
    bucket (argmax acc - lam * tokens / tokens at T_max, ties to the smaller budget), which is
    applied to the other half only. Returns (accuracy, tokens) per replicate and the budget
    index each problem was given in the first replicate (or the point estimate)."""
    return crossfit_many(acc, tok, predictor, categorical, half, (lam,), w)[0]


def crossfit_many(acc: np.ndarray, tok: np.ndarray, predictor: np.ndarray, categorical: bool,
                  half: np.ndarray, lams, w: np.ndarray | None = None) -> list[tuple]:
    """`crossfit` at each price in `lams`; the weighted sums of each half and bucket do not
    depend on the price, so they are formed once."""
    w = np.ones((1, acc.shape[0])) if w is None else w
    R = w.shape[0]
    rows = np.arange(R)
    parts = []  # per direction and bucket: (choosing sums, applied sums, applied problems)
    for h in (0, 1):
        train, test = half == h, half != h
        codes = _codes(predictor, categorical, train)
        scale = max(float(tok[train, -1].mean()), 1.0) if train.any() else 1.0
        wt = w[:, train]
        overall = (wt @ acc[train], wt @ tok[train], wt.sum(1))
        for b in np.unique(codes[test]):
            tb, eb = train & (codes == b), test & (codes == b)
            wb, we = w[:, tb], w[:, eb]
            parts.append((scale, overall, (wb @ acc[tb], wb @ tok[tb], wb.sum(1)),
                          (we @ acc[eb], we @ tok[eb], we.sum(1)), eb))
    out = []
    for lam in lams:
        a_sum, t_sum, n_sum = np.zeros(R), np.zeros(R), np.zeros(R)
        given = np.full(acc.shape[0], -1)
        for scale, overall, (ta, tt, tn), (ea, et, en), eb in parts:
            pick = np.where(tn > 0, _choose(ta, tt, tn, lam, scale),
                            _choose(*overall, lam, scale))
            a_sum += ea[rows, pick]
            t_sum += et[rows, pick]
            n_sum += en
            given[eb] = pick[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((a_sum / n_sum, t_sum / n_sum, given))
    return out


def _choose(a: np.ndarray, t: np.ndarray, n: np.ndarray, lam: float, scale: float):
    with np.errstate(invalid="ignore", divide="ignore"):
        score = a / n[:, None] - lam * t / n[:, None] / scale
    score = np.where(np.isfinite(score), score, -np.inf)
    return np.argmax(score, axis=1)  # the first maximum: the smallest such budget


def oracle_choice(acc: np.ndarray, kind: str) -> np.ndarray:
    """Per problem the oracle's budget index: "first" the smallest budget reaching its best
    accuracy; "stable" the smallest from which its accuracy never drops below its value at the
    largest budget (T*_stable; the smallest budget where it is never solved there)."""
    if kind == "first":
        return np.argmax(acc >= acc.max(axis=1, keepdims=True), axis=1)
    ok = acc >= acc[:, -1:]
    bad_after = np.flip(np.cumsum(np.flip(~ok, axis=1), axis=1), axis=1) > 0  # any drop >= k
    return np.argmax(~bad_after, axis=1)


def _matrices(rows: pd.DataFrame, budgets: list[float]):
    """Per problem (sorted ids): accuracy and thinking tokens at each budget, averaged over
    samples; the problems' first-budget answer log p (mean over samples)."""
    acc = rows.pivot_table(index="problem_id", columns="budget", values="exact_match",
                           aggfunc="mean", observed=True)[budgets]
    tok = rows.pivot_table(index="problem_id", columns="budget", values="thinking_tokens",
                           aggfunc="mean", observed=True)[budgets]
    first = rows[rows["budget"] == budgets[0]].groupby("problem_id")["answer_logprob_mean"].mean()
    return acc.index.to_numpy(), acc.to_numpy(float), tok.to_numpy(float), \
        first.reindex(acc.index).to_numpy(float)


def allocation_tables(df: pd.DataFrame, units: pd.DataFrame, n_boot: int, alpha: float,
                      seed: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(allocation, allocation_headline): accuracy vs mean thinking tokens for uniform /
    oracle / predicted budgets per (configuration, grid, predictor), and per (configuration,
    grid, predictor) the headline comparison of the predicted allocation with the uniform
    budget's best accuracy."""
    g = units.groupby(CURVE + ["problem_id"], observed=True)["budget_grid"]
    # a problem whose samples were swept on different grids has no one allocation row
    grid_of = g.first().where(g.nunique() == 1, "")
    d = df.join(grid_of, on=CURVE + ["problem_id"])
    d = d[d["budget_grid"] != ""]
    diff = df.groupby(["task", "problem_id"])["difficulty"].first()
    curve_rows, head_rows = [], []
    for key, rows in d.groupby(CURVE + ["budget_grid"], sort=True, observed=True):
        ident = dict(zip(CURVE + ["budget_grid"], key, strict=True))
        ident["decoding"] = str(rows["decoding"].iloc[0])
        budgets = sorted(rows["budget"].unique())
        pids, acc, tok, lp = _matrices(rows, budgets)
        ident["problems"] = len(pids)
        if len(budgets) < 2 or len(pids) < 4:
            head_rows.append({**ident, "predictor": "", "status": "not identifiable: "
                              + ("one budget" if len(budgets) < 2 else "fewer than 4 problems")})
            continue
        rng = np.random.default_rng(seed)
        w = np.vstack([np.ones(len(pids)), resample_counts(len(pids), n_boot, rng)])
        n = w.sum(1)
        ua, ut = (w @ acc) / n[:, None], (w @ tok) / n[:, None]
        for k, t in enumerate(budgets):
            curve_rows.append({**ident, "policy": "uniform", "predictor": "", "setting":
                               f"T={t:g}", **_point(ua[:, k], ut[:, k], alpha)})
        for kind in ("stable", "first"):
            c = oracle_choice(acc, kind)
            oa = (w @ acc[np.arange(len(pids)), c]) / n
            ot = (w @ tok[np.arange(len(pids)), c]) / n
            curve_rows.append({**ident, "policy": f"oracle_{kind}", "predictor": "",
                               "setting": "per problem", **_point(oa, ot, alpha)})
        best = int(np.argmax(ua[0]))  # the uniform budget with the best accuracy (smallest)
        half = halves(len(pids), seed)
        dif = diff.reindex([(ident["task"], p) for p in pids]).to_numpy(float)
        labels, source = task_buckets(dif)
        predictors = []
        if source != "none":
            codes = np.unique(labels, return_inverse=True)[1].astype(float)
            predictors.append((f"task {source}", codes, True))
        if np.isfinite(lp).sum() >= 4 and np.unique(lp[np.isfinite(lp)]).size > 1:
            predictors.append((f"answer log p at T={budgets[0]:g}", lp, False))
        if not predictors:
            head_rows.append({**ident, "predictor": "", "status": "not identifiable: no "
                              "difficulty field and no answer log-probs to bucket by"})
        for name, values, categorical in predictors:
            fits = crossfit_many(acc, tok, values, categorical, half, LAMBDAS, w)
            for lam, (pa_, pt_, _) in zip(LAMBDAS, fits, strict=True):
                curve_rows.append({**ident, "policy": "predicted", "predictor": name,
                                   "setting": f"lam={lam:g}", **_point(pa_, pt_, alpha)})
                if lam == 0:
                    head_rows.append({**ident, "predictor": name, **_headline(
                        ua[:, best], ut[:, best], pa_, pt_, budgets[best], alpha)})
    return pd.DataFrame(curve_rows), pd.DataFrame(head_rows)


def _point(a: np.ndarray, t: np.ndarray, alpha: float) -> dict:
    (alo, tlo), (ahi, thi) = column_intervals(np.column_stack([a[1:], t[1:]]), alpha)
    return {"exact_match": a[0], "exact_match_lo": alo, "exact_match_hi": ahi, "tokens": t[0], "tokens_lo": tlo,
            "tokens_hi": thi}


def _headline(ua, ut, pa, pt, t_best: float, alpha: float) -> dict:
    diff = pa - ua
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = ut / pt
    dlo, dhi = percentile_interval(diff[1:], alpha)
    rlo, rhi = percentile_interval(ratio[1:], alpha)
    row = {"uniform_budget": t_best, "uniform_exact_match": ua[0], "uniform_tokens": ut[0],
           "predicted_exact_match": pa[0], "predicted_tokens": pt[0], "exact_match_diff": diff[0],
           "exact_match_diff_lo": dlo, "exact_match_diff_hi": dhi, "token_ratio": ratio[0], "ratio_lo": rlo,
           "ratio_hi": rhi}
    if not math.isfinite(ratio[0]) or ut[0] <= 0:
        row["status"] = "not identifiable: the uniform best budget spends no thinking tokens"
        row["verdict"] = "none"
    elif dhi < 0:
        row["status"], row["verdict"] = "ok", "does not reach"
    else:
        row["status"] = "ok"
        # below the uniform accuracy but within the CI: not shown worse, which is not "reaches"
        row["verdict"] = "reaches" if diff[0] >= 0 else "not shown worse"
    return row


# ----------------------------------------------------------------------------- tables


def efficiency_tables(df: pd.DataFrame, pp: pd.DataFrame, ks: list[int], n_boot: int = 1000,
                      alpha: float = 0.05, seed: int | None = 0) -> tuple[pd.DataFrame, ...]:
    """(needs, efficiency, allocation, allocation_headline, seq_vs_par) from prepared score
    rows `df` (with ``difficulty``, ``decoding``, ``greedy``, ``base_model``, ``flops``) and
    their per-problem rows `pp` (`records.per_problem_rows`) on the k grid `ks`."""
    if df.empty:
        return tuple(pd.DataFrame() for _ in range(5))
    units = unit_needs(df)
    units["rescued"] = _rescued(df, units)
    diff = df.groupby(["task", "problem_id"])["difficulty"].first()
    units["difficulty"] = diff.reindex(
        pd.MultiIndex.from_frame(units[["task", "problem_id"]])).to_numpy(float)
    dec = df.groupby("model", sort=False)["decoding"].first()
    units["decoding"] = units["model"].map(dec).to_numpy()
    metrics = unit_metrics(units)
    eff = _efficiency(units, metrics, n_boot, alpha, seed)
    alloc, head = allocation_tables(df, units, n_boot, alpha, seed)
    needs = units.assign(underthinking=metrics["underthinking"].to_numpy())
    return needs, eff, alloc, head, seq_vs_par(pp, ks, df, n_boot, alpha, seed)


def _efficiency(units: pd.DataFrame, metrics: pd.DataFrame, n_boot: int, alpha: float,
                seed: int | None) -> pd.DataFrame:
    names = list(METRICS)
    rows = []
    pairs = units[["task", "problem_id"]].drop_duplicates()  # before sorting strings
    every = pairs.groupby("task")["problem_id"].agg(lambda p: np.unique(p.astype(str)))
    for key, g in units.groupby(CURVE + ["budget_grid"], sort=True, observed=True):
        ident = dict(zip(CURVE + ["budget_grid"], key, strict=True))
        ident["decoding"] = str(g["decoding"].iloc[0])
        single = " " not in str(ident["budget_grid"])
        labels, source = task_buckets(g["difficulty"].to_numpy(float))
        buckets = [("all", np.ones(len(g), bool))]
        buckets += [(b, labels == b) for b in sorted(set(labels) - {""})]
        for bucket, mask in buckets:
            sub = g[mask]
            per = metrics.loc[sub.index, names].groupby(sub["problem_id"].to_numpy()).mean()
            values = per.to_numpy(float)
            reps = bootstrap_means(values, n_boot, seed)
            lo, hi = column_intervals(reps, alpha)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: not identifiable
                point = np.nanmean(values, axis=0)
            ids = np.array(sorted(map(str, per.index)), dtype=object)
            where = describe_ids(ids, every[ident["task"]], None)
            for j, name in enumerate(names):
                have = int(np.isfinite(values[:, j]).sum())
                one = single and name in _NEED_A_GRID
                ok = have > 0 and not one
                why = ("one budget: the need is not resolved" if one else _WHY[name])
                if name == "underthinking" and ident.get("extensions", 0) > 0:
                    # the metric is defined on the level-0 curve (right after a "Wait" past
                    # the first natural end); a curve that is itself extended has no level above
                    why = "defined on the level-0 curve of an extend run (see that row)"
                rows.append({**ident, "bucket": bucket,
                             "bucket_source": source if bucket != "all" else "",
                             "metric": name, "value": point[j] if ok else np.nan,
                             "lo": lo[j] if ok else np.nan, "hi": hi[j] if ok else np.nan,
                             # the stated set, and how many of it the metric is defined on
                             "problems": len(per), "measured": have, "problem_set": where,
                             "status": "ok" if ok else f"not identifiable: {why}",
                             "definition": METRICS[name]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- seq vs par


def seq_vs_par(pp: pd.DataFrame, ks: list[int], df: pd.DataFrame, n_boot: int, alpha: float,
               seed: int | None) -> pd.DataFrame:
    """A longer greedy think against majority vote of k samples at a shorter budget, at
    matched inference FLOPs, per difficulty bucket (`SEQPAR_RULE`)."""
    d = df[df["extensions"] == 0]
    if d["greedy"].all() or not d["greedy"].any():
        return pd.DataFrame()
    pp = pp[pp["extensions"] == 0]
    rows = []
    for (base, task), g in d.groupby(["base_model", "task"], sort=True, observed=True):
        seq, par = g[g["greedy"]], g[~g["greedy"]]
        if seq.empty or par.empty or seq["budget"].nunique() < 2:
            continue
        before = len(rows)
        sp = pp[pp["model"].isin(set(seq["model"])) & (pp["task"] == task)]
        seq_acc = sp.pivot_table(index="problem_id", columns="budget", values="exact_match")
        seq_fl = sp.pivot_table(index="problem_id", columns="budget", values="flops")
        runs = g.groupby("model")["run_id"].agg(lambda r: ";".join(sorted(set(map(str, r)))))
        diff = g.groupby("problem_id")["difficulty"].first()
        mine = pp[pp["model"].isin(set(par["model"])) & (pp["task"] == task)]
        for (pm, t_par), cur in mine.groupby(
                ["model", "budget"], sort=True):
            cur = cur.set_index("problem_id")
            common = cur.index.intersection(seq_acc.dropna().index)
            longer = [t for t in seq_acc.columns if t > t_par]
            if len(common) < 2 or not longer:
                continue
            for k in ks:
                col = f"maj@{k}"
                if k < 2 or col not in cur or cur.loc[common, col].isna().any():
                    continue
                f_par = cur.loc[common, "flops"].to_numpy(float) * k
                mean_seq = seq_fl.loc[common, longer].mean()
                if not np.isfinite(f_par).all() or not np.isfinite(mean_seq).all():
                    continue
                t_seq = float(mean_seq.index[np.argmin(np.abs(np.log(mean_seq.to_numpy())
                                                           - np.log(f_par.mean())))])
                ratio = float(mean_seq[t_seq] / f_par.mean())
                if not 1 / MATCH < ratio < MATCH:
                    continue
                a_seq = seq_acc.loc[common, t_seq].to_numpy(float)
                a_par = cur.loc[common, col].to_numpy(float)
                labels, source = task_buckets(diff.reindex(common).to_numpy(float))
                for bucket in ["all", *sorted(set(labels) - {""})]:
                    m = np.ones(len(common), bool) if bucket == "all" else labels == bucket
                    est = bootstrap_means(np.column_stack([a_seq[m], a_par[m],
                                                           a_seq[m] - a_par[m]]), n_boot, seed)
                    lo, hi = column_intervals(est, alpha)
                    dv = float(np.mean(a_seq[m] - a_par[m]))
                    win = ("sequential" if lo[2] > 0 else "parallel" if hi[2] < 0 else
                           "neither (CI includes 0)")
                    rows.append({
                        "model": base, "task": task, "bucket": bucket,
                        "bucket_source": source if bucket != "all" else "",
                        "seq_model": str(seq["model"].iloc[0]), "seq_budget": t_seq,
                        "par_model": pm, "par_budget": t_par, "k": k,
                        "seq_flops": float(seq_fl.loc[common[m], t_seq].mean()),
                        "par_flops": float(f_par[m].mean()), "flops_ratio": ratio,
                        "seq_accuracy": float(a_seq[m].mean()), "seq_lo": lo[0],
                        "seq_hi": hi[0], "par_accuracy": float(a_par[m].mean()),
                        "par_lo": lo[1], "par_hi": hi[1], "diff": dv, "diff_lo": lo[2],
                        "diff_hi": hi[2], "winner": win, "problems": int(m.sum()),
                        "runs": ";".join(sorted({*runs[str(seq["model"].iloc[0])].split(";"),
                                                 *runs[pm].split(";")})),
                        "status": "ok",
                    })
        if len(rows) == before:  # both axes ran, but no pair: say why rather than nothing
            rows.append({"model": base, "task": task, "bucket": "all", "runs": ";".join(
                sorted(set(map(str, g["run_id"])))), "problems": g["problem_id"].nunique(),
                "status": "not identifiable: no sampled run at a budget below a greedy "
                          f"budget whose FLOPs are within {MATCH:g}x of k samples"})
    return pd.DataFrame(rows)
