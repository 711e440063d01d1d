"""Emergence across model sizes: EM beside continuous metrics, sharpness, spans, seeds."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.isotonic import IsotonicRegression

from evalharness.analysis.emergence_tests import (
    MONOTONE_SHARPNESS_RULE,
    SHARPNESS_CI_BOOT,
    SHARPNESS_CI_RULE,
    SchaefferResult,
    SeedDesign,
    design_from,
    family_curves,
    monotone_sharpness,
    schaeffer_test,
    sharpness_interval,
    size_curve,
    verdict_sentence,
)
from evalharness.analysis.records import prepare
from evalharness.scoring.columns import emergence_columns
from evalharness.stats import size_seed_weights

SHARPNESS_RULE = (MONOTONE_SHARPNESS_RULE + "; on the per-size means over seeds; CI: "
                  + SHARPNESS_CI_RULE)


def emergence_metrics() -> tuple[str, ...]:
    """The metrics with a sharpness row: exact match, the registry's sharpness columns
    (scoring.columns, in registry order), and the derived predictions."""
    named = tuple(n for n, e in emergence_columns().items() if e.sharpness)
    return ("exact_match", "ref_exact", *named, "pred_exact_match_ref", "pred_exact_match_gold")


def span_metrics() -> tuple[str, ...]:
    """The continuous metrics of the where-EM-jumps table, by the registry's span rank."""
    ranked = [(e.span, i, n) for i, (n, e) in enumerate(emergence_columns().items())
              if e.span is not None]
    return tuple(n for *_, n in sorted(ranked))


# as the built-in registry has them, for readers of the constants
EMERGENCE_METRICS = emergence_metrics()
SPAN_METRICS = span_metrics()


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
        # shares above 100%; a monotone curve's one-doubling rise <= its total rise
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


def emergence_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model (at its largest budget): exact match beside the continuous metrics.

    Means are over records (one per problem x sample). ``ref_exact`` is the share of records
    whose every reference token is the argmax under teacher forcing. Predicted EMs assume
    independent tokens: ``pred_exact_match_ref`` = p^L with p the token-pooled reference accuracy and
    L the mean reference length; ``pred_exact_match_gold`` the same over all gold tokens (thinking +
    answer) and ``pred_exact_match_gold_answer`` over the gold answer tokens only.
    """
    return emergence_rows(prepare(scores))


# analysis-derived per-size columns, placed among the registry's by the same ranks
_GOLD_N_RANK = 16  # after the reference-answer block, before the gold-trace columns


def _per_size_aggs(df: pd.DataFrame) -> dict[str, tuple]:
    """Named aggregations of the registry's per-size columns (`Emergence.per_size`), by rank:
    a mean over records, or a token-pooled ratio over helper sums divided after grouping."""
    cols = [(e.rank, i, n, e) for i, (n, e) in enumerate(emergence_columns().items())]
    cols.append((_GOLD_N_RANK, -1, "gold_n", None))
    out: dict[str, tuple] = {}
    for _, _, name, view in sorted(cols, key=lambda t: (t[0], t[1])):
        if view is None:
            out[name] = ("gold_token_acc", "count")
        elif view.pooled_by:
            # the tokens of records that have the metric, so a missing value weighs nothing
            df[f"_pool_{name}"] = df[name] * df[view.pooled_by]
            df[f"_poolw_{name}"] = df[view.pooled_by].where(df[name].notna())
            out[name] = (f"_pool_{name}", "sum")
            out[f"_poolw_{name}"] = (f"_poolw_{name}", "sum")
        else:
            out[name] = (name, "mean")
    return out


def emergence_records(df: pd.DataFrame) -> pd.DataFrame:
    """The records emergence compares across sizes: one configuration per family curve. A
    family's sampled runs and its runs of another spec are families of their own (`prepare`
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


