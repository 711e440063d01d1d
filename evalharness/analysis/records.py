"""Score rows -> per-problem rows: the configuration key, votes, problem sets, model info."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd

from evalharness.analysis.buy import describe_ids, difficulty_of
from evalharness.flops import add_flops
from evalharness.metrics import (
    best_of_k_weights,
    majority_at_k_counts,
    pass_at_k,
)
from evalharness.scoring import canonical_answer
from evalharness.scoring.columns import EMERGENCE_COLUMNS, emergence_columns

CURVE = ["model", "task", "extensions"]  # one accuracy-vs-budget curve
POINT = CURVE + ["budget"]  # one point on it


# ---------------------------------------------------------------------------------------------
# Per-problem aggregation
# ---------------------------------------------------------------------------------------------


def k_grid(n: int) -> list[int]:
    """Every k up to 16 samples, then powers of two plus n itself (keeps tables short)."""
    if n <= 16:
        return list(range(1, n + 1))
    return sorted({2**i for i in range(int(math.log2(n)) + 1)} | {n})


_NEEDED = POINT + [
    "problem_id", "sample", "pred", "exact_match", "thinking_tokens", "cut", "prompt_tokens",
    "generated_tokens", "ref_len", "ref_token_acc", "ref_logprob_mean", "ref_logprob_sum",
    "ref_prob", "edit_distance", "answer_logprob_mean", "gold_think_acc", "gold_answer_acc",
    "gold_token_acc", "gold_answer_logprob", "gold_answer_len", "gold_think_len",
    "answer_type", "params", "family", "temperature", "difficulty", *EMERGENCE_COLUMNS,
    "natural_thinking_tokens", "model_seed", "size", "gold_info_acc", "gold_info_logprob",
    "gold_info_len", "scratch_edit_distance", "top_p", "run_id", "spec_label",
    "gold_think_logprob", "train_tokens",
]
_NEEDED = list(dict.fromkeys(_NEEDED))


def _needed() -> list[str]:
    """`_NEEDED` and every column the registry shows against model size (read now, so a
    column registered after import is carried too)."""
    views = emergence_columns()
    lengths = [v.pooled_by for v in views.values() if v.pooled_by]
    return list(dict.fromkeys([*_NEEDED, *views, *lengths]))


def prepare(scores: pd.DataFrame) -> pd.DataFrame:
    """The columns analysis reads, with defaults for frames not joined with manifests."""
    needed = _needed()
    df = scores[[c for c in needed if c in scores]].copy()
    for name in needed:
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
    df["exact_match"] = df["exact_match"].astype(bool)
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


def vote_classes(df: pd.DataFrame) -> np.ndarray:
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
    return np.where(df["exact_match"].to_numpy(), 0, np.where(codes < 0, -1, codes + 1))


def majority_columns(gid: np.ndarray, votes: np.ndarray, n: np.ndarray, ks: list[int]):
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


def best_of_columns(
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
    return per_problem_rows(prepare(scores))


def per_problem_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    keys = POINT + ["problem_id"]
    gid = df.groupby(keys, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    first = np.unique(gid, return_index=True)[1]
    out = df.iloc[first][keys].reset_index(drop=True)
    n = np.bincount(gid)
    c = np.bincount(gid, weights=df["exact_match"].to_numpy(dtype=float))
    out["n"], out["c"], out["exact_match"] = n, c, c / n
    out["tokens"] = np.bincount(gid, weights=df["tokens"].to_numpy()) / n
    if "flops" in df:  # mean inference FLOPs of one sample of this problem
        out["flops"] = np.bincount(gid, weights=df["flops"].to_numpy(dtype=float)) / n
    ks = sorted({k for m in np.unique(n) for k in k_grid(int(m))})
    pk = pass_at_k(n[:, None], c[:, None], np.asarray(ks)[None, :])  # NaN where k > n
    maj = majority_columns(gid, vote_classes(df), n, ks)
    bok = best_of_columns(
        gid, df["answer_logprob_mean"].to_numpy(dtype=float), df["exact_match"].to_numpy(), n, ks
    )
    cols = {}
    for j, k in enumerate(ks):
        cols[f"pass@{k}"], cols[f"maj@{k}"], cols[f"bok@{k}"] = pk[:, j], maj[:, j], bok[:, j]
    return pd.concat([out, pd.DataFrame(cols)], axis=1), ks


def flatten(obj) -> dict:
    d = asdict(obj)
    return {k: (" ".join(map(str, v)) if isinstance(v, tuple) else v) for k, v in d.items()}


def problem_sets(pp: pd.DataFrame, keys: list[str]) -> list[tuple[frozenset, pd.DataFrame]]:
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
    return describe_ids(np.array(sorted(ids, key=str), dtype=object),
                         np.array(sorted(every, key=str), dtype=object), difficulty)


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
                                     "info_source"])
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
                     "train_flops": train, "info_source": source})
    return pd.DataFrame(rows)


def with_flops(df: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """Per-record ``flops`` and ``flops_rule`` (see `evalharness.flops`), by base model."""
    res = add_flops(df.assign(model=df["base_model"]), info)
    return df.assign(flops=res["flops"].to_numpy(), flops_rule=res["flops_rule"].to_numpy())


def difficulty_column(df: pd.DataFrame) -> pd.Series:
    out = pd.Series(np.nan, index=df.index)
    for task, idx in df.groupby("task", sort=False).groups.items():
        out.loc[idx] = difficulty_of(task, df.loc[idx, "problem_id"],
                                         df.loc[idx, "difficulty"]).to_numpy()
    return out

