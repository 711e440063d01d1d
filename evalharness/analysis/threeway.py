"""Bigger, longer-trained, or longer-thinking? The three-way answer (frames in, frames out).

Every measured configuration is a checkpoint (N parameters, trained on D tokens) read at a
thinking budget T with n samples (majority vote). For a target accuracy and a query volume Q
its total cost is

    cost(Q) = 6 * N * D  +  Q * inference FLOPs per query

(training counted once; the manifest's ``train_flops`` where it has one). A checkpoint's line
uses its cheapest configuration reaching the target, so the answer at Q is the checkpoint with
the lowest cost(Q), and the runner-up of each *other* kind is read relative to that winner:

- bigger: N > N_winner;
- longer-trained: N <= N_winner and D > D_winner;
- longer-thinking: N <= N_winner and D <= D_winner (it reaches the target by spending more
  inference: a longer think, or more samples).

Margins are cost ratios with percentile-bootstrap CIs over problems and training seeds (the
buy decision's replicates: `buy._replicates`); the crossovers in Q are the changes of the
lower envelope of the lines (Sardana & Frankle 2023's inference-aware view), each with a CI.
Configurations are compared only within one family (one spec) and on problems all of them
saw (`buy.paired_blocks`); greedy and sampled runs are distinct configurations, never pooled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from evalharness.analysis.buy import (
    CEILING,
    FLOOR,
    TARGETS,
    Block,
    _all_runs,
    _cheapest_by_model,
    _envelope,
    _replicates,
    paired_blocks,
)
from evalharness.stats import percentile_interval

QUERY_VOLUMES = (1e3, 1e6, 1e9)
REFERENCE_VOLUME = 1e6  # the volume the plain-words answer and the cost figure are read at
KINDS = ("bigger", "longer-trained", "longer-thinking")
PREFIX = {"bigger": "bigger", "longer-trained": "trained", "longer-thinking": "thinking"}
THREEWAY_RULE = (
    "per family (one spec) and problem set, configurations (N, D, T, n, decoding) compared on "
    "problems all of them saw; a configuration's accuracy is the mean over problems of each "
    "seed's majority vote of n, then over seeds; cost(Q) = training FLOPs (6*N*D, or the "
    "manifest's) + Q * inference FLOPs per query; a checkpoint's line uses its cheapest "
    "configuration reaching the target; winner: the lowest cost(Q); runner-ups relative to "
    "the winner: bigger (N > N_w), longer-trained (N <= N_w, D > D_w), longer-thinking "
    "(N <= N_w, D <= D_w); margin = runner-up cost / winner cost, with the cheapest line of "
    "each side re-chosen in every replicate; crossovers: changes of the lower envelope of the "
    "lines over Q >= 0, Q* = (train_j - train_i) / (inference_i - inference_j), CI recomputed "
    "per replicate (inf where the pair no longer crosses); 95% CIs: percentile bootstrap "
    "over problems and seeds within a size; not identifiable when the block has one "
    "configuration, no configuration reaches the target, accuracy is flat (the CI of the best "
    "minus the worst configuration's accuracy includes 0), or every configuration is at "
    f"<= {FLOOR:g} or >= {CEILING:g} accuracy (a step: the target is crossed between measured "
    "levels, and the cheapest way to reach it is not identified by them)"
)


def kind_of(n: float, d: float, n_ref: float, d_ref: float) -> str:
    """A checkpoint's kind relative to the reference (winner) checkpoint (module doc)."""
    if n > n_ref:
        return "bigger"
    if d > d_ref:
        return "longer-trained"
    return "longer-thinking"


