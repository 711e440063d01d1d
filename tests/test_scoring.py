from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalharness.scoring import (
    SCORE_COLUMNS,
    canonical_answer,
    edit_distance,
    extract_answer,
    grade,
    load_scores,
    read_samples,
    score_records,
    score_run,
)
from evalharness.types import SampleRecord

# (model output, answer type, what the extractor should return)
EXTRACTION = [
    ("So the total is \\boxed{72}.", "integer", "72"),
    ("\\boxed{\\frac{1}{2}}", "math", "\\frac{1}{2}"),
    ("Thus $\\boxed{\\frac{\\sqrt{3}}{2}}$.", "math", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{\\boxed{5}}", "integer", "5"),
    ("First \\boxed{3}, then corrected: \\boxed{4}", "integer", "4"),
    ("The answer is \\boxed{5}. Or maybe 6", "integer", "5"),
    ("\\boxed{x^{2}+\\frac{1}{x}}", "math", "x^{2}+\\frac{1}{x}"),
    ("\\boxed{12", "integer", "12"),  # truncated box: falls back to the last number
    ("$$\\boxed{2\\pi}$$", "math", "2\\pi"),
    ("\\fbox{9}", "integer", "9"),
    ("\\boxed 7", "integer", "7"),
    ("The interval is \\boxed{(0, 1]}", "math", "(0, 1]"),
    ("\\boxed{(1, 2)}", "math", "(1, 2)"),
    ("The answer is $1,234.", "integer", "1,234"),
    ("The answer is: **17**", "integer", "17"),
    ("**Answer:** 12", "integer", "12"),
    ("The answer is 42 apples because 6*7 = 42", "integer", "42"),
    ("so the answer is 12 + 30 = 42", "integer", "42"),
    ("The final answer is 5 dollars.", "integer", "5"),
    ("The answer is 3.5.", "number", "3.5"),
    ("The answer is -7.", "integer", "-7"),
    ("answer: 0.25", "number", "0.25"),
    ("The answer is 1e3.", "number", "1e3"),
    ("Final Answer: The final answer is $\\dfrac12$. I hope it is correct.", "math", "\\dfrac12"),
    ("The answer is \\( x = 3 \\).", "math", "x = 3"),
    ("The answer is\n42", "integer", "42"),
    ("#### 72", "integer", "72"),
    ("Natalia sold 48 clips in April.\n#### 1,234", "integer", "1,234"),
    ("She has 3 apples and buys 5 more, so 8 apples.", "integer", "8"),
    ("We get 1,000,000 in total", "integer", "1,000,000"),
    ("The values are 3, 4 and 5", "integer", "5"),
    ("It is 0.5 of the whole", "math", "0.5"),
    ("I don't know.", "integer", None),
    ("", "integer", None),
    ("   \n  ", "math", None),
    ("Therefore, the answer is (B).", "choice", "B"),
    ("I think B is right. Answer: C", "choice", "C"),
    ("The correct option is D", "choice", "D"),
    ("\\boxed{A}", "choice", "A"),
    ("Answer: (c)", "choice", "C"),
    ("A lot of thought went into this.", "choice", None),
    ("Paris", "string", "Paris"),
    ("Let me think.\nThe capital is Paris.\n\nParis", "string", "Paris"),
    ("The answer is Paris.", "string", "Paris"),
    # Too big to evaluate, still a number: the span is kept whole, not cut to its first digit.
    ("The answer is 1e100000000.", "number", "1e100000000"),
    ("The answer is 42   . Then more", "integer", "42"),
    ("#### 12   \n\n", "integer", "12"),
]

# (extracted prediction, reference, answer type, correct?)
GRADING = [
    ("72", "72", "integer", True),
    ("72.0", "72", "integer", True),
    ("072", "72", "integer", True),
    ("1,234", "1234", "integer", True),
    ("$1,234.00", "1234", "integer", True),
    ("\\$18", "18", "integer", True),
    ("18", "\\$18", "integer", True),
    ("72 dollars", "72", "integer", True),
    ("50%", "50", "integer", True),
    ("x = 5", "5", "integer", True),
    ("1e3", "1000", "integer", True),
    ("73", "72", "integer", False),
    ("7.2", "72", "integer", False),
    ("-5", "5", "integer", False),
    ("1234567890123456789", "1234567890123456788", "integer", False),  # exact, not float
    ("five", "5", "integer", False),
    ("", "5", "integer", False),
    (None, "5", "integer", False),
    ("1/2", "0.5", "number", True),
    ("\\frac{3}{4}", "0.75", "number", True),
    ("0.333333", "1/3", "number", True),
    ("0.33", "1/3", "number", False),
    ("90^\\circ", "90", "number", True),
    ("\\frac{1}{2}", "0.5", "math", True),
    ("\\dfrac12", "\\frac{1}{2}", "math", True),
    ("0.5", "\\frac{1}{2}", "math", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "math", True),
    ("3\\sqrt{3}", "\\sqrt{27}", "math", True),
    ("(0,1]", "\\left(0, 1\\right]", "math", True),
    ("[0,1)", "(0,1]", "math", False),
    ("(1, 2)", "(1,2)", "math", True),
    ("(2, 1)", "(1, 2)", "math", False),
    ("\\{1, 2\\}", "\\{2, 1\\}", "math", True),
    ("2\\pi", "2 \\pi", "math", True),
    ("x^2+2x+1", "(x+1)^2", "math", True),
    ("\\infty", "\\infty", "math", True),
    ("x = 3", "3", "math", True),
    ("4", "3", "math", False),
    ("\\text{(B)}", "5", "math", False),
    ("Paris", "paris", "string", True),
    ("  Paris. ", "Paris", "string", True),
    ('"Paris"', "Paris", "string", True),
    ("new  york", "New York", "string", True),
    ("The Paris", "Paris", "string", False),
    ("B", "B", "choice", True),
    ("(B)", "B", "choice", True),
    ("b", "B", "choice", True),
    ("Option B", "B", "choice", True),
    ("B. 42", "B", "choice", True),
    ("\\text{B}", "B", "choice", True),
    ("C", "B", "choice", False),
    (None, "B", "choice", False),
    # Beyond the number caps a value compares as a normalised string.
    ("1e5000", "1e5000", "number", True),
    ("1e5000", "1E5000", "integer", True),
    ("1e100000000", "5", "integer", False),
    ("1e999", "1" + "0" * 999, "integer", True),
]


@pytest.mark.parametrize(("text", "answer_type", "expected"), EXTRACTION)
def test_extract_answer_on_realistic_outputs(text, answer_type, expected):
    assert extract_answer(text, answer_type) == expected


@pytest.mark.parametrize(("pred", "reference", "answer_type", "expected"), GRADING)
def test_grade_on_realistic_answers(pred, reference, answer_type, expected):
    assert grade(pred, reference, answer_type) is expected


def test_the_tables_are_large_enough():
    assert len(EXTRACTION) + len(GRADING) >= 60


def test_a_task_regex_is_authoritative_and_falls_back_only_where_the_task_opts_in():
    text = "ANSWER: 12 then \\boxed{13}"
    assert extract_answer(text, "integer", pattern=r"ANSWER:\s*(\d+)") == "12"
    # no match is no answer (lm-eval's regex filter), never the boxed 13 or a last number
    assert extract_answer(text, "integer", pattern=r"RESULT=(\d+)") is None
    assert extract_answer("The answer is 18.", "integer", pattern=r"#### (\-?[0-9\.\,]+)") is None
    assert extract_answer("#### .", "integer", pattern=r"#### (\-?[0-9\.\,]+)") is None  # empty
    # answer_fallback: the task's explicit opt-in to the default cascade
    assert extract_answer(text, "integer", pattern=r"RESULT=(\d+)", fallback=True) == "13"
    assert extract_answer(text, "integer", pattern=r"ANSWER:\s*(\d+)", fallback=True) == "12"
    assert extract_answer("x\\boxed{9}", "integer", pattern=r"\d") == "9"  # group 0
    # several groups: the first non-empty one, as lm-eval picks
    assert extract_answer("so 42 it is", "integer", pattern=r"(-?[$0-9.,]{2,})|(-?[0-9]+)") == "42"
    assert extract_answer("so 7 it is", "integer", pattern=r"(-?[$0-9.,]{2,})|(-?[0-9]+)") == "7"


def test_extract_answer_tolerates_non_text_and_broken_patterns():
    assert extract_answer(None, "integer") is None  # type: ignore[arg-type]
    assert extract_answer(42, "integer") is None  # type: ignore[arg-type]
    assert extract_answer("the answer is 3", "integer", pattern="(unclosed") is None


_FRAGMENTS = st.sampled_from(
    ["\\boxed{", "\\fbox{", "{", "}", "$", "answer is", "Answer:", "####", "\n", " ", "(B)",
     "1,234", "-3.5", "\\frac{1}{2}", "=", ".", "**", "\\(", "\\)", "e", "A", "/"]
)
_TYPES = st.sampled_from(["integer", "number", "math", "string", "choice"])


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=30).map("".join)), kind=_TYPES)
def test_extract_answer_never_raises(text, kind):
    result = extract_answer(text, kind)
    assert result is None or (isinstance(result, str) and result != "")


