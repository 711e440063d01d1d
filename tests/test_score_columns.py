"""The score-column registry: multiple-choice accuracy as lm-eval computes it, Brier, and the
error / no-answer flags that must never hide inside 'wrong'."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evalharness.scoring import SCORE_COLUMNS, score_records
from evalharness.scoring.columns import COLUMNS, EMERGENCE_COLUMNS


def _rows(**over):
    base = dict(run_id="r", model="m", task="t", problem_id="p", sample=0, seed=0, budget=0,
                extensions=0, thinking_tokens=0, natural_thinking_tokens=None, cut=False,
                thinking="", answer="B", answer_ids=[1], answer_logprobs=[-0.1], reference="B",
                ref_ids=[1], ref_logprobs=[-0.2], ref_hits=[True], prompt_tokens=3,
                generated_tokens=1, finish_reason="stop", time_s=0.0)
    base.update(over)
    return base


def test_multiple_choice_acc_is_argmax_of_prompt_option_logprobs_like_lm_eval():
    # option C is longest: raw argmax picks A, per-character argmax picks C
    lp = [-2.0, -5.0, -2.5, -9.0]
    chars = [2, 3, 10, 4]
    df = pd.DataFrame([_rows(reference="A", prompt_choice_logprobs=lp, choice_chars=chars,
                             choice_logprobs=lp),
                       _rows(reference="C", prompt_choice_logprobs=lp, choice_chars=chars,
                             choice_logprobs=lp)])
    s = score_records(df, "choice")
    assert s["acc"].tolist() == [1.0, 0.0]
    norm = np.array(lp) / np.array(chars)
    assert int(np.argmax(norm)) == 2
    assert s["acc_norm"].tolist() == [0.0, 1.0]
    p = np.exp(lp) / np.exp(lp).sum()
    want = ((p - np.eye(4)[0]) ** 2).sum()
    assert math.isclose(s["brier"][0], want, rel_tol=1e-12)


def test_brier_is_nan_only_without_options_and_a_letter_reference_grades_a_letter_answer():
    df = pd.DataFrame([_rows(answer="The answer is (B).", reference="B")])
    s = score_records(df, "choice")
    assert s["pred"][0] == "B" and bool(s["exact_match"][0])
    assert np.isnan(s["brier"][0]) and np.isnan(s["acc"][0])


def test_error_records_are_flagged_and_not_counted_as_missing_answers():
    df = pd.DataFrame([
        _rows(answer="", finish_reason="error: prompt too long (600 > 512)"),
        _rows(answer="no idea", reference="5", finish_reason="length"),
        _rows(answer="5", reference="5", finish_reason="stop"),
    ])
    s = score_records(df, "integer")
    assert s["finish_reason"].tolist() == ["error: prompt too long (600 > 512)", "length", "stop"]
    assert s["error"].tolist() == [True, False, False]
    assert s["no_answer"].tolist() == [False, True, False]
    assert s["exact_match"].tolist() == [False, False, True]


def test_registry_defines_every_score_column_once_and_marks_emergence_metrics():
    assert SCORE_COLUMNS[-len(COLUMNS):] == list(COLUMNS)
    assert len(set(SCORE_COLUMNS)) == len(SCORE_COLUMNS)
    assert {"ref_token_acc", "edit_distance", "gold_token_acc"} <= set(EMERGENCE_COLUMNS)
    assert "exact_match" not in EMERGENCE_COLUMNS


def test_a_choice_answer_given_as_the_option_text_counts_as_that_option():
    df = pd.DataFrame([_rows(problem_id="q1", answer="58147", reference="C"),
                       _rows(problem_id="q2", answer="12", reference="A")])
    options = {"q1": ["58047", "58146", "58147", "57147"], "q2": ["13", "14", "15", "16"]}
    s = score_records(df, "choice", options=options)
    assert s["pred"].tolist() == ["C", None]
    assert s["exact_match"].tolist() == [True, False]
