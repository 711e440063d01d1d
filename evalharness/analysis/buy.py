"""The buy decision: a bigger model, a longer think, or more samples (frames in, frames out).

Three answers, each with a bootstrap over problems (and over seed replicates of one model size,
where a family has several checkpoints of equal parameter count):

- the **exchange rate**: a logistic surface logit(acc) = a + b*log2 N + c*log2 X (X the thinking
  budget T, or the number of samples n under majority vote) fitted per family, task and
  difficulty bucket; at matched accuracy one doubling of X is worth c/b doublings of N. An
  interaction term d*log2 N*log2 X is kept only when its bootstrap CI excludes 0, and then the
  rate (c + d*log2 N)/(b + d*log2 X) is read at a stated point (the data's mean log2 N, log2 X).
- the **cheapest configuration** reaching a target accuracy, at inference FLOPs per problem,
  with the runner-up (the cheapest configuration of *another* model), the margin between them
  and how often the winning model changes when problems are resampled.
- the **query-volume crossover**: with total cost = training FLOPs + Q * inference FLOPs per
  query, the Q at which the preferred model changes.

Snell et al. (2024): a smaller model thinking longer can match a larger one on easier problems,
so the exchange rate is reported per difficulty bucket. Sardana & Frankle (2023): at high query
volume inference dominates, which is what the crossover measures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from evalharness.stats import (
    group_resample_counts,
    percentile_interval,
    resample_counts,
    seed_resample_weights,
    seeded_means,
)

TARGETS = (0.5, 0.8, 0.9)
MIN_LEVELS = 3
FLOOR, CEILING = 0.02, 0.98  # cells at or beyond these are saturated
RIDGE = 1e-3  # on the slopes only: keeps a separated (saturated) replicate finite
SURFACE_RULE = (
    "logit(acc) = a + b*log2 N + c*log2 X over problems x (model, X) cells, X > 0; each model's "
    "curve cut at its plateau (budgets up to the first within 0.02 of its maximum); "
    f"interaction d*log2 N*log2 X kept only if its CI excludes 0; not identifiable when an "
    f"axis has < {MIN_LEVELS} levels, fewer than {MIN_LEVELS} (model, X) cells lie strictly "
    f"between {FLOOR} and {CEILING} accuracy (all saturated, or a step), the CI of b or c "
    "includes 0, or either lies below 0"
)
CHEAPEST_RULE = (
    "configurations (size, decoding, T, n) are compared only on problems all of them saw, one "
    "table block per problem set; a size's accuracy is the mean over its seeds; winner: the "
    "configuration with the lowest inference FLOPs per problem among those whose accuracy "
    "(majority vote of n) reaches the target; runner-up: the cheapest such configuration of "
    "another size; margin = runner-up FLOPs / winner FLOPs; CIs and flip rate (share of "
    "resamples in which another size, or none, wins) resample seeds within each size and "
    "problems"
)
CROSSOVER_RULE = (
    "total cost(Q) = training FLOPs + Q * inference FLOPs per query of the model's cheapest "
    "configuration reaching the target; the crossover is the Q where the lower envelope "
    "changes model; its CI recomputes both models' inference FLOPs per problem resample"
)


# ----------------------------------------------------------------------------- difficulty

DifficultyFn = Callable[[str], float]
DIFFICULTY: dict[str, DifficultyFn] = {}
_OPERANDS = re.compile(r"^[a-z]+-(\d+)[+*x-](\d+)$")


def register_difficulty(*tasks: str) -> Callable[[DifficultyFn], DifficultyFn]:
    """Register a problem-id -> difficulty level function for `tasks`."""

    def deco(fn: DifficultyFn) -> DifficultyFn:
        for t in tasks:
            DIFFICULTY[t] = fn
        return fn

    return deco


@register_difficulty("add_sweep", "add5", "addition", "mul", "chat_arith")
def operand_digits(problem_id: str) -> float:
    """Synthetic arithmetic ids (``add-958+67``): digits of the longer operand."""
    found = _OPERANDS.match(str(problem_id))
    return float(max(len(found.group(1)), len(found.group(2)))) if found else math.nan


def difficulty_of(task: str, problem_ids: pd.Series, given: pd.Series | None = None) -> pd.Series:
    """Difficulty level per problem: a ``difficulty`` field where the records carry one, else
    the task's registered function, else NaN (no buckets)."""
    if given is not None and pd.to_numeric(given, errors="coerce").notna().any():
        return pd.to_numeric(given, errors="coerce")
    fn = DIFFICULTY.get(str(task))
    if fn is None:
        return pd.Series(np.nan, index=problem_ids.index)
    return problem_ids.map(fn).astype(float)