@settings(max_examples=60, deadline=None)
@given(text=st.lists(_FRAGMENTS, max_size=12).map("".join), kind=_TYPES)
def test_grading_an_extracted_answer_never_raises(text, kind):
    assert grade(extract_answer(text, kind), "\\frac{1}{2}", kind) in (True, False)


def test_math_verify_grading_works_off_the_main_thread():
    # math-verify's own timeout uses SIGALRM, which raises in worker threads unless disabled.
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda pair: grade(pair[0], pair[1], "math"),
                [("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("[0,1)", "(0,1]")],
            )
        )
    assert results == [True, False]


def test_canonical_answer_merges_equivalent_spellings():
    assert canonical_answer("1,234.0", "integer") == canonical_answer("1234", "integer")
    assert canonical_answer("(b)", "choice") == "B"
    assert canonical_answer("\\dfrac{1}{2}", "math") == canonical_answer("0.5", "math")
    assert canonical_answer(None, "math") is None


def _levenshtein(a: list[int], b: list[int]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@settings(max_examples=200, deadline=None)
@given(
    a=st.lists(st.integers(0, 4), max_size=12),
    b=st.lists(st.integers(0, 4), max_size=12),
)
def test_edit_distance_matches_the_textbook_recurrence(a, b):
    assert edit_distance(a, b) == _levenshtein(a, b)


def test_edit_distance_examples():
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == 4
    assert edit_distance(list(range(40)), [0, 1, 2, 39]) == 36


def _record(**overrides) -> dict:
    base = dict(
        run_id="r1", model="zoo/m", task="arith", problem_id="p0", sample=0, seed=0,
        budget=64, extensions=0, thinking_tokens=40, natural_thinking_tokens=40, cut=False,
        thinking="1+1=2;", answer="The answer is 12.", answer_ids=[5, 6, 7],
        answer_logprobs=[-0.1, -0.3], reference="12", ref_ids=[6, 7],
        ref_logprobs=[-0.5, -1.0], ref_hits=[True, False], prompt_tokens=10,
        generated_tokens=45, finish_reason="stop", time_s=0.1,
    )
    base.update(overrides)
    return SampleRecord(**base).to_json()


def _hand_made() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _record(),
            _record(
                problem_id="p1", answer="no idea", answer_ids=[], answer_logprobs=[],
                ref_logprobs=[-2.0, -0.1], ref_hits=[False, True], natural_thinking_tokens=None,
                cut=True,
            ),
            _record(
                problem_id="p2", answer="\\boxed{13}", answer_ids=[6, 8],
                gold_think_hits=[True, True, False, True], gold_think_logprobs=[-0.1] * 4,
                gold_answer_hits=[True, False], gold_answer_logprobs=[-0.2, -1.3],
            ),
        ]
    )