def _block_status(block: Block, acc: np.ndarray, alpha: float) -> str:
    """Why the block cannot answer at any target, or "ok" (`THREEWAY_RULE`)."""
    meta = block.meta
    if len(meta) < 2:
        return "not identifiable: a single configuration (one level of N, D and T)"
    point = acc[0]
    if not np.isfinite(point).any():
        return "not identifiable: no configuration has an accuracy"
    best, worst = int(np.nanargmax(point)), int(np.nanargmin(point))
    lo, _ = percentile_interval(acc[1:, best] - acc[1:, worst], alpha)
    if not lo > 0:
        return (f"not identifiable: the best and the worst configuration are not told apart "
                f"(best minus worst {point[best] - point[worst]:.2g}, CI includes 0: flat, or "
                f"seeds and problems too noisy)")
    if not np.any((point > FLOOR) & (point < CEILING)):
        return (f"not identifiable: every configuration is at <= {FLOOR:g} or >= {CEILING:g} "
                "accuracy (a step: the target is crossed between measured levels)")
    return "ok"


def _attrs(block: Block, attrs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of the block: checkpoint, N, D, training FLOPs, decoding."""
    at = attrs.loc[block.meta["config"].to_numpy()].reset_index()
    return at.assign(runs=block.meta["runs"].to_numpy()) if "runs" in block.meta else at


def _config_fields(a: pd.Series, prefix: str = "") -> dict:
    return {f"{prefix}config": a["config"], f"{prefix}checkpoint": a["checkpoint"],
            f"{prefix}params": float(a["params"]), f"{prefix}tokens": float(a["tokens"]),
            f"{prefix}budget": float(a["budget"]), f"{prefix}n": int(a["n"]),
            f"{prefix}decoding": a["decoding"], f"{prefix}train_flops": float(a["train_flops"]),
            f"{prefix}runs": a.get("runs")}


def _block_rows(block: Block, attrs: pd.DataFrame, targets: Sequence[float],
                volumes: Sequence[float], n_boot: int, alpha: float, seed: int | None):
    acc_b, flops_b = _replicates(block, n_boot, seed)
    at = _attrs(block, attrs)
    ck_of = at["checkpoint"].to_numpy()
    status = _block_status(block, acc_b, alpha)
    where = {"problems": len(block.problems), "problem_set": block.description,
             "configurations": len(at), "levels_N": int(at["params"].nunique()),
             "levels_D": int(at["tokens"].nunique()),
             "levels_T": int((at["budget"] * at["n"]).nunique()),
             # a row names the runs of the configuration it reports (`runs`) and every run
             # its comparison read (`compared_runs`); a row without an answer, all of them
             "runs": _all_runs(block.meta), "compared_runs": _all_runs(block.meta)}
    answers, crosses, costs = [], [], []
    for target in targets:
        ck, best, arg = _cheapest_by_model(acc_b, flops_b, ck_of, target)
        first = [int(np.flatnonzero(ck_of == c)[0]) for c in ck]
        train = at["train_flops"].to_numpy(float)[first]
        n_ck = at["params"].to_numpy(float)[first]
        d_ck = at["tokens"].to_numpy(float)[first]
        for j, c in enumerate(ck):
            if np.isfinite(best[0, j]):
                costs.append({"target": target, **where, "checkpoint": c,
                              **_config_fields(at.iloc[int(arg[0, j])]),
                              "inference_flops": float(best[0, j])})
        st = status
        if st == "ok" and not np.isfinite(best[0]).any():
            st = f"not identifiable: no configuration reaches {100 * target:g}%"
        for q in volumes:
            row = {"target": target, "queries": q, **where}
            if st != "ok":
                answers.append({**row, "status": st})
                continue
            total = train[None, :] + q * best  # replicates x checkpoints (inf: misses)
            win = int(np.argmin(total[0]))
            a = at.iloc[int(arg[0, win])]
            wins = np.argmin(total[1:], axis=1)
            row.update(status="ok", **_config_fields(a), maj_at_n=float(acc_b[0, arg[0, win]]),
                       inference_flops=float(best[0, win]), cost=float(total[0, win]),
                       flip_rate=float(np.mean((wins != win)
                                               | ~np.isfinite(total[1:].min(axis=1)))))
            kinds = np.array([kind_of(n_ck[j], d_ck[j], n_ck[win], d_ck[win])
                              if j != win else "" for j in range(len(ck))])
            for kind in KINDS:
                p = PREFIX[kind] + "_"
                cand = np.flatnonzero((kinds == kind) & np.isfinite(total[0]))
                if not cand.size:
                    none = np.flatnonzero(kinds == kind)
                    row[p + "status"] = ("none measured" if not none.size
                                         else "none reaches the target")
                    continue
                r = int(cand[np.argmin(total[0, cand])])
                with np.errstate(invalid="ignore", divide="ignore"):
                    m = total[1:, cand].min(axis=1) / total[1:, win]
                m = np.where(np.isfinite(total[1:, win]), m, np.nan)
                lo, hi = percentile_interval(m, alpha)
                row.update({p + "status": "ok", **_config_fields(at.iloc[int(arg[0, r])], p),
                            p + "inference_flops": float(best[0, r]),
                            p + "cost": float(total[0, r]),
                            p + "margin": float(total[0, r] / total[0, win]),
                            p + "margin_lo": lo, p + "margin_hi": hi})
            answers.append(row)
        if st != "ok":
            continue
        env = _envelope(train, best[0])
        for i, j, q in env:
            with np.errstate(invalid="ignore", divide="ignore"):
                qb = (train[j] - train[i]) / (best[1:, i] - best[1:, j])
            qb = np.where((best[1:, i] > best[1:, j]) & np.isfinite(qb) & (qb >= 0), qb, np.inf)
            lo, hi = percentile_interval(qb, alpha)
            crosses.append({
                "target": target, **where, "status": "ok", "q_star": q, "q_lo": lo, "q_hi": hi,
                "crossing_share": float(np.mean(np.isfinite(qb))),
                **_config_fields(at.iloc[int(arg[0, i])], "from_"),
                **_config_fields(at.iloc[int(arg[0, j])], "to_"),
                "runs": at["runs"].iloc[int(arg[0, i])] if "runs" in at else None,
                # the kind of the low-Q winner seen from the high-Q one
                "from_kind": kind_of(n_ck[i], d_ck[i], n_ck[j], d_ck[j]),
                "to_kind": kind_of(n_ck[j], d_ck[j], n_ck[i], d_ck[i])})
    return answers, crosses, costs


def threeway(points: pd.DataFrame, targets: Sequence[float] = TARGETS,
             volumes: Sequence[float] = QUERY_VOLUMES, n_boot: int = 1000, alpha: float = 0.05,
             seed: int | None = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(answers, crossovers, cost lines) of one family on one task (`THREEWAY_RULE`).

    `points`: one row per (problem, configuration, seed) with problem_id, model (the size
    one buys, N), checkpoint (the size at one training length), seed, config (a label unique
    per checkpoint, T, n and decoding), budget, n, decoding, params, tokens, train_flops,
    acc (that problem's majority-vote accuracy) and flops (its inference FLOPs). Rows without
    training FLOPs are left out (``left_out`` says how many configurations)."""
    pts = points[np.isfinite(points["train_flops"].astype(float))
                 & np.isfinite(points["flops"].astype(float))]
    left_out = int(points["config"].nunique() - pts["config"].nunique())
    if pts.empty:  # say so rather than drop the family: hub models need --train-tokens
        n = int(points["problem_id"].nunique())
        runs = ({"runs": ";".join(sorted({r for s in points["run_id"]
                                          for r in str(s).split(";")}))}
                if "run_id" in points else {})
        why = ("not identifiable: no checkpoint has training FLOPs (train_tokens or "
               "train_flops in its manifest; a hub model takes --train-tokens)")
        rows = [{"target": t, "queries": q, "problems": n, "problem_set": f"all {n} problems",
                 **runs, "status": why, "left_out": left_out, "rule": THREEWAY_RULE}
                for t in targets for q in volumes]
        return pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame()
    attrs = pts.groupby("config").agg(
        checkpoint=("checkpoint", "first"), params=("params", "first"),
        tokens=("tokens", "mean"), budget=("budget", "first"), n=("n", "first"),
        decoding=("decoding", "first"), train_flops=("train_flops", "mean"))
    ans, cro, cos = [], [], []
    for block in paired_blocks(pts):
        a, c, k = _block_rows(block, attrs, targets, volumes, n_boot, alpha, seed)
        ans += a
        cro += c
        cos += k

    def frame(rows: list[dict]) -> pd.DataFrame:
        return pd.DataFrame(rows).assign(left_out=left_out) if rows else pd.DataFrame()

    return frame(ans).assign(rule=THREEWAY_RULE) if ans else frame(ans), frame(cro), frame(cos)


def grid_rows(points: pd.DataFrame) -> pd.DataFrame:
    """Measured accuracy per configuration of one family and task, on the problems every
    configuration of its decoding saw (the contour figure's data)."""
    pts = points[np.isfinite(points["tokens"].astype(float))]
    rows = []
    for dec, g in pts.groupby("decoding", sort=True):
        seen = g.groupby("config")["problem_id"].agg(frozenset)
        common = frozenset.intersection(*seen) if len(seen) else frozenset()
        g = g[g["problem_id"].isin(common)]
        if g.empty:
            continue
        per_seed = g.groupby(["config", "seed"], dropna=False)["maj_at_n"].mean()
        acc = per_seed.groupby("config").mean()
        runs = ({"runs": ("run_id", lambda r: ";".join(sorted({x for s in r
                                                               for x in str(s).split(";")})))}
                if "run_id" in g else {})
        a = g.groupby("config").agg(
            params=("params", "first"), tokens=("tokens", "mean"), budget=("budget", "first"),
            n=("n", "first"), seeds=("seed", "nunique"), **runs)
        rows.append(a.assign(maj_at_n=acc, decoding=dec, problems=len(common)).reset_index())
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def threeway_tables(points: pd.DataFrame, info: pd.DataFrame, n_boot: int = 1000,
                    alpha: float = 0.05, seed: int | None = 0):
    """(threeway, threeway_crossover, threeway_costs, threeway_grid) per (family, task) from
    the buy decision's points (`compute._buy_points`) and the models' training FLOPs."""
    empty = pd.DataFrame()
    if points.empty or "tokens" not in points:
        return empty, empty, empty, empty
    train = (info.set_index("model")["train_flops"] if not info.empty
             else pd.Series(dtype=float))
    pts = points.assign(train_flops=points["base_model"].map(train).astype(float))
    out: list[list[pd.DataFrame]] = [[], [], [], []]
    for (family, task), g in pts.groupby(["family", "task"], sort=True):
        res = threeway(g, n_boot=n_boot, alpha=alpha, seed=seed)
        for lst, t in zip(out, (*res, grid_rows(g)), strict=True):
            if not t.empty:  # each row names its own runs (its block's, or its config's)
                lst.append(t.assign(family=family, task=task))
    return tuple(pd.concat(x, ignore_index=True) if x else empty for x in out)


# ----------------------------------------------------------------------------- in words


def _sci(v: float) -> str:
    if not math.isfinite(v):
        return "∞"
    e = math.floor(math.log10(abs(v))) if v else 0
    m = v / 10 ** e
    return f"10^{e}" if round(m, 1) == 1 else f"{m:.2g}·10^{e}"


def _x(v: float) -> str:
    return f"{v:.2g}" if math.isfinite(v) else "∞"


def _name(checkpoint: str) -> str:
    return str(checkpoint).split("/")[-1]


def _what(r: pd.Series, p: str, full: dict) -> str:
    """"h48 trained on 2.3e7 tokens (1/4 of its longest training), thinking 64 tokens"."""
    n = int(r[p + "n"])
    d = float(r[p + "tokens"])
    most = full.get(r[p + "params"], d)
    share = ("its longest measured training" if d >= most else
             f"{_x(d / most)}× its longest measured training")
    s = (f"{_name(r[p + 'checkpoint'])} trained on {_sci(d)} tokens ({share}), thinking "
         f"{float(r[p + 'budget']):g} tokens")
    return s + (f" with {n} samples ({r[p + 'decoding']}, majority vote)" if n > 1 else "")


def threeway_words(answers: pd.DataFrame, crossover: pd.DataFrame, costs: pd.DataFrame,
                   task: str, volume: float = REFERENCE_VOLUME) -> list[str]:
    """One sentence per (family, problem set, target) at query volume `volume`, built only
    from the computed tables, or "not identifiable: <reason>"."""
    if answers.empty:
        return []
    ans = answers[(answers["task"] == task) & (answers["queries"] == volume)]
    out, said = [], set()
    for _, r in ans.iterrows():
        where = str(r["problem_set"])
        on = f"on {task}" + ("" if where.startswith("all ") else f" ({where})")
        if r["status"] != "ok":
            # one sentence for every target a reason holds for
            key = (r["family"], where, r["status"])
            if key not in said:
                said.add(key)
                same = ans[(ans["family"] == r["family"]) & (ans["problem_set"] == where)
                           & (ans["status"] == r["status"])]
                ts = ", ".join(f"{100 * float(x):.0f}%" for x in same["target"])
                out.append(f"{r['family']}: to reach {ts} {on} with {_sci(volume)} queries: "
                           f"{r['status']}.")
            continue
        t = f"{100 * float(r['target']):.0f}%"
        head = f"{r['family']}: to reach {t} {on} with {_sci(volume)} queries"
        gone = int(r.get("left_out", 0) or 0)
        c = costs[(costs["task"] == task) & (costs["family"] == r["family"])
                  & (costs["problem_set"] == where)]
        full = c.groupby("params")["tokens"].max().to_dict() if not c.empty else {}
        s = (f"{head}, use {_what(r, '', full)} ({_sci(float(r['cost']))} FLOPs: training "
             f"{_sci(float(r['train_flops']))} + {_sci(volume)} × "
             f"{_sci(float(r['inference_flops']))}; another checkpoint wins in "
             f"{100 * float(r['flip_rate']):.0f}% of resamples)")
        for kind in KINDS:
            p = PREFIX[kind] + "_"
            if r.get(p + "status") == "ok":
                s += (f"; the next best {kind} option is {_what(r, p, full)} "
                      f"({_x(float(r[p + 'margin']))}× [{_x(float(r[p + 'margin_lo']))}, "
                      f"{_x(float(r[p + 'margin_hi']))}] the cost)")
            elif isinstance(r.get(p + "status"), str):
                s += f"; {kind}: {r[p + 'status']}"
        cr = crossover[(crossover["task"] == task) & (crossover["family"] == r["family"])
                       & (crossover["problem_set"] == where)
                       & (crossover["target"] == r["target"])] if not crossover.empty else crossover
        for _, x in cr.iterrows():
            q = float(x["q_star"])
            ci = f" (95% CI {_sci(float(x['q_lo']))}–{_sci(float(x['q_hi']))})"
            if x["to_checkpoint"] == r["checkpoint"] and q <= volume:
                s += (f"; below {_sci(q)} queries{ci} the {x['from_kind']} "
                      f"{_name(x['from_checkpoint'])} wins")
            elif x["from_checkpoint"] == r["checkpoint"] and q > volume:
                s += (f"; above {_sci(q)} queries{ci} the {x['to_kind']} "
                      f"{_name(x['to_checkpoint'])} wins")
        if gone:
            s += (f" ({gone} configuration{'s' * (gone > 1)} without training FLOPs left "
                  "out)")
        out.append(s + ".")
    return out
