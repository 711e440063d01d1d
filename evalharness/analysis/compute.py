"""Compute: the inference-FLOPs frontier and the buy decision tables (exchange, cheapest)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from evalharness.analysis.buy import cheapest_configs, crossovers, fit_exchange, flat, plateau_cut
from evalharness.analysis.records import POINT, describe_problems, k_grid, problem_sets
from evalharness.flops import RULE_FALLBACK

FLOPS_RULE = (
    "inference FLOPs per problem = mean over samples of the record's FLOPs * n, a record with "
    "L = prompt + generated tokens costing 2 * N * L + 2 * n_layers * d_attn * L(L+1)/2 "
    "(Kaplan: N = non-embedding parameters, d_attn = heads * head_dim, prefill included; "
    "column flops_rule), or 2 * params * L where the model's config is unknown; flops_2n keeps "
    "2 * params * tokens * n for comparison; accuracy = expected majority vote over n samples; "
    "frontier = points no other point of the task beats on both FLOPs (<=) and accuracy (>=)"
)


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
        for S, block in problem_sets(tp, POINT):
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
                        "flops_rule": rule, "maj_at_n": row[f"maj@{k}"],
                        "pass_at_n": row[f"pass@{k}"], "best_of_n": row[f"bok@{k}"],
                    })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["on_frontier"] = False
    for _, idx in out.groupby(["task", "problem_set"]).groups.items():
        out.loc[idx, "on_frontier"] = pareto_frontier(
            out.loc[idx, "flops"], out.loc[idx, "maj_at_n"]
        )
    return out


def _exchange_cells(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int]) -> list[tuple]:
    """(family, task, axis, at, cells) for each surface to fit: thinking budget over the
    greedy sweeps, samples n over each budget of the sampled runs (maj@n)."""
    meta = df.groupby("model", sort=False).agg(
        base=("base_model", "first"), family=("family", "first"), params=("params", "first"),
        greedy=("greedy", "first"), temperature=("temperature", "first"),
    )
    pp = pp.join(meta, on="model")
    pp = pp[pp["extensions"] == pp.groupby("model")["extensions"].transform("min")]
    out = []
    greedy = pp[pp["greedy"].astype(bool)]
    for (family, task), g in greedy.groupby(["family", "task"], sort=True):
        cells = g.assign(level=g["budget"].astype(float), y=g["exact_match"])
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
                   alpha: float, seed: int | None) -> pd.DataFrame:
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
            cut = pd.concat([plateau_cut(c) for _, c in sub.groupby("model", sort=True)])
            fit = fit_exchange(cut[["problem_id", "model", "params", "level", "y"]],
                                   axis, n_boot, alpha, seed)
            rows.append({"family": family, "task": task, "axis": axis, "setting": at,
                         "bucket": bucket, **flat(fit), "cells": fit_cells(cut)})
    return pd.DataFrame(rows)


_STEP = re.compile(r"@step\d+")


def strip_step(name: object) -> str:
    """``zoo/arith-h48@step750 [spec]`` -> ``zoo/arith-h48 [spec]``: the size one buys, whatever
    the training it saw (a kept checkpoint is the same N at a smaller D, not another size)."""
    return _STEP.sub("", str(name))


def _buy_points(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """Per (problem, configuration, seed) accuracy (maj@n) and inference FLOPs (per-sample mean
    * n) for every (checkpoint, budget, n) of the compute table. `model` is the size one buys
    (N: seeds and kept training checkpoints are its replicates and levels), `checkpoint` the
    (size, training tokens) it was read at; the configuration label names the checkpoint and
    the decoding, so a greedy and a sampled run of one budget and n, or two checkpoints of one
    size, are two configurations, never one."""
    fam = "base_family" if "base_family" in df else "family"
    meta = df.groupby("model", sort=False).agg(
        size=("base_size", "first"), seed=("model_seed", "first"), decoding=("decoding", "first"),
        runs=("run_id", lambda r: ";".join(sorted(set(map(str, r))))),
        params=("params", "first"), tokens=("train_tokens", "first"),
        base=("base_model", "first"), family=(fam, "first"))
    meta["tokens"] = pd.to_numeric(meta["tokens"], errors="coerce")
    frames = []
    for k in ks:
        col = f"maj@{k}"
        g = pp[pp[col].notna()] if col in pp else pp.iloc[0:0]
        if g.empty:
            continue
        ext = np.where(g["extensions"] > 0, " +" + g["extensions"].astype(str) + " Wait", "")
        ckpt = g["model"].map(meta["size"]).astype(str)
        frames.append(pd.DataFrame({
            "task": g["task"].to_numpy(), "problem_id": g["problem_id"].to_numpy(),
            "model": ckpt.map(strip_step).to_numpy(), "checkpoint": ckpt.to_numpy(),
            "seed": g["model"].map(meta["seed"]).to_numpy(float),
            "config": (ckpt + " T=" + g["budget"].astype(str) + ext + f" n={k} "
                       + g["model"].map(meta["decoding"])).to_numpy(),
            "budget": g["budget"].to_numpy(), "n": k, "maj_at_n": g[col].to_numpy(float),
            "flops": g["flops"].to_numpy(float) * k, "difficulty": np.nan,
            "run_id": g["model"].map(meta["runs"]).to_numpy(),
            "params": g["model"].map(meta["params"]).to_numpy(float),
            "tokens": g["model"].map(meta["tokens"]).to_numpy(float),
            "base_model": g["model"].map(meta["base"]).to_numpy(),
            "family": g["model"].map(meta["family"]).map(strip_step).to_numpy(),
            "decoding": g["model"].map(meta["decoding"]).to_numpy(),
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def buy_points(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    """`_buy_points` with each problem's difficulty (the problem-set descriptions name it)."""
    points = _buy_points(pp, df, ks)
    if not points.empty:
        diff = df.groupby(["task", "problem_id"])["difficulty"].first().rename("difficulty")
        points = points.drop(columns="difficulty").join(diff, on=["task", "problem_id"])
    return points


def buy_tables(pp: pd.DataFrame, df: pd.DataFrame, ks: list[int], info: pd.DataFrame,
               n_boot: int, alpha: float, seed: int | None):
    """(exchange, cheapest, crossover, buy_costs) tables; see `evalharness.buy`."""
    exchange = exchange_table(pp, df, ks, n_boot, alpha, seed)
    points = buy_points(pp, df, ks)
    # training FLOPs of a size: the mean over its seeds (one recipe: they differ by a hair)
    size_of = df.groupby("base_model")["base_size"].first()
    train = ({} if info.empty else info.assign(size=info["model"].map(size_of))
             .groupby("size")["train_flops"].mean().to_dict())
    cheap, cross, lines = [], [], []
    if not points.empty:
        points = points[np.isfinite(points["flops"])]
    for task, g in points.groupby("task", sort=True) if not points.empty else []:
        # the inference-only choice compares sizes (a runner-up is another N, not the same N
        # read earlier in its training); training cost differs per checkpoint, so the
        # crossover's lines are checkpoints
        cheap.append(cheapest_configs(g, n_boot=n_boot, alpha=alpha, seed=seed)
                     .assign(task=task))
        c, ln = crossovers(g.assign(model=g["checkpoint"]), train, n_boot=n_boot, alpha=alpha,
                           seed=seed)
        cross.append(c.assign(task=task))
        lines.append(ln.assign(task=task))

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return exchange, cat(cheap), cat(cross), cat(lines)