def test_score_records_computes_every_column_by_hand():
    scores = score_records(_hand_made(), "integer")
    assert list(scores.columns) == SCORE_COLUMNS
    first, second, third = (scores.iloc[i] for i in range(3))

    assert first["pred"] == "12" and bool(first["exact_match"])
    assert first["ref_len"] == 2
    assert first["ref_logprob_sum"] == pytest.approx(-1.5)
    assert first["ref_logprob_mean"] == pytest.approx(-0.75)
    assert first["ref_prob"] == pytest.approx(math.exp(-1.5))
    assert first["ref_token_acc"] == pytest.approx(0.5)
    assert first["edit_distance"] == 1  # [5, 6, 7] -> [6, 7]
    assert first["answer_logprob_mean"] == pytest.approx(-0.2)
    assert np.isnan(first["brier"]) and np.isnan(first["gold_token_acc"])

    assert second["pred"] is None and not bool(second["exact_match"])
    assert second["edit_distance"] == 2 and np.isnan(second["answer_logprob_mean"])
    assert np.isnan(second["natural_thinking_tokens"]) and bool(second["cut"])

    assert third["pred"] == "13" and not bool(third["exact_match"])
    assert third["edit_distance"] == 1  # [6, 8] -> [6, 7]
    assert third["gold_think_acc"] == pytest.approx(0.75)
    assert third["gold_answer_acc"] == pytest.approx(0.5)
    assert third["gold_token_acc"] == pytest.approx(4 / 6)
    assert third["gold_answer_logprob"] == pytest.approx(-1.5)
    assert third["gold_answer_len"] == 2 and third["gold_think_len"] == 4