def emergence_rows(df: pd.DataFrame) -> pd.DataFrame:
    df = emergence_records(df)
    df["ref_exact"] = (df["ref_token_acc"] == 1).astype(float)
    df["_ref_hits"] = df["ref_token_acc"] * df["ref_len"]
    df["_gold_len"] = df["gold_answer_len"] + df["gold_think_len"]
    df["_gold_hits"] = df["gold_token_acc"] * df["_gold_len"]
    df["_gold_ans_hits"] = df["gold_answer_acc"] * df["gold_answer_len"]
    per_size = _per_size_aggs(df)  # before grouping: it adds the pooled helper columns
    g = df.groupby(["family", "task", "model"], sort=True, observed=True)
    out = g.agg(
        params=("params", "first"),
        size=("size", "first"),
        model_seed=("model_seed", "first"),
        budget=("budget", "first"),
        n_problems=("problem_id", "nunique"),
        n_samples=("exact_match", "size"),
        exact_match=("exact_match", "mean"),
        ref_exact=("ref_exact", "mean"),
        **per_size,
        _ref_hits=("_ref_hits", "sum"),
        _ref_tokens=("ref_len", "sum"),
        _gold_hits=("_gold_hits", "sum"),
        _gold_tokens=("_gold_len", "sum"),
        _gold_ans_hits=("_gold_ans_hits", "sum"),
        _gold_ans_tokens=("gold_answer_len", "sum"),
    ).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in [c for c in out if c.startswith("_poolw_")]:
            metric = name.removeprefix("_poolw_")
            out[metric] = out[metric] / out.pop(name).replace(0, np.nan)
        p_ref = out.pop("_ref_hits") / out.pop("_ref_tokens")
        p_gold = out.pop("_gold_hits") / out.pop("_gold_tokens")
        p_ans = out.pop("_gold_ans_hits") / out.pop("_gold_ans_tokens")
        out["pred_exact_match_ref"] = p_ref ** out["ref_len"]
        out["pred_exact_match_gold"] = p_gold ** (out["gold_answer_len"] + out["gold_think_len"])
        out["pred_exact_match_gold_answer"] = p_ans ** out["gold_answer_len"]
        out.insert(4, "log2_params", np.log2(out["params"]))
    for name in ("pred_exact_match_gold", "pred_exact_match_gold_answer"):
        out.loc[out["gold_n"] == 0, name] = np.nan
    return out.sort_values(["family", "task", "params"]).reset_index(drop=True)


def _size_replicates(rec: pd.DataFrame, metrics: list[str], n_boot: int, alpha: float,
                     seed: int | None) -> tuple[SeedDesign, dict[str, np.ndarray]]:
    """Joint bootstrap replicates (problems once for all sizes, seeds within a size) of the
    per-size mean of each record metric of one (family, task): metric -> n_boot x sizes, the
    sizes in `design` order (by params)."""
    rec = rec.assign(exact_match=rec["exact_match"].astype(float))
    if "ref_token_acc" in rec:
        rec = rec.assign(ref_exact=(rec["ref_token_acc"] == 1).astype(float))
    ckpt = rec.groupby("model", sort=False).agg(size=("size", "first"), params=("params", "mean"))
    sizes = ckpt.groupby("size")["params"].mean().sort_values()
    order = ckpt.assign(_p=ckpt["size"].map(sizes)).sort_values("_p").index
    index = {s: i for i, s in enumerate(sizes.index)}
    design = design_from(sizes.index, np.log2(sizes.to_numpy(float)),
                                 ckpt.loc[order, "size"].map(index).to_numpy())
    metrics = [m for m in metrics if m in rec]
    mean = rec.groupby(["model", "problem_id"])[metrics].mean()
    problems = mean.index.get_level_values("problem_id").unique()
    wp, ws = size_seed_weights(design, len(problems), n_boot, seed)
    out = {}
    for m in metrics:
        v = mean[m].unstack("problem_id").reindex(index=order, columns=problems).to_numpy(float)
        if not np.isfinite(v).any(axis=1).all():
            continue  # a checkpoint without the metric: no per-size curve to resample
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a replicate may miss a cell
            out[m] = size_curve(design, v, np.isfinite(v).astype(float), wp, ws,
                                        alpha).reps
    return design, out


def sharpness_table(emergence: pd.DataFrame, records: pd.DataFrame | None = None,
                    n_boot: int = SHARPNESS_CI_BOOT, alpha: float = 0.05,
                    seed: int | None = 0) -> pd.DataFrame:
    """Monotone-fit sharpness (`monotone_sharpness`) per (family, task, metric), on the
    per-size means over seeds; 'no fit: <reason>' in `status` where there is none. With the
    emergence `records` (`emergence_records`), each sharpness of a record metric gets a CI
    (``sharpness_lo``/``sharpness_hi``, `SHARPNESS_CI_RULE`): problems and seeds
    resampled jointly, each replicate refitted the way the point estimate was. The predicted
    curves (p^L) are derived, not record means: no CI."""
    metrics = emergence_metrics()
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
                design, reps = _size_replicates(rec, list(metrics), n_boot, alpha,
                                                seed)
        for metric in metrics:
            if metric not in fam or fam[metric].notna().sum() < 2:
                continue
            per = fam.assign(_size=size).groupby("_size")[["log2_params", metric]].mean()
            per = per.dropna().sort_values("log2_params")
            res = monotone_sharpness(per["log2_params"], per[metric])
            x, y = per["log2_params"].to_numpy(), per[metric].to_numpy()
            start = res.start_log2
            ci = {"sharpness_lo": math.nan, "sharpness_hi": math.nan, "sharpness_ci_boot": 0,
                  "sharpness_ci_resamples": "no CI: " + ("a derived prediction, not a record "
                                                         "mean" if metric.startswith("pred_")
                                                         else "no fit or no records")}
            if res.status == "ok" and metric in reps and set(per.index) == set(design.sizes):
                inc = bool(spearmanr(x, y).statistic >= 0) if x.size > 1 else True
                lo, hi, used = sharpness_interval(design.log2_params, reps[metric],
                                                          res.fit, inc, alpha)
                seeds = ("problems and seeds" if design.n_seeds.max() > 1
                         else "problems only (one seed per size)")
                ci = {"sharpness_lo": lo, "sharpness_hi": hi, "sharpness_ci_boot": used,
                      "sharpness_ci_resamples": seeds}
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
                }
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
        for metric in span_metrics():
            if metric not in fam or fam[metric].notna().sum() < 2:
                continue
            span = emergence_span(fam["log2_params"], fam["exact_match"], fam[metric], lo, hi)
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
                }
            )
    return pd.DataFrame(rows)