# ----------------------------------------------------------------------------- logistic fit


def logistic_fit(
    x: np.ndarray, successes: np.ndarray, trials: np.ndarray, iters: int = 50
) -> np.ndarray:
    """Binomial logistic regression, batched: one coefficient row per row of `successes`.

    `x` is cells x features (an intercept column is added); `successes` and `trials` are
    replicates x cells (fractional successes allowed: quasi-binomial). Newton steps are
    clipped so a separated replicate stays finite; the tiny ridge on the slopes does the same.
    """
    xs = np.column_stack([np.ones(len(x)), x])
    s = np.atleast_2d(successes).astype(float)
    t = np.atleast_2d(trials).astype(float)
    k = xs.shape[1]
    pen = np.eye(k) * RIDGE
    pen[0, 0] = 0.0
    beta = np.zeros((s.shape[0], k))
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.clip(s.sum(1) / t.sum(1), 1e-3, 1 - 1e-3)
    beta[:, 0] = np.log(p0 / (1 - p0))
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(beta @ xs.T)))
        w = t * p * (1 - p)
        grad = (s - t * p) @ xs - beta @ pen
        hess = np.einsum("bc,ci,cj->bij", w, xs, xs) + pen + 1e-9 * np.eye(k)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        step = np.clip(step, -2.0, 2.0)
        beta += step
        if np.abs(step).max() < 1e-7:
            break
    return beta


@dataclass(frozen=True)
class ExchangeFit:
    """logit(acc) = a + b*u + c*v (+ d*u*v) with u = log2 N - at_log2_params and
    v = log2 X - at_log2_x (centred: a is the logit at the stated point, b and c the slopes
    there); rate = c/b = doublings of N that one doubling of X is worth at matched accuracy."""

    status: str  # "ok" or "not identifiable: <reason>"
    axis: str  # "budget" (thinking tokens T) or "samples" (n, majority vote)
    a: float = math.nan
    b: float = math.nan
    c: float = math.nan
    d: float = math.nan  # NaN when the interaction is not supported
    b_lo: float = math.nan
    b_hi: float = math.nan
    c_lo: float = math.nan
    c_hi: float = math.nan
    d_lo: float = math.nan
    d_hi: float = math.nan
    rate: float = math.nan
    rate_lo: float = math.nan
    rate_hi: float = math.nan
    at_log2_params: float = math.nan  # where the rate is read (matters with an interaction)
    at_log2_x: float = math.nan
    n_problems: int = 0
    n_models: int = 0
    sizes: tuple[float, ...] = ()
    levels: tuple[float, ...] = ()
    mean_acc: float = math.nan
    # how much the one number hides: seeds behind each size (min, max), the local rate's range
    # over the measured (size, level) cells (equal to `rate` without an interaction), and the
    # fitted surface's largest miss of a measured cell's accuracy
    seeds_min: int = 0
    seeds_max: int = 0
    rate_min: float = math.nan
    rate_max: float = math.nan
    max_residual: float = math.nan
    worst_cell: str = ""
    rule: str = SURFACE_RULE

    @property
    def identifiable(self) -> bool:
        return self.status == "ok"


def _excludes_zero(lo: float, hi: float) -> bool:
    return math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0)


