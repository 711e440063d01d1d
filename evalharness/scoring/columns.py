"""Score rows from sample records: one row per record, columns computed vectorised.

Text work (extraction, grading) runs once per *distinct* answer string / (prediction,
reference) pair, and the per-token lists are reduced through flat Arrow buffers instead of
Python loops, so 10^6 records score in seconds. Pure: frames in, frames out (no file I/O).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from evalharness.scoring.answers import _choice_letter, extract_answer, grade
from evalharness.scoring.tokens import _Ragged, batch_edit_distance
from evalharness.types import AnswerType

# ---------------------------------------------------------------------------------------------
# score_records / score_run / load_scores
# ---------------------------------------------------------------------------------------------

ID_COLUMNS = [
    "run_id", "model", "task", "problem_id", "sample", "seed", "budget", "extensions",
    "thinking_tokens", "natural_thinking_tokens", "cut", "prompt_tokens", "generated_tokens",
]  # fmt: skip
SCORE_COLUMNS = ID_COLUMNS + [
    "pred", "correct", "ref_len", "ref_logprob_sum", "ref_logprob_mean", "ref_prob",
    "ref_token_acc", "edit_distance", "answer_logprob_mean", "brier",
    "gold_think_acc", "gold_answer_acc", "gold_token_acc", "gold_answer_logprob",
    "gold_answer_len", "gold_think_len",
]  # fmt: skip


def _map_unique(values: pd.Series, fn: Callable[[object], object]) -> np.ndarray:
    """Apply `fn` once per distinct value (answers repeat a lot across samples and budgets)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [fn(None)], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing fn(None)


def _choice_index(reference: str | None) -> float:
    letter = _choice_letter(reference) if isinstance(reference, str) else None
    return float(ord(letter) - ord("A")) if letter is not None else np.nan


def _brier(choice: _Ragged, references: pd.Series) -> np.ndarray:
    """Multiple-choice Brier score: sum_i (softmax(choice_logprobs)_i - 1[i == correct])^2."""
    out = np.full(choice.n, np.nan)
    has = choice.lengths > 0
    if not has.any():
        return out
    correct = _map_unique(references, _choice_index).astype(float)
    starts = choice.offsets[:-1]
    row_max = np.full(choice.n, -np.inf)
    row_max[has] = np.maximum.reduceat(choice.values.astype(float), starts[has])
    e = np.exp(choice.values - row_max[choice.parent])
    p = e / np.bincount(choice.parent, weights=e, minlength=choice.n)[choice.parent]
    pos = np.arange(choice.values.size) - starts[choice.parent]
    target = (pos == correct[choice.parent]).astype(float)
    sq = np.bincount(choice.parent, weights=(p - target) ** 2, minlength=choice.n)
    ok = has & ~np.isnan(correct) & (correct < choice.lengths)
    out[ok] = sq[ok]
    return out


def score_records(
    df: pd.DataFrame, answer_type: AnswerType | str, pattern: str | None = None
) -> pd.DataFrame:
    """One score row per record (columns: `SCORE_COLUMNS`).

    `df` has the `SampleRecord` fields as columns; list fields may be Python lists or Arrow
    lists. Optional fields (choice_logprobs, gold_*) may be absent. ``ref_len`` (reference
    tokens) is kept because predicted exact match = per-token accuracy ** length needs it.
    """
    n = len(df)
    out = pd.DataFrame({c: df[c].to_numpy() if c in df else None for c in ID_COLUMNS})
    if n == 0:
        return pd.DataFrame(columns=SCORE_COLUMNS)

    answers = df["answer"].astype(object)
    pred = _map_unique(answers, lambda a: extract_answer(a, answer_type, pattern))
    out["pred"] = pd.Series(pred, dtype=object)

    # Grade each distinct (prediction, reference) pair once.
    p_codes, p_uniq = pd.factorize(out["pred"])
    r_codes, r_uniq = pd.factorize(df["reference"].astype(object))
    width = len(r_uniq) + 1
    pairs, inverse = np.unique((p_codes + 1) * width + (r_codes + 1), return_inverse=True)
    graded = np.array(
        [
            grade(
                p_uniq[pc_ - 1] if (pc_ := int(c) // width) > 0 else None,
                r_uniq[rc_ - 1] if (rc_ := int(c) % width) > 0 else None,
                answer_type,
            )
            for c in pairs
        ],
        dtype=bool,
    )
    out["correct"] = graded[inverse.reshape(-1)]

    ref_lp = _Ragged(df["ref_logprobs"], n, pa.float64())
    ref_hits = _Ragged(df["ref_hits"], n, pa.bool_())
    out["ref_len"] = ref_lp.lengths
    out["ref_logprob_sum"] = np.where(ref_lp.valid, ref_lp.sum(), np.nan)
    out["ref_logprob_mean"] = ref_lp.mean()
    out["ref_prob"] = np.exp(out["ref_logprob_sum"].to_numpy())
    out["ref_token_acc"] = ref_hits.mean()

    answer_ids = _Ragged(df["answer_ids"], n, pa.int64())
    ref_ids = _Ragged(df["ref_ids"], n, pa.int64())
    out["edit_distance"] = batch_edit_distance(
        answer_ids.values, answer_ids.offsets, ref_ids.values, ref_ids.offsets
    )
    out["answer_logprob_mean"] = _Ragged(df["answer_logprobs"], n, pa.float64()).mean()

    choice = _Ragged(df.get("choice_logprobs"), n, pa.float64())
    out["brier"] = _brier(choice, df["reference"].astype(object))

    think_hits = _Ragged(df.get("gold_think_hits"), n, pa.bool_())
    ans_hits = _Ragged(df.get("gold_answer_hits"), n, pa.bool_())
    ans_lp = _Ragged(df.get("gold_answer_logprobs"), n, pa.float64())
    gold = ans_hits.valid | think_hits.valid
    total = think_hits.lengths + ans_hits.lengths
    with np.errstate(invalid="ignore", divide="ignore"):
        out["gold_think_acc"] = np.where(think_hits.valid, think_hits.mean(), np.nan)
        out["gold_answer_acc"] = np.where(ans_hits.valid, ans_hits.mean(), np.nan)
        out["gold_token_acc"] = np.where(
            gold & (total > 0), (think_hits.sum() + ans_hits.sum()) / total, np.nan
        )
    out["gold_answer_logprob"] = np.where(ans_lp.valid, ans_lp.sum(), np.nan)
    out["gold_answer_len"] = np.where(ans_hits.valid, ans_hits.lengths, np.nan)
    out["gold_think_len"] = np.where(think_hits.valid, think_hits.lengths, np.nan)
    return out[SCORE_COLUMNS]


