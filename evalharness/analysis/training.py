"""Emergence over training compute: the same checkpoints read against parameters N, training
tokens D or training FLOPs 6ND (frames in, frames out).

A zoo with kept intermediate checkpoints (`zoo@all`) gives each (size, seed) a curve along
training; seeds of one size at one token level are its replicates. Every checkpoint of a
family is read in one configuration (`TRAINING_RULE`), so points along training and across
sizes compare like with like.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from evalharness.analysis.emergence_tests import monotone_sharpness, sharpness_interval
from evalharness.analysis.scaling import levels
from evalharness.stats import resample_counts, seed_draw_counts

X_AXES = {"params": "parameters N", "train_flops": "training FLOPs 6·N·D",
          "tokens": "training tokens seen D"}
X_COLUMN = {"params": "params", "train_flops": "train_flops", "tokens": "train_tokens"}
TOKEN_METRICS = ("gold_info_acc", "gold_token_acc", "ref_token_acc")
TRAINING_RULE = (
    "one configuration per family along training: greedy records where the family has any, "
    "each checkpoint's fewest 'Wait' extensions, and one budget for every checkpoint (the "
    "budget the most checkpoints ran, the largest among ties; checkpoints without it left "
    "out); a (size, token level) point is the mean over its seeds; 95% CI: percentile "
    "bootstrap over problems (one draw for every checkpoint) and seeds within the point (n-1 "
    "of n drawn, scaled); training FLOPs = 6 N D"
)
_STEP = re.compile(r"@step\d+")


def _strip(s: pd.Series) -> pd.Series:
    return s.astype(str).map(lambda v: _STEP.sub("", v))


def training_records(df: pd.DataFrame) -> pd.DataFrame:
    """The records of `TRAINING_RULE`, with ``law_family`` (the family without its @step
    tag), ``law_size`` and ``trajectory`` (size and seed)."""
    if df.empty or "train_tokens" not in df:
        return df.iloc[0:0]
    base = _strip(df["base_family"] if "base_family" in df else df["family"])
    df = df.assign(law_family=_strip(df["family"]), law_size=_strip(df["size"]),
                   train_tokens=pd.to_numeric(df["train_tokens"], errors="coerce"))
    has_greedy = df.groupby([base, df["task"]])["greedy"].transform("any")
    df = df[(df["greedy"] | ~has_greedy) & np.isfinite(df["train_tokens"])
            & np.isfinite(df["params"])]
    df = df[df["extensions"] == df.groupby(["model", "task"])["extensions"].transform("min")]
    keep = []
    for _, g in df.groupby(["law_family", "task"], sort=False):
        n = g.groupby("budget")["model"].nunique()
        keep.append(g[g["budget"] == n[n == n.max()].index.max()])
    if not keep:
        return df.iloc[0:0]
    out = pd.concat(keep)
    seed = out["model_seed"].astype(str)
    return out.assign(trajectory=out["law_size"] + " seed " + seed,
                      train_flops=6.0 * out["params"] * out["train_tokens"])


def _token_metric(g: pd.DataFrame) -> str | None:
    for m in TOKEN_METRICS:
        if m in g and g[m].notna().any():
            return m
    return None


SHARPNESS_AXES_RULE = (
    "sharpness (monotone fit, as across sizes) of each seed-mean curve: along training "
    "(x = log2 training FLOPs of one size's token levels; at fixed N a doubling of D is a "
    "doubling of C, so the tokens axis gives the same share) and across sizes (x = log2 N at "
    "one token level); CI: the same fit on every bootstrap replicate of the curve"
)


def _sharpness_rows(curves: list[dict], reps: dict, alpha: float) -> list[dict]:
    """Sharpness of every curve of `curves` along training (per size) and across sizes (per
    token level), with a CI from the replicates `reps` keyed like the curve points."""
    if not curves:
        return []
    c = pd.DataFrame(curves)
    out = []
    for axis, group, x_col in (("train_flops", "size", "train_flops"),
                               ("params", "token_level", "params")):
        for (family, task, metric, g_val), g in c.groupby(
                ["family", "task", "metric", group], sort=True):
            g = g.sort_values(x_col)
            x, y = np.log2(g[x_col].to_numpy(float)), g["mean"].to_numpy(float)
            res = monotone_sharpness(x, y)
            lo = hi = np.nan
            if res.status == "ok":
                r = np.column_stack([reps[(family, task, metric, s, k)]
                                     for s, k in zip(g["size"], g["token_level"], strict=True)])
                lo, hi, _ = sharpness_interval(x, r, res.fit, bool(y[-1] >= y[0]), alpha)
            out.append({"family": family, "task": task, "metric": metric, "axis": axis,
                        "along": f"{group} {g_val}", "status": res.status,
                        "sharpness": res.value, "sharpness_lo": lo, "sharpness_hi": hi,
                        "fit": res.fit, "points": len(g), "from": float(g[x_col].min()),
                        "to": float(g[x_col].max()),
                        "problems": int(g["problems"].max()), "runs": ";".join(sorted(
                            {x for s in g["runs"] for x in s.split(";")})),
                        "rule": SHARPNESS_AXES_RULE})
    return out


def training_tables(df: pd.DataFrame, n_boot: int = 1000, alpha: float = 0.05,
                    seed: int | None = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(training_points: one row per checkpoint, training_curves: one row per (family, task,
    metric, size, token level) with the seed mean and its CI, training_sharpness: sharpness
    along training and across sizes with CIs) over the `TRAINING_RULE` records. Empty where
    no family has checkpoints at >= 2 token levels."""
    rec = training_records(df)
    pts, curves, cell_reps = [], [], {}
    for (family, task), g in rec.groupby(["law_family", "task"], sort=True):
        if g["train_tokens"].nunique() < 2:
            continue
        metric = _token_metric(g)
        g = g.assign(exact_match=g["exact_match"].astype(float))
        cols = ["exact_match"] + ([metric] if metric else [])
        ckpt = g.groupby("model", sort=True).agg(
            size=("law_size", "first"), model_seed=("model_seed", "first"),
            params=("params", "first"), train_tokens=("train_tokens", "first"),
            train_flops=("train_flops", "first"), trajectory=("trajectory", "first"),
            budget=("budget", "first"), runs=("run_id", lambda r: ";".join(sorted(set(map(str, r))))),
            problems=("problem_id", "nunique"))
        level = levels(ckpt["train_tokens"].to_numpy())
        # a token level's tokens: the mean over its checkpoints (seeds differ by a few tokens)
        ckpt["token_level"] = level
        cell = ckpt["size"].astype(str) + " @" + ckpt["token_level"].astype(str)
        per = g.groupby(["model", "problem_id"])[cols].mean()
        problems = per.index.get_level_values("problem_id").unique()
        rng = np.random.default_rng(seed)
        wp = resample_counts(len(problems), n_boot, rng)
        ws = seed_draw_counts(cell.to_numpy(), ckpt["trajectory"].to_numpy(), n_boot, rng)
        for m in cols:
            v = per[m].unstack("problem_id").reindex(index=ckpt.index, columns=problems)
            v = v.to_numpy(float)
            have = np.isfinite(v)
            val = np.where(have, v, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                point = val.sum(1) / have.sum(1)
                reps = (wp @ val.T) / (wp @ have.T)  # B x checkpoints
            name = "exact_match" if m == "exact_match" else m
            for i, model in enumerate(ckpt.index):
                r = ckpt.loc[model]
                pts.append({"family": family, "task": task, "metric": name, "model": model,
                            "size": r["size"], "model_seed": r["model_seed"],
                            "params": r["params"], "train_tokens": r["train_tokens"],
                            "train_flops": r["train_flops"], "budget": r["budget"],
                            "value": point[i], "problems": int(have[i].sum()),
                            "runs": r["runs"]})
            for idx in pd.Series(range(len(ckpt))).groupby(cell.to_numpy()).groups.values():
                idx = np.asarray(idx)
                w = ws[:, idx]
                ok = np.isfinite(reps[:, idx])
                with np.errstate(invalid="ignore", divide="ignore"):
                    rm = (np.where(ok, reps[:, idx], 0) * w).sum(1) / (w * ok).sum(1)
                lo, hi = np.nanquantile(rm, [alpha / 2, 1 - alpha / 2])
                sub = ckpt.iloc[idx]
                cell_reps[(family, task, name, sub["size"].iloc[0],
                           int(sub["token_level"].iloc[0]))] = rm
                curves.append({
                    "family": family, "task": task, "metric": name,
                    "size": sub["size"].iloc[0], "token_level": int(sub["token_level"].iloc[0]),
                    "params": float(sub["params"].mean()),
                    "train_tokens": float(sub["train_tokens"].mean()),
                    "train_flops": float(sub["train_flops"].mean()),
                    "n_seeds": int(sub["trajectory"].nunique()),
                    "mean": float(np.nanmean(point[idx])), "ci_lo": float(lo),
                    "ci_hi": float(hi), "seed_min": float(np.nanmin(point[idx])),
                    "seed_max": float(np.nanmax(point[idx])),
                    "budget": sub["budget"].iloc[0],
                    "problems": int(have[idx].any(0).sum()),
                    "runs": ";".join(sorted({x for s in sub["runs"] for x in s.split(";")})),
                    "rule": TRAINING_RULE})
    return (pd.DataFrame(pts), pd.DataFrame(curves),
            pd.DataFrame(_sharpness_rows(curves, cell_reps, alpha)))