def fit_exchange(
    cells: pd.DataFrame,
    axis: str = "budget",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> ExchangeFit:
    """Fit the surface and the exchange rate from per-problem cells.

    `cells`: one row per (problem, model, level) with columns problem_id, model, params,
    level (T or n, > 0) and y (that problem's accuracy there, in [0, 1]). Models of equal
    params are seed replicates of one size: the bootstrap resamples them as well as problems.
    """
    df = cells[(cells["level"] > 0) & cells["y"].notna() & (cells["params"] > 0)]
    sizes = tuple(sorted(df["params"].unique()))
    levels = tuple(sorted(df["level"].unique()))
    per_size = df.groupby("params")["model"].nunique()
    base = {"axis": axis, "sizes": sizes, "levels": levels,
            "n_problems": int(df["problem_id"].nunique()), "n_models": int(df["model"].nunique()),
            "seeds_min": int(per_size.min()) if len(per_size) else 0,
            "seeds_max": int(per_size.max()) if len(per_size) else 0}
    if len(sizes) < MIN_LEVELS or len(levels) < MIN_LEVELS:
        what = "model sizes" if len(sizes) < MIN_LEVELS else f"levels of {axis}"
        have = min(len(sizes), len(levels)) if len(sizes) < MIN_LEVELS else len(levels)
        return ExchangeFit(f"not identifiable: only {have} {what} (need {MIN_LEVELS})", **base)
    # problems x (model, level) matrix of outcomes
    wide = df.pivot_table(index="problem_id", columns=["model", "level"], values="y")
    y = wide.to_numpy(float)
    present = ~np.isnan(y)
    col_model = wide.columns.get_level_values(0).to_numpy()
    col_level = wide.columns.get_level_values(1).to_numpy(float)
    params = df.groupby("model")["params"].first()
    col_params = params.loc[col_model].to_numpy(float)
    cell_mean = np.nanmean(y, axis=0)
    base["mean_acc"] = float(np.nanmean(y))
    if np.all((cell_mean <= 0) | (cell_mean >= 1)):
        return ExchangeFit("not identifiable: every cell's accuracy is 0 or 1 (saturated)", **base)
    inside = int(np.sum((cell_mean > FLOOR) & (cell_mean < CEILING)))
    if inside < MIN_LEVELS:
        # a step from 0 to 1 (quasi-separation) has no slope to read a rate from
        return ExchangeFit(
            f"not identifiable: only {inside} (model, {axis}) cells strictly between "
            f"{FLOOR:g} and {CEILING:g} accuracy (need {MIN_LEVELS}); the surface is a step",
            **base,
        )
    # cells: (size, level) pairs; replicate models of a size pool into the same cell
    keys = pd.MultiIndex.from_arrays([col_params, col_level])
    cell_id, cell_keys = pd.factorize(keys)
    onehot = np.zeros((y.shape[1], len(cell_keys)))
    onehot[np.arange(y.shape[1]), cell_id] = 1.0
    xn = np.log2(np.array([k[0] for k in cell_keys], dtype=float))
    xl = np.log2(np.array([k[1] for k in cell_keys], dtype=float))
    rng = np.random.default_rng(seed)
    w = np.vstack([np.ones(y.shape[0]), resample_counts(y.shape[0], n_boot, rng)])
    models = pd.Index(pd.unique(col_model))
    model_size = params.loc[models].to_numpy(float)
    v = np.vstack([np.ones(len(models)), group_resample_counts(model_size, n_boot, rng)])
    col_v = v[:, models.get_indexer(col_model)]  # replicates x columns
    succ = ((w @ np.where(present, y, 0.0)) * col_v) @ onehot
    trials = ((w @ present.astype(float)) * col_v) @ onehot
    # Centred on the cells' mean (well conditioned, and with an interaction b and c are then
    # the slopes at that point, where the rate is read: (c + d*xn)/(b + d*xl) at the centre).
    at_n, at_x = float(np.mean(xn)), float(np.mean(xl))
    cn, cl = xn - at_n, xl - at_x
    beta = logistic_fit(np.column_stack([cn, cl]), succ, trials)
    beta_i = logistic_fit(np.column_stack([cn, cl, cn * cl]), succ, trials)
    d_lo, d_hi = percentile_interval(beta_i[1:, 3], alpha)
    if _excludes_zero(d_lo, d_hi):
        coef, d = beta_i, float(beta_i[0, 3])
    else:
        coef, d, d_lo, d_hi = beta, math.nan, math.nan, math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = coef[:, 2] / coef[:, 1]
    b_lo, b_hi = percentile_interval(coef[1:, 1], alpha)
    c_lo, c_hi = percentile_interval(coef[1:, 2], alpha)
    rate_lo, rate_hi = percentile_interval(rates[1:], alpha)
    # the surface against what was measured, cell by cell (seeds pooled as in the fit)
    lin = coef[0, 0] + coef[0, 1] * cn + coef[0, 2] * cl
    if math.isfinite(d):
        lin = lin + d * cn * cl
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = succ[0] / trials[0]
        fitted = 1 / (1 + np.exp(-lin))
        resid = np.abs(observed - fitted)
        local = ((coef[0, 2] + d * cn) / (coef[0, 1] + d * cl) if math.isfinite(d)
                 else np.full(len(cn), rates[0]))
    worst = int(np.nanargmax(resid))
    base.update(max_residual=float(resid[worst]),
                worst_cell=(f"N={_sci(2 ** xn[worst])}, {axis}={2 ** xl[worst]:g}: measured "
                            f"{observed[worst]:.2f}, fitted {fitted[worst]:.2f}"
                            if np.isfinite(resid[worst]) else ""),
                rate_min=float(np.nanmin(local)), rate_max=float(np.nanmax(local)))
    status = "ok"
    if not _excludes_zero(b_lo, b_hi):
        status = (
            f"not identifiable: the CI of b (per doubling of N) [{b_lo:.3g}, {b_hi:.3g}] includes 0"
        )
    elif not _excludes_zero(c_lo, c_hi):
        status = f"not identifiable: the CI of c (per doubling of {axis}) [{c_lo:.3g}, {c_hi:.3g}] includes 0"
    elif b_hi < 0 or c_hi < 0:
        # a trade needs both to help: a negative slope means more of it loses accuracy here
        which = "N" if b_hi < 0 else axis
        status = f"not identifiable: accuracy falls as {which} grows (the CI of its slope is below 0)"
    return ExchangeFit(
        status=status, a=float(coef[0, 0]), b=float(coef[0, 1]), c=float(coef[0, 2]), d=d,
        b_lo=b_lo, b_hi=b_hi, c_lo=c_lo, c_hi=c_hi, d_lo=d_lo, d_hi=d_hi,
        rate=float(rates[0]), rate_lo=rate_lo, rate_hi=rate_hi,
        at_log2_params=at_n, at_log2_x=at_x, **base,
    )


def plateau_cut(curve: pd.DataFrame, tol: float = 0.02) -> pd.DataFrame:
    """Rows of one model's accuracy-vs-level curve up to the first level within `tol` of its
    maximum (levels past the plateau buy nothing; they would flatten the surface's slope)."""
    acc = curve.groupby("level")["y"].mean().sort_index()
    acc = acc[acc.index > 0]
    if acc.empty:
        return curve.iloc[0:0]
    last = acc.index[np.flatnonzero(acc.to_numpy() >= acc.max() - tol)[0]]
    return curve[(curve["level"] > 0) & (curve["level"] <= last)]


# ----------------------------------------------------------------------------- cheapest config


CONFIG_KEY = ["model", "config", "budget", "n"]


@dataclass(frozen=True)
class Block:
    """Configurations compared on one problem set: every one of them saw every problem."""

    problems: np.ndarray  # problem ids
    meta: pd.DataFrame  # one row per configuration (CONFIG_KEY)
    acc: np.ndarray  # seeds x problems x configs (NaN: that seed did not run that config)
    flops: np.ndarray
    models: np.ndarray  # model (the size one buys) of each configuration
    description: str  # "all 305 problems" / "100 of 305 problems (difficulty 1–2)"


def describe_ids(ids: np.ndarray, every: np.ndarray, difficulty: pd.Series | None) -> str:
    if len(ids) == len(every):
        return f"all {len(ids)} problems"
    s = f"{len(ids)} of {len(every)} problems"
    if difficulty is not None:
        d = difficulty.reindex(ids).dropna()
        if not d.empty:
            s += f" (difficulty {d.min():g}–{d.max():g})"
    return s


def paired_blocks(points: pd.DataFrame) -> list[Block]:
    """Configurations grouped by the problem sets they share, largest set first.

    A configuration's problem set is the problems every one of its seeds saw. Each distinct
    set S makes one block: every configuration whose set contains S, evaluated on S only. So
    a configuration run on a subset (e.g. sampled runs on the easy 100 problems) is compared
    with the others on exactly those problems, and never pooled with a larger set's accuracy.
    `points`: per (problem, configuration, seed) rows; ``seed`` optional (one replicate).
    """
    pts = points if "seed" in points else points.assign(seed=0)
    pts = pts.assign(seed=pts["seed"].fillna(-1))
    dup = pts.duplicated(["problem_id", *CONFIG_KEY, "seed"], keep=False)
    if dup.any():
        # one cell holds one outcome: two rows would silently overwrite each other (two specs
        # under one configuration label, say) and the comparison would read whichever came last
        first = pts.loc[dup].iloc[0]
        raise ValueError(f"{int(dup.sum())} rows share a (problem, configuration, seed): e.g. "
                         f"{first['problem_id']} of {first['config']} seed {first['seed']:g}; "
                         "specs or runs of one configuration must be told apart before pairing")
    every = np.sort(pts["problem_id"].unique())
    difficulty = (pts.groupby("problem_id")["difficulty"].first()
                  if "difficulty" in pts else None)
    cfg_codes = pts.groupby(CONFIG_KEY, sort=True, dropna=False).ngroup().to_numpy()
    meta_all = (pts[CONFIG_KEY].assign(_c=cfg_codes).drop_duplicates("_c").sort_values("_c")
                .drop(columns="_c").reset_index(drop=True))
    if "run_id" in pts:  # provenance: the runs each configuration's rows came from
        meta_all["runs"] = pts.groupby(cfg_codes)["run_id"].agg(
            lambda r: ";".join(sorted(set(";".join(map(str, r)).split(";"))))).to_numpy()
    sets: list[frozenset] = []
    for _, g in pts.groupby(cfg_codes, sort=True):
        per_seed = [frozenset(x["problem_id"]) for _, x in g.groupby("seed")]
        sets.append(frozenset.intersection(*per_seed))
    blocks = []
    for S in sorted(set(sets), key=lambda s: (-len(s), sorted(s)[:1])):
        if not S:
            continue
        keep = [c for c, own in enumerate(sets) if S <= own]
        ids = np.array(sorted(S), dtype=object)
        sub = pts[np.isin(cfg_codes, keep) & pts["problem_id"].isin(S).to_numpy()]
        meta = meta_all.iloc[keep].reset_index(drop=True)
        col = pd.MultiIndex.from_frame(meta[CONFIG_KEY]).get_indexer(
            pd.MultiIndex.from_frame(sub[CONFIG_KEY]))
        row = pd.Index(ids).get_indexer(sub["problem_id"])
        slot = sub.groupby("model")["seed"].transform(lambda x: pd.factorize(x, sort=True)[0])
        acc = np.full((int(slot.max()) + 1, len(ids), len(meta)), np.nan)
        flops = np.full_like(acc, np.nan)
        acc[slot.to_numpy(), row, col] = sub["maj_at_n"].to_numpy(float)
        flops[slot.to_numpy(), row, col] = sub["flops"].to_numpy(float)
        blocks.append(Block(ids, meta, acc, flops, meta["model"].to_numpy(),
                            describe_ids(ids, every, difficulty)))
    return blocks


def _all_runs(meta: pd.DataFrame) -> str | None:
    """Every run a block read (a row that compared them all and found no winner)."""
    if "runs" not in meta:
        return None
    return ";".join(sorted({r for rs in meta["runs"] for r in str(rs).split(";")}))


def _replicates(block: Block, n_boot: int, seed: int | None):
    """(acc, flops) replicates x configs; row 0 is the point estimate."""
    rng = np.random.default_rng(seed)
    w = np.vstack([np.ones(len(block.problems)),
                   resample_counts(len(block.problems), n_boot, rng)])
    ws = seed_resample_weights(block.models, ~np.isnan(block.acc).all(axis=1), n_boot, rng)
    return seeded_means(block.acc, w, ws), seeded_means(block.flops, w, ws)


def _seed_spread(block: Block, c: int) -> tuple[int, str]:
    """Seeds of configuration `c` and their accuracies on the block's problems ("0.95/0.80")."""
    per_seed = np.nanmean(block.acc[:, :, c], axis=1)
    per_seed = per_seed[np.isfinite(per_seed)]
    return len(per_seed), "/".join(f"{v:.3g}" for v in per_seed)


def _cheapest_by_model(acc: np.ndarray, flops: np.ndarray, models: np.ndarray, target: float):
    """replicates x models: lowest FLOPs among each model's configs reaching `target` (inf if
    none), and the index of that config (-1 if none)."""
    cost = np.where(acc >= target - 1e-12, flops, np.inf)
    uniq = pd.unique(models)
    best = np.full((cost.shape[0], len(uniq)), np.inf)
    arg = np.full((cost.shape[0], len(uniq)), -1)
    for j, m in enumerate(uniq):
        idx = np.flatnonzero(models == m)
        sub = cost[:, idx]
        k = np.argmin(sub, axis=1)
        best[:, j] = sub[np.arange(sub.shape[0]), k]
        arg[:, j] = np.where(np.isfinite(best[:, j]), idx[k], -1)
    return uniq, best, arg


def cheapest_configs(
    points: pd.DataFrame,
    targets: Sequence[float] = TARGETS,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Per problem set and target accuracy: the cheapest configuration reaching it, the
    runner-up, the FLOPs margin with its CI and the flip rate (see `CHEAPEST_RULE`).

    `points`: one row per (problem, configuration, seed) with problem_id, model (the size one
    buys: seeds are its replicates), seed (optional), config (a label), budget, n, acc (that
    problem's accuracy) and flops (that problem's inference FLOPs for the configuration).
    Configurations are compared only on problems all of them saw (`paired_blocks`).
    """
    rows = []
    for block in paired_blocks(points):
        acc_b, flops_b = _replicates(block, n_boot, seed)
        meta = block.meta
        base = {"problems": len(block.problems), "problem_set": block.description,
                "rule": CHEAPEST_RULE}
        for target in targets:
            uniq, best, arg = _cheapest_by_model(acc_b, flops_b, block.models, target)
            row: dict = {"target": target, **base}
            order = np.argsort(best[0])
            if not np.isfinite(best[0, order[0]]):
                rows.append({**row, "status": "no configuration reaches the target",
                             "runs": _all_runs(meta)})
                continue
            win = order[0]
            ci = int(arg[0, win])
            seeds, spread = _seed_spread(block, ci)
            row.update(status="ok", model=uniq[win], config=meta["config"].iloc[ci],
                       runs=meta["runs"].iloc[ci] if "runs" in meta else None,
                       budget=meta["budget"].iloc[ci], n=int(meta["n"].iloc[ci]),
                       flops=best[0, win], maj_at_n=acc_b[0, ci], seeds=seeds,
                       seed_accuracies=spread)
            winners = np.argmin(best[1:], axis=1)
            none = ~np.isfinite(best[1:].min(axis=1))
            row["flip_rate"] = float(np.mean((winners != win) | none))
            row["config_flip_rate"] = float(np.mean((winners != win) | none
                                                    | (arg[1:, win] != ci)))
            if len(order) > 1 and np.isfinite(best[0, order[1]]):
                run = order[1]
                cr = int(arg[0, run])
                with np.errstate(invalid="ignore", divide="ignore"):
                    margin = best[1:, run] / best[1:, win]
                margin = np.where(np.isfinite(best[1:, win]), margin, np.nan)
                lo, hi = percentile_interval(margin, alpha)
                row.update(runner_up=uniq[run], runner_up_config=meta["config"].iloc[cr],
                           runner_up_runs=meta["runs"].iloc[cr] if "runs" in meta else None,
                           runner_up_budget=meta["budget"].iloc[cr],
                           runner_up_n=int(meta["n"].iloc[cr]), runner_up_flops=best[0, run],
                           margin=best[0, run] / best[0, win], margin_lo=lo,
                           margin_hi=hi)
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- crossover


def _envelope(train: np.ndarray, slope: np.ndarray) -> list[tuple[int, int, float]]:
    """Lower envelope of lines train + Q*slope over Q >= 0: (from, to, Q) at each change."""
    ok = np.isfinite(train) & np.isfinite(slope)
    if not ok.any():
        return []
    idx = np.flatnonzero(ok)
    cur = idx[np.lexsort((slope[idx], train[idx]))[0]]  # cheapest at Q = 0 (then flattest)
    q, out = 0.0, []
    while True:
        cand = [(float((train[j] - train[cur]) / (slope[cur] - slope[j])), j)
                for j in idx if slope[j] < slope[cur]]
        cand = [(qq, j) for qq, j in cand if qq >= q]
        if not cand:
            return out
        q, nxt = min(cand, key=lambda t: (t[0], slope[t[1]]))
        out.append((int(cur), int(nxt), q))
        cur = nxt


def _block_crossovers(block: Block, train_flops: dict[str, float], targets: Sequence[float],
                      n_boot: int, alpha: float, seed: int | None) -> tuple[list, list]:
    acc_b, flops_b = _replicates(block, n_boot, seed)
    meta = block.meta
    where = {"problems": len(block.problems), "problem_set": block.description}
    cross_rows, line_rows = [], []
    for target in targets:
        uniq, best, arg = _cheapest_by_model(acc_b, flops_b, block.models, target)
        train = np.array([float(train_flops.get(m, math.nan)) for m in uniq])
        no_train = int(np.sum(~np.isfinite(train) & np.isfinite(best[0])))
        for j, m in enumerate(uniq):
            if np.isfinite(best[0, j]):
                c = int(arg[0, j])
                line_rows.append({"target": target, **where, "model": m,
                                  "train_flops": train[j], "inference_flops": best[0, j],
                                  "config": meta["config"].iloc[c],
                                  "runs": meta["runs"].iloc[c] if "runs" in meta else None,
                                  "budget": meta["budget"].iloc[c],
                                  "n": int(meta["n"].iloc[c])})
        env = _envelope(train, best[0])
        base = {"target": target, **where, "models_without_train_flops": no_train,
                "rule": CROSSOVER_RULE}
        if not env:
            ok = np.isfinite(train) & np.isfinite(best[0])
            pick = np.flatnonzero(ok)[np.argmin((train + best[0])[ok])] if ok.any() else None
            only = uniq[pick] if pick is not None else None
            runs = {"runs": meta["runs"].iloc[int(arg[0, pick])] if pick is not None
                    else _all_runs(meta)} if "runs" in meta else {}
            cross_rows.append({**base, **runs,
                               "status": "no crossover" if only else "no model qualifies",
                               "from_model": only})
            continue
        for i, j, q in env:
            runs = {} if "runs" not in meta else {
                "runs": meta["runs"].iloc[int(arg[0, i])],
                "to_runs": meta["runs"].iloc[int(arg[0, j])]}
            with np.errstate(invalid="ignore", divide="ignore"):
                qb = (train[j] - train[i]) / (best[1:, i] - best[1:, j])
            # a replicate where the pair no longer crosses (the bigger model is not cheaper
            # per query, or either misses the target) has no crossover: Q = inf there
            qb = np.where((best[1:, i] > best[1:, j]) & np.isfinite(qb), qb, np.inf)
            lo, hi = percentile_interval(qb, alpha)
            cross_rows.append({**base, **runs, "status": "ok", "from_model": uniq[i],
                               "to_model": uniq[j],
                               "q_star": q, "q_lo": lo, "q_hi": hi,
                               "crossing_share": float(np.mean(np.isfinite(qb)))})
    return cross_rows, line_rows


def crossovers(
    points: pd.DataFrame,
    train_flops: dict[str, float],
    targets: Sequence[float] = TARGETS,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(crossover rows, cost lines) per target: where the preferred model changes with query
    volume Q, with a bootstrap CI of each crossover Q (see `CROSSOVER_RULE`).

    `points` as for `cheapest_configs` (compared per problem set, seeds as replicates);
    `train_flops` maps model -> training FLOPs (models without one are left out, and the rows
    say how many were).
    """
    cross_rows, line_rows = [], []
    for block in paired_blocks(points):
        c_rows, l_rows = _block_crossovers(block, train_flops, targets, n_boot, alpha, seed)
        cross_rows += c_rows
        line_rows += l_rows
    return pd.DataFrame(cross_rows), pd.DataFrame(line_rows)


def flat(fit: ExchangeFit) -> dict:
    d = asdict(fit)
    return {k: (" ".join(f"{v:g}" for v in val) if isinstance(val, tuple) else val)
            for k, val in d.items()}


# ----------------------------------------------------------------------------- in words


def _g(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}g}" if math.isfinite(v) else "∞"


def _sci(v: float) -> str:
    return f"{v:.2g}" if math.isfinite(v) else "∞"


def _rate_words(r: Mapping, what: str) -> str:
    if r["status"] != "ok":
        return f"the exchange rate for {what} is {r['status']}"
    rate, lo, hi = float(r["rate"]), float(r["rate_lo"]), float(r["rate_hi"])
    s = (f"one doubling of {what} is worth {_g(rate)} doublings of parameters "
         f"(95% CI {_g(lo)}–{_g(hi)})")
    if math.isfinite(float(r.get("d", math.nan))):
        s += (f", read at N ≈ {_sci(2 ** float(r['at_log2_params']))}, "
              f"{what.split()[-1]} ≈ {_g(2 ** float(r['at_log2_x']))} (the surface has an "
              f"interaction: across the measured cells the local rate ranges "
              f"{_g(float(r['rate_min']))}–{_g(float(r['rate_max']))})")
    if int(r.get("seeds_max", 0) or 0) == 1:
        s += "; read from one seed per size, so seed-to-seed variation is not in the CI"
    elif int(r.get("seeds_min", 0) or 0) == 1:
        s += "; some sizes have one seed only"
    res = float(r.get("max_residual", math.nan))
    if math.isfinite(res):
        s += (f"; the fitted surface misses measured cells by up to {res:.2f} accuracy "
              f"({r['worst_cell']})")
    return s


def answer(task: str, exchange: pd.DataFrame, cheapest: pd.DataFrame,
           crossover: pd.DataFrame) -> str:
    """One paragraph answering "bigger model or longer think?" for `task`, built only from
    the computed tables (analysis ``exchange``, ``cheapest``, ``crossover`` rows of the task)."""
    parts: list[str] = []
    ex = exchange[exchange["task"] == task] if not exchange.empty else exchange
    for family, fam in ex.groupby("family", sort=True) if not ex.empty else []:
        allb = fam[(fam["axis"] == "budget") & (fam["bucket"] == "all")]
        for _, r in allb.iterrows():
            parts.append(f"For {family} on {task}, at matched accuracy "
                         f"{_rate_words(r, 'the thinking budget')}.")
        byd = fam[(fam["axis"] == "budget") & (fam["bucket"] != "all")]
        ok = byd[byd["status"] == "ok"]
        if not byd.empty:
            if ok.empty:
                parts.append(f"No difficulty bucket alone identifies the rate "
                             f"({len(byd)} buckets; e.g. {byd['status'].iloc[0]}).")
            else:
                words = "; ".join(f"difficulty {b['bucket']}: {_g(float(b['rate']))} "
                                  f"[{_g(float(b['rate_lo']))}, {_g(float(b['rate_hi']))}]"
                                  for _, b in ok.iterrows())
                none = len(byd) - len(ok)
                parts.append(f"By difficulty, doublings of parameters per doubling of thinking: "
                             f"{words}" + (f" ({none} other bucket(s) not identifiable)"
                                           if none else "") + ".")
        for _, r in fam[(fam["axis"] == "samples") & (fam["bucket"] == "all")].iterrows():
            parts.append(f"With repeated sampling ({r['setting']}, majority vote), "
                         f"{_rate_words(r, 'the number of samples n')}.")
    ch = cheapest[cheapest["task"] == task] if not cheapest.empty else cheapest
    for _, r in ch.iterrows():
        t = f"{100 * float(r['target']):.0f}%"
        if r["status"] != "ok":
            parts.append(f"No configuration reaches {t}.")
            continue
        seeds = int(r.get("seeds", 0) or 0)
        spread = (f"{seeds} seeds: {r['seed_accuracies']}" if seeds > 1 else
                  "one seed, so seed-to-seed variation is not in the CI")
        where = str(r.get("problem_set") or "")
        on = f" on {where}" if where and not where.startswith("all ") else ""
        s = (f"To reach {t}{on} at the least inference compute, use {r['config']} "
             f"({spread}; {_sci(float(r['flops']))} FLOPs per problem)")
        if isinstance(r.get("runner_up"), str):
            s += (f"; the best other size, {r['runner_up_config']}, costs "
                  f"{_g(float(r['margin']))}× as much "
                  f"(95% CI {_g(float(r['margin_lo']))}–{_g(float(r['margin_hi']))}×)")
        s += (f"; another size wins in {100 * float(r['flip_rate']):.0f}% of resamples of seeds "
              "and problems.")
        parts.append(s)
    cr = crossover[crossover["task"] == task] if not crossover.empty else crossover
    for _, r in cr.iterrows():
        t = f"{100 * float(r['target']):.0f}%"
        if r["status"] == "ok":
            parts.append(f"Counting training compute too, for {t}: below Q ≈ {_sci(float(r['q_star']))}"
                         f" queries (95% CI {_sci(float(r['q_lo']))}–{_sci(float(r['q_hi']))}) "
                         f"{r['from_model']} is cheaper in total, above it {r['to_model']}.")
        elif r["status"] == "no crossover" and isinstance(r.get("from_model"), str):
            parts.append(f"Counting training compute too, for {t}: {r['from_model']} is cheapest "
                         "at every query volume.")
    return " ".join(parts)