# the per-token metric of the Schaeffer test, best first: informative gold tokens (digits of
# scratchpad and answer), every gold token, the reference answer's tokens
TOKEN_METRICS = (("gold_info_acc", "gold_info_len"), ("gold_token_acc", "_gold_len"),
                 ("ref_token_acc", "ref_len"))
SEED_EXTRAS = ("gold_info_logprob", "scratch_edit_distance")


def _token_metric(rec: pd.DataFrame) -> tuple[str, str] | None:
    for acc, length in TOKEN_METRICS:
        if rec[acc].notna().any() and (rec[length] > 0).any():
            return acc, length
    return None


def seed_tables(df: pd.DataFrame, n_boot: int, alpha: float, seed: int | None):
    """(seed_curves, seed_points, schaeffer, verdicts) per (family, task) over sizes, from the
    emergence records; see `science` for the rules."""
    rec = emergence_records(df)
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
        fc = family_curves(g, acc, length, extras, n_boot, alpha, seed)
        d = fc.design
        ident = {"family": family, "task": task}
        names = {"exact_match": "exact_match", "token_acc": fc.metric}
        for key, c in fc.curves.items():
            if key == "token_acc" and metric is None:
                continue
            for i, size in enumerate(d.sizes):
                curves.append({**ident, "metric": names.get(key, key), "size": size,
                               "params": 2.0 ** d.log2_params[i],
                               "log2_params": d.log2_params[i], "n_seeds": int(d.n_seeds[i]),
                               "mean": c.mean[i], "sd": c.sd[i], "seed_min": c.seed_min[i],
                               "seed_max": c.seed_max[i], "ci_lo": c.ci_lo[i],
                               "ci_hi": c.ci_hi[i], "n_problems": fc.n_problems})
            seeds = g.groupby("model")["model_seed"].first()
            for j, model in enumerate(fc.models):
                points.append({**ident, "metric": names.get(key, key), "model": model,
                               "size": d.sizes[d.size_of[j]], "model_seed": seeds.get(model),
                               "params": 2.0 ** d.log2_params[d.size_of[j]],
                               "value": c.per_seed[j]})
        res = schaeffer_test(d, fc.curves["exact_match"], fc.curves["token_acc"],
                                     fc.tokens_per_size, alpha, fc.metric if metric else "",
                                     fc.n_problems)
        if metric is None:
            res = SchaefferResult("undetermined", "no per-token accuracy of the gold "
                                          "target or answer in the scores", res.table)
        sharp = monotone_sharpness(d.log2_params, fc.curves["exact_match"].mean)
        summary = {"l_eff": res.l_eff, "l_eff_lo": res.l_eff_lo, "l_eff_hi": res.l_eff_hi,
                   "token_slope": res.slope, "token_slope_lo": res.slope_lo,
                   "token_slope_hi": res.slope_hi, "token_metric": res.metric}
        tests.append(res.table.assign(**ident, **summary, verdict=res.verdict))
        verdicts.append({**ident, "verdict": res.verdict, "reason": res.reason,
                         "sentence": verdict_sentence(task, str(family), res, sharp),
                         "exact_match_sharpness": sharp.value, "exact_match_sharpness_fit": sharp.fit or
                         sharp.status, "n_sizes": len(d.sizes),
                         "max_seeds": int(d.n_seeds.max()), **summary})

    def frame(rows):
        return pd.DataFrame(rows)

    schaeffer = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame()
    return frame(curves), frame(points), schaeffer, frame(verdicts)

