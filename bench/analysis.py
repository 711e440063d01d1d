"""Time scoring + analysis (+ plots, where `evalharness.plots.make_plots` exists) on 10^6
synthetic records. Goal: < 30 s in total. The thinking-efficiency tables (part of the
analysis) are also timed alone.

    .venv/bin/python bench/analysis.py [--problems 2500] [--samples 10] [--boot 1000]

The records mimic what `scoring.read_samples` returns for a real run (list fields as Arrow
lists): 5 models of one family x 8 budgets x 2500 problems x 10 samples, integer answers in a
mix of formats ("The answer is X.", boxed, "####", bare, none), 2-6 token references, gold
fields on sample 0 at the largest budget. Accuracy grows with log budget and log params, and
samples of one problem share their luck across budgets, as in the one-pass sweep.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalharness.analysis import analyze  # noqa: E402
from evalharness.scoring import score_records  # noqa: E402

GOAL_S = 30.0
PARAMS = [1e6, 4e6, 1.6e7, 6.4e7, 2.56e8]
BUDGETS = [0, 16, 32, 64, 128, 256, 512, 1024]


def _lists(lengths: np.ndarray, values: np.ndarray) -> pd.Series:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    arr = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
    return pd.Series(pd.arrays.ArrowExtensionArray(arr))


def _gold_lists(lengths: np.ndarray, values: np.ndarray, has: np.ndarray) -> pd.Series:
    offsets = np.concatenate([[0], np.cumsum(np.where(has, lengths, 0))]).astype(np.int32)
    mask = pa.array(~has)
    arr = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=mask)
    return pd.Series(pd.arrays.ArrowExtensionArray(arr))


def make_records(
    n_problems: int = 2500, n_samples: int = 10, seed: int = 0, params=PARAMS, budgets=BUDGETS
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_models, n_budgets = len(params), len(budgets)
    shape = (n_models, n_budgets, n_problems, n_samples)
    m, b, p, s = (a.ravel() for a in np.indices(shape))
    n = m.size
    logp = np.log2(np.asarray(params))[m]
    logb = np.log2(np.maximum(np.asarray(budgets)[b], 1))
    difficulty = rng.normal(0, 1.5, n_problems)[p]
    # Shared luck per (model, problem, sample): the same draw at every budget.
    luck = rng.random((n_models, n_problems, n_samples))[m, p, s]
    p_correct = 1 / (1 + np.exp(-(0.9 * (logp - 22) + 0.35 * (logb - 6) - difficulty)))
    correct = luck < p_correct

    reference = rng.integers(10, 100_000, n_problems)
    ref = reference[p]
    wrong_by = rng.choice([-10, -1, 1, 2, 100], n)
    value = np.where(correct, ref, ref + wrong_by)
    style = rng.integers(0, 10, n)
    templates = np.array(
        ["The answer is {}.", "So \\boxed{{{}}}", "#### {}", "{}", "I am not sure."] * 2,
        dtype=object,
    )
    answers = [t.format(f"{v:,}") for t, v in zip(templates[style], value, strict=True)]

    ref_len = np.floor(np.log10(ref)).astype(int) + 1  # one token per digit
    row = np.repeat(np.arange(n), ref_len)  # digit j of each row's reference, vectorised
    j = np.arange(row.size) - np.repeat(np.cumsum(ref_len) - ref_len, ref_len)
    ref_tok = ref[row] // 10 ** (ref_len[row] - 1 - j) % 10
    hits_p = np.repeat(np.clip(p_correct ** (1 / ref_len) + 0.05, 0, 1), ref_len)
    ref_hits = rng.random(ref_tok.size) < hits_p
    ref_lp = np.where(
        ref_hits, -rng.exponential(0.1, ref_tok.size), -rng.exponential(2.0, ref_tok.size)
    )
    ans_len = ref_len + 2
    ans_ids = rng.integers(0, 50, ans_len.sum())
    ans_lp = -rng.exponential(0.3, ans_len.sum())

    gold = (s == 0) & (b == n_budgets - 1)
    think_len = np.full(n, 24)
    g_think = rng.random(think_len.sum()) < 0.97
    g_ans = rng.random(ref_len.sum()) < np.repeat(p_correct, ref_len)
    budget_arr = np.asarray(budgets)[b]
    natural = rng.integers(50, 900, (n_models, n_problems, n_samples))[m, p, s]
    thinking_tokens = np.minimum(budget_arr, natural)

    return pd.DataFrame(
        {
            "run_id": pd.Series([f"bench-{i}" for i in range(n_models)], dtype=object)[m].to_numpy(),
            "model": np.array([f"bench/m{i}" for i in range(n_models)], dtype=object)[m],
            "task": "arith",
            "problem_id": np.array([f"p{i}" for i in range(n_problems)], dtype=object)[p],
            "sample": s,
            "seed": s,
            "budget": budget_arr,
            "extensions": 0,
            "thinking_tokens": thinking_tokens,
            "natural_thinking_tokens": natural,
            "cut": natural > budget_arr,
            "thinking": "",
            "answer": answers,
            "answer_ids": _lists(ans_len, ans_ids),
            "answer_logprobs": _lists(ans_len, ans_lp),
            "reference": reference.astype(str)[p],
            "ref_ids": _lists(ref_len, ref_tok),
            "ref_logprobs": _lists(ref_len, ref_lp),
            "ref_hits": _lists(ref_len, ref_hits),
            "prompt_tokens": 12,
            "generated_tokens": thinking_tokens + ans_len + 2,
            "finish_reason": "stop",
            "time_s": 0.0,
            "choice_logprobs": None,
            "gold_think_hits": _gold_lists(think_len, g_think, gold),
            "gold_think_logprobs": None,
            "gold_answer_hits": _gold_lists(ref_len, g_ans, gold),
            "gold_answer_logprobs": None,
        }
    ).assign(params=lambda d: np.asarray(params)[m], family="bench", engine="synthetic",
             answer_type="integer")


def _efficiency_seconds(scores: pd.DataFrame, n_boot: int) -> float:
    """The thinking-efficiency tables alone (needs, metrics, allocation, seq vs par), on the
    frame `analyze` prepares for them."""
    from evalharness.analysis.efficiency import efficiency_tables
    from evalharness.analysis.records import (
        difficulty_column,
        model_info,
        per_problem_rows,
        prepare,
        with_flops,
    )

    df = with_flops(prepare(scores), model_info(scores))
    df["difficulty"] = difficulty_column(df)
    pp, ks = per_problem_rows(df)
    t = time.perf_counter()
    efficiency_tables(df, pp, ks, n_boot)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=2500)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()

    t = time.perf_counter()
    records = make_records(args.problems, args.samples)
    print(f"generated {len(records):,} records in {time.perf_counter() - t:.1f} s (not timed)")

    stages: dict[str, float] = {}
    t = time.perf_counter()
    scores = score_records(records, "integer")
    for col in ("params", "family", "engine", "answer_type"):  # what load_scores joins
        scores[col] = records[col].to_numpy()
    stages["scoring"] = time.perf_counter() - t

    t = time.perf_counter()
    result = analyze(scores, n_boot=args.boot)
    stages["analysis"] = time.perf_counter() - t
    part = _efficiency_seconds(scores, args.boot)  # inside "analysis", timed again alone

    try:
        plots = importlib.import_module("evalharness.plots")
        make_plots = plots.make_plots
    except (ImportError, AttributeError):
        make_plots = None
    if make_plots is not None:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            paths = make_plots(Path(tmp), Path(tmp) / "plots", analysis=result)
        stages["plots"] = time.perf_counter() - t
        print(f"plots: {len(paths)} files")
    else:
        print("plots: evalharness.plots.make_plots not available, skipped")

    total = sum(stages.values())
    print(f"  (of the analysis: efficiency tables {part:.2f} s; goal for them alone < {GOAL_S:.0f} s)")
    for name, secs in stages.items():
        print(f"{name:>10}: {secs:6.2f} s")
    verdict = "OK" if total < GOAL_S else "OVER"
    print(f"{'total':>10}: {total:6.2f} s  (goal < {GOAL_S:.0f} s: {verdict})")
    acc = scores["exact_match"].mean()
    slopes = ", ".join(
        f"{r.model}: {r.b:.3f}" if r.status == "ok" else f"{r.model}: -"
        for r in result.fits.itertuples()
    )
    print(f"sanity: accuracy {acc:.3f}; gain per doubling of T by model: {slopes}")


if __name__ == "__main__":
    main()