def test_score_records_brier_for_multiple_choice():
    lp = list(np.log([0.7, 0.2, 0.1]))
    rows = pd.DataFrame(
        [
            _record(answer="Answer: A", reference="A", choice_logprobs=lp),
            _record(answer="Answer: A", reference="(C)", choice_logprobs=lp),
            _record(answer="Answer: A", reference="Z", choice_logprobs=lp),  # not an option
        ]
    )
    scores = score_records(rows, "choice")
    assert scores["exact_match"].tolist() == [True, False, False]
    assert scores["brier"].iloc[0] == pytest.approx(0.3**2 + 0.2**2 + 0.1**2)
    assert scores["brier"].iloc[1] == pytest.approx(0.7**2 + 0.2**2 + 0.9**2)
    assert np.isnan(scores["brier"].iloc[2])


def _write_run(run_dir, rows, manifest, tail=""):
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    lines = [json.dumps(r) for r in rows]
    (run_dir / "samples.jsonl").write_text("\n".join(lines) + "\n" + tail)


def test_score_run_skips_broken_lines_and_matches_in_memory_scoring(tmp_path):
    rows = _hand_made().to_dict(orient="records")
    rows = [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
            for r in rows]
    manifest = {"run_id": "r1", "answer_type": "integer", "params": 1000, "family": "zoo"}
    _write_run(tmp_path / "r1", rows, manifest, tail='{"run_id": "r1", "mod')  # half a line
    path = score_run(tmp_path / "r1")
    from_disk = pd.read_parquet(path)
    in_memory = score_records(_hand_made(), "integer")
    pd.testing.assert_frame_equal(
        from_disk.drop(columns=["pred"]), in_memory.drop(columns=["pred"]), check_dtype=False
    )
    assert from_disk["pred"].tolist()[0] == "12"

    # A garbage line in the middle forces the line-by-line reader; same records survive.
    text = (tmp_path / "r1" / "samples.jsonl").read_text().splitlines()
    (tmp_path / "r1" / "samples.jsonl").write_text("\n".join([text[0], "{oops", *text[1:3]]))
    assert len(read_samples(tmp_path / "r1" / "samples.jsonl")) == 3


def test_load_scores_joins_manifests_and_rescoring_stale_runs(tmp_path):
    rows = [_record(problem_id=f"p{i}") for i in range(3)]
    _write_run(tmp_path / "runs" / "a", rows, {"answer_type": "integer", "params": 1e6,
                                               "family": "zoo", "engine": "hf"})
    _write_run(tmp_path / "runs" / "b", rows[:1], {"answer_type": "integer", "params": 4e6})
    scores = load_scores(tmp_path)
    assert len(scores) == 4
    assert sorted(scores["params"].unique()) == [1e6, 4e6]
    assert set(scores["family"]) == {"zoo", "b"}  # no family: the run stands alone
    assert (scores.loc[scores["params"] == 1e6, "engine"] == "hf").all()

    # New samples make the stored scores stale: they are re-scored on the next load.
    samples = tmp_path / "runs" / "b" / "samples.jsonl"
    with samples.open("a") as f:
        f.write(json.dumps(_record(problem_id="p9")) + "\n")
    later = (tmp_path / "runs" / "b" / "scores.parquet").stat().st_mtime + 10
    os.utime(samples, (later, later))
    assert len(load_scores(tmp_path / "runs")) == 5
