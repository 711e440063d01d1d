"""The accuracy surface over parameters N, training tokens D and thinking budget T, and the
three exchange rates it implies (frames in, frames out).

logit(acc) = a + b*u + c*v + e*w, u = log2 N, v = log2 T, w = log2 D, each centred on the
(checkpoint, budget) cells' mean, so a is the logit at that stated point and b, c, e the
slopes there. A pairwise interaction (u*v, u*w, v*w) is kept only when its bootstrap CI
excludes 0. At matched accuracy, at the stated point:

  thinking doublings one parameter doubling is worth   = b / c
  thinking doublings one training-token doubling is worth = e / c
  parameter doublings one training-token doubling is worth = e / b
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from evalharness.analysis.buy import logistic_fit
from evalharness.analysis.scaling import levels
from evalharness.stats import percentile_interval, resample_counts, seed_draw_counts

MIN_LEVELS = 3
FLOOR, CEILING = 0.02, 0.98
RATES = {"T_per_N": ("b", "c"), "T_per_D": ("e", "c"), "N_per_D": ("e", "b")}
RATE_WORDS = {"T_per_N": "thinking doublings per parameter doubling",
              "T_per_D": "thinking doublings per training-token doubling",
              "N_per_D": "parameter doublings per training-token doubling"}
# Problems differ in difficulty, so the fitted (population-averaged) slopes are attenuated
# against each problem's own; the attenuation is common to b, c and e, and cancels in the rates.
SURFACE3_RULE = (
    "logit(acc) = a + b log2 N + c log2 T + e log2 D over problems x (checkpoint, T) cells, "
    "T > 0, greedy records, each checkpoint's fewest 'Wait' extensions, logs centred on the "
    "cells' mean (the stated point); pairwise interactions kept only if their CI excludes 0; "
    "rates at the stated point: b/c, e/c, e/b; CIs: percentile bootstrap over problems and "
    "seeds within a size (n-1 of n drawn); not identifiable when N, D or T has < 3 levels, "
    "fewer than 3 cells lie strictly between 0.02 and 0.98, or the CI of a slope a rate "
    "divides by includes 0"
)
_STEP = re.compile(r"@step\d+")
_NAMES = ("uv", "uw", "vw")


def fit_surface3(cells: pd.DataFrame, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int | None = 0) -> dict:
    """`cells`: one row per (problem, checkpoint, budget) with problem_id, model, size,
    trajectory, params, tokens, level (T > 0) and y (accuracy in [0, 1]). Returns the
    surface's slopes, kept interactions and the three rates with CIs, or a status saying why
    not."""
    df = cells[(cells["level"] > 0) & cells["y"].notna()]
    out = {"n_problems": int(df["problem_id"].nunique()), "n_checkpoints": int(df["model"].nunique())}
    for name, col in (("N", "params"), ("D", "tokens"), ("T", "level")):
        k = int(levels(df[col].to_numpy(float)).max() + 1) if len(df) else 0
        out[f"levels_{name}"] = k
        if k < MIN_LEVELS:
            return {**out, "status": f"not identifiable: {name} has {k} level"
                    f"{'s' * (k != 1)} (need {MIN_LEVELS})"}
    wide = df.pivot_table(index="problem_id", columns=["model", "level"], values="y")
    y = wide.to_numpy(float)
    present = ~np.isnan(y)
    col_model = wide.columns.get_level_values(0).to_numpy()
    col_level = wide.columns.get_level_values(1).to_numpy(float)
    meta = df.groupby("model").agg(params=("params", "first"), tokens=("tokens", "first"),
                                   size=("size", "first"), trajectory=("trajectory", "first"))
    cell_mean = np.nanmean(y, axis=0)
    inside = int(np.sum((cell_mean > FLOOR) & (cell_mean < CEILING)))
    if inside < MIN_LEVELS:
        return {**out, "status": f"not identifiable: only {inside} cells strictly between "
                f"{FLOOR:g} and {CEILING:g} accuracy (saturated, or a step)"}
    u = np.log2(meta.loc[col_model, "params"].to_numpy(float))
    w = np.log2(meta.loc[col_model, "tokens"].to_numpy(float))
    v = np.log2(col_level)
    at = {"log2_N": float(u.mean()), "log2_T": float(v.mean()), "log2_D": float(w.mean())}
    u, v, w = u - u.mean(), v - v.mean(), w - w.mean()
    rng = np.random.default_rng(seed)
    wp = np.vstack([np.ones(y.shape[0]), resample_counts(y.shape[0], n_boot, rng)])
    models = meta.index.to_numpy()
    ws = np.vstack([np.ones(len(models)), seed_draw_counts(
        meta["size"].to_numpy(), meta["trajectory"].to_numpy(), n_boot, rng)])
    col_w = ws[:, pd.Index(models).get_indexer(col_model)]
    succ = (wp @ np.where(present, y, 0.0)) * col_w
    trials = (wp @ present.astype(float)) * col_w
    inter = {"uv": u * v, "uw": u * w, "vw": v * w}
    full = logistic_fit(np.column_stack([u, v, w, *inter.values()]), succ, trials)
    keep = [n for i, n in enumerate(_NAMES)
            if _excludes_zero(*percentile_interval(full[1:, 4 + i], alpha))]
    x = np.column_stack([u, v, w, *(inter[n] for n in keep)])
    beta = logistic_fit(x, succ, trials)
    est = {"a": beta[:, 0], "b": beta[:, 1], "c": beta[:, 2], "e": beta[:, 3]}
    for i, n in enumerate(keep):
        est[f"d_{n}"] = beta[:, 4 + i]
    with np.errstate(invalid="ignore", divide="ignore"):
        for r, (num, den) in RATES.items():
            est[r] = est[num] / est[den]
    for k, reps in est.items():
        lo, hi = percentile_interval(reps[1:], alpha)
        out.update({k: float(reps[0]), f"{k}_lo": lo, f"{k}_hi": hi})
    out.update({f"at_{k}": val for k, val in at.items()},
               interactions=" ".join(keep) or "none")
    flat = [nm for nm, k in (("N", "b"), ("T", "c"), ("D", "e"))
            if not _excludes_zero(out[f"{k}_lo"], out[f"{k}_hi"])]
    out["status"] = ("ok" if not flat else "not identifiable: the CI of the slope along "
                     + " and ".join(flat) + " includes 0 (rates dividing by it are void)")
    if flat:  # a rate is void when its divisor's CI includes 0; the others stand
        for r, (_, den) in RATES.items():
            if {"b": "N", "c": "T", "e": "D"}[den] in flat:
                out[r] = out[f"{r}_lo"] = out[f"{r}_hi"] = math.nan
    return out


def _excludes_zero(lo: float, hi: float) -> bool:
    return math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0)


def surface_table(pp: pd.DataFrame, df: pd.DataFrame, n_boot: int = 1000,
                  alpha: float = 0.05, seed: int | None = 0) -> pd.DataFrame:
    """One row per (family without @step, task) of greedy checkpoints with training tokens:
    `fit_surface3` on per-problem accuracy at every budget."""
    if pp.empty or "train_tokens" not in df:
        return pd.DataFrame()
    strip = lambda s: s.astype(str).map(lambda v: _STEP.sub("", v))  # noqa: E731
    meta = df.groupby("model", sort=False).agg(
        family=("family", "first"), params=("params", "first"), greedy=("greedy", "first"),
        d_tokens=("train_tokens", "first"), size=("size", "first"),
        seed=("model_seed", "first"), run_id=("run_id", lambda r: ";".join(sorted(set(r)))))
    meta = meta.assign(family=strip(meta["family"]), size=strip(meta["size"]))
    meta["trajectory"] = meta["size"] + " seed " + meta["seed"].astype(str)
    pp = pp.join(meta, on="model")
    pp = pp[pp["greedy"].astype(bool)
            & np.isfinite(pd.to_numeric(pp["d_tokens"], errors="coerce"))]
    pp = pp[pp["extensions"] == pp.groupby("model")["extensions"].transform("min")]
    rows = []
    for (family, task), g in pp.groupby(["family", "task"], sort=True):
        res = fit_surface3(g.assign(level=g["budget"].astype(float), y=g["exact_match"],
                                    tokens=g["d_tokens"]), n_boot, alpha, seed)
        runs = ";".join(sorted({r for s in g["run_id"] for r in s.split(";")}))
        rows.append({"family": family, "task": task, **res, "problems": res["n_problems"],
                     "runs": runs, "rule": SURFACE3_RULE})
    return pd.DataFrame(rows)
