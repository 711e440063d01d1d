"""Answer extraction and grading under adversarial input: bounded time, never an exception.

Each defect test runs its calls in a forked child that is killed at a time limit, so the
earlier, unbounded code fails the test instead of hanging the suite: a call stuck in one huge
integer operation (``Fraction("1e100000000")``) holds the GIL and ignores signals, so neither a
thread with a join timeout nor SIGALRM could stop it.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import random
import re
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from evalharness.scoring import (
    answers,
    canonical_answer,
    extract_answer,
    grade,
    last_boxed,
    mathverify,
    spans,
)
from evalharness.scoring.answer_types import numbers

TYPES = ("integer", "number", "math", "string", "choice")
# The documented bound (a fallback so that these tests fail, not error, on the earlier code).
# Tests do not assert it: wall time depends on the machine's load, so the per-call latency
# against it is measured in bench/fuzz_grading.py. What they assert is that every call *ends*
# (HANG_S: the unbounded code never did) and gives the right verdict.
LIMIT_S = getattr(answers, "GRADE_TIME_LIMIT_S", 6.0)
HANG_S = 120.0
MB = 1 << 20


def _child(send, fn, args):
    try:
        send.send((True, fn(*args)))
    except BaseException:
        send.send((False, traceback.format_exc()))


def _within(limit_s: float, fn, *args):
    """fn(*args) in a forked child, killed after `limit_s` seconds; its result, or a failure."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(limit_s):
            pytest.fail(f"still running after {limit_s:.0f} s")
        ok, value = recv.recv()
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
    if not ok:
        pytest.fail(f"raised:\n{value}")
    return value


def _timed_calls(calls) -> list[tuple[str, object, float]]:
    """Run (label, fn, *args) calls; their results and seconds (picklable, for `_within`)."""
    out = []
    for label, fn, *args in calls:
        t = time.perf_counter()
        result = fn(*args)
        out.append((label, result, time.perf_counter() - t))
    return out




# ---------------------------------------------------------------------------------------------
# The defects, one test each
# ---------------------------------------------------------------------------------------------


def _huge_exponent_calls():
    text = "The answer is 1e100000000."
    calls = [("extract " + t, extract_answer, text, t) for t in TYPES]
    calls += [("grade " + t, grade, "1e100000000", "5", t) for t in TYPES]
    calls += [("grade ref " + t, grade, "5", "1e100000000", t) for t in TYPES]
    calls += [("canonical " + t, canonical_answer, "1e100000000", t) for t in TYPES]
    return _timed_calls(calls)


def test_a_huge_exponent_is_not_expanded_into_an_exact_integer():
    # 11 characters used to mean an exact integer of 10^8 digits: minutes per call.
    results = _within(HANG_S, _huge_exponent_calls)
    by_label = {label: value for label, value, _ in results}
    assert by_label["extract number"] == "1e100000000"
    assert not any(v for k, v in by_label.items() if k.startswith("grade"))


def test_scoring_a_run_with_a_huge_exponent_finishes():
    from evalharness.scoring import score_records
    from evalharness.types import SampleRecord

    def score():
        base = dict(
            run_id="r", model="m", task="t", problem_id="p", sample=0, seed=0, budget=0,
            extensions=0, thinking_tokens=0, natural_thinking_tokens=0, cut=False, thinking="",
            answer="The answer is 1e100000000.", answer_ids=[1], answer_logprobs=[-0.1],
            reference="5", ref_ids=[1], ref_logprobs=[-0.1], ref_hits=[True],
            prompt_tokens=1, generated_tokens=1, finish_reason="stop", time_s=0.0,
        )
        import pandas as pd

        rows = pd.DataFrame([SampleRecord(**base).to_json()])
        scores = score_records(rows, "number")
        return scores["pred"].tolist(), scores["exact_match"].tolist()

    assert _within(HANG_S, score) == (["1e100000000"], [False])


def _over_the_digit_limit_calls():
    big_frac = "\\frac{" + "7" * 5000 + "}{3}"
    calls = []
    for t in TYPES:
        calls += [
            ("canonical 1e5000 " + t, canonical_answer, "1e5000", t),
            ("canonical frac " + t, canonical_answer, big_frac, t),
            ("grade 1e5000 " + t, grade, "1e5000", "1e5000", t),
            ("grade 1e5000 vs 5 " + t, grade, "1e5000", "5", t),
            ("grade frac " + t, grade, big_frac, big_frac, t),
            ("grade frac vs 5 " + t, grade, big_frac, "5", t),
            ("extract frac " + t, extract_answer, f"The answer is ${big_frac}$.", t),
        ]
    return _timed_calls(calls)


def test_numbers_over_the_int_digit_limit_compare_as_strings_and_never_raise():
    # "1e5000" raised ValueError (Python's 4,300-digit int/str limit) in canonical_answer, and
    # \frac{<4301+ digits>}{...} in grade too.
    results = _within(HANG_S, _over_the_digit_limit_calls)
    by_label = {label: value for label, value, _ in results}
    for t in ("integer", "number", "math"):
        assert by_label["canonical 1e5000 " + t] == "1e5000"  # a string, not a number
        assert by_label["grade 1e5000 " + t] is True  # equal strings are still correct
        assert by_label["grade 1e5000 vs 5 " + t] is False
        assert by_label["grade frac " + t] is True
        assert by_label["grade frac vs 5 " + t] is False


def test_majority_voting_in_analyze_survives_numbers_over_the_digit_limit():
    # analyze (hence plots and report) canonicalises predictions for maj@k.
    from test_analysis import synthetic_scores

    from evalharness.analysis import analyze

    def run():
        scores = synthetic_scores(n_problems=8, n_samples=3)
        wrong = scores.index[~scores["exact_match"]]
        scores.loc[wrong[::2], "pred"] = "1e5000"
        scores.loc[wrong[1::2], "pred"] = "\\frac{" + "7" * 5000 + "}{3}"
        return len(analyze(scores, n_boot=20).budgets)

    assert _within(60, run) > 0


def test_ordinary_numbers_keep_their_exactness_and_tolerance():
    assert grade("1234567890123456789", "1234567890123456788", "integer") is False
    assert grade("1234567890123456", "1,234,567,890,123,456", "integer") is True
    assert grade("1e3", "1000", "integer") is True
    assert grade("1e-3", "0.001", "number") is True
    assert grade("0.3333333", "1/3", "number") is True  # 1e-6 relative tolerance
    assert grade("0.3333", "1/3", "number") is False
    assert grade("1e999", "1" + "0" * 999, "integer") is True  # 1000 characters: still a number
    assert canonical_answer("1e3", "integer") == canonical_answer("1,000", "integer") == "1000"


def _nested_boxes_calls():
    n = 10_000
    calls = [(f"extract {t}", extract_answer, "\\boxed{" * n, t) for t in TYPES]
    calls += [(f"closed {t}", extract_answer, "\\boxed{" * n + "5}", t) for t in TYPES]
    calls.append(("last_boxed", last_boxed, "\\boxed{" * n + "5}" + "}" * (n - 1)))  # all closed
    return _timed_calls(calls)


def test_many_unclosed_boxes_extract_in_linear_time():
    # 10^4 repeats of "\boxed{" took 12-23 s: each box rescanned the text to its end.
    results = _within(HANG_S, _nested_boxes_calls)
    slow = [(label, round(dt, 2)) for label, _, dt in results if dt > 1.0]
    assert not slow, f"over 1 s: {slow}"
    by_label = {label: value for label, value, _ in results}
    assert by_label["closed integer"] == "5" and by_label["extract math"] is None
    assert by_label["last_boxed"] == "5"  # the innermost box is the last one


def _backtracking_calls(texts):
    calls = []
    for name, text in texts.items():
        for t in TYPES:
            calls += [
                (f"extract {name} {t}", extract_answer, text, t),
                (f"grade {name} {t}", grade, text, "5", t),
                (f"canonical {name} {t}", canonical_answer, text, t),
            ]
    return _timed_calls(calls)


def test_long_runs_do_not_make_a_regex_backtrack_quadratically():
    # "1"*n + "a"*n + "!" graded in > 90 s at 1 MB: "\d+\.?\d*" in the number pattern retried
    # every split of the digit run. Long runs of spaces did the same to the answer-cue and
    # "####" patterns (their lazy group re-scanned the run once per character).
    half = MB // 2
    texts = {
        "digits-letters": "1" * half + "a" * half + "!",
        "cue-spaces": "The answer is a" + " " * MB + "b",
        "hash-spaces": "#### a" + " " * MB + "b",
        "digits": "9" * MB,
    }
    results = _within(HANG_S, _backtracking_calls, texts)
    by_label = {label: value for label, value, _ in results}
    assert by_label["extract cue-spaces string"] == "a" + " " * MB + "b"
    assert by_label["extract hash-spaces string"] == "a" + " " * MB + "b"
    assert by_label["grade digits integer"] is False


# ---------------------------------------------------------------------------------------------
# math-verify: bounded on every thread
# ---------------------------------------------------------------------------------------------

_EXPLOSIVE = [
    "9^{9^{9}}", "10^{10^{10}}", "10^{100000000}", "10000000!", "\\binom{1000000}{500000}",
    "(x+1)^{100000}", "9999!!", "x^x^x^x^x^x^x^x^2", "95E821541433", "(10^{9})!",
    "{" * 20 + "1" + "}" * 20, "(" * 20 + "1" + ")" * 20, "1" * 401,
]
_ORDINARY = [
    "\\frac{\\sqrt{3}}{2}", "x^2+2x+1", "(x+1)^2", "e^{-x^2}", "\\left(0, 1\\right]", "2^{10}",
    "\\{1, 2\\}", "(n+1)!", "5!", "\\binom{10}{3}", "1e5000", "3\\sqrt{3}", "2^{2n+1}",
    "\\frac{1}{1+\\frac{1}{1+\\frac{1}{2}}}", "2^{2^{x}}", "e^{-x^{2}}",
    "\\begin{pmatrix}1 & 2\\\\3 & 4\\end{pmatrix}",
]


def test_inputs_known_to_explode_in_sympy_are_refused_up_front():
    for text in _EXPLOSIVE:
        assert mathverify._mv_refuses(text), text
    for text in _ORDINARY:
        assert not mathverify._mv_refuses(text), text


# The slowest of _EXPLOSIVE for math-verify: most end at its own 1 s timeouts in the worker;
# "95E821541433" never does (C code), so its worker is killed at the deadline.
_UNSCREENED = ["9^{9^{9}}", "(x+1)^{100000}", "{" * 20 + "1" + "}" * 20, "95E821541433"]


def _grade_unscreened():
    mathverify._mv_refuses = lambda text: False  # (a forked child: the parent keeps the screen)
    calls = [(text, answers.grade_verdict, text, "\\frac{1}{2}", "math") for text in _UNSCREENED]
    calls.append(("after", grade, "\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "math"))
    return _timed_calls(calls), dict(mathverify.mv_events)


def test_explosive_inputs_that_pass_the_screen_end_undecided_not_wrong():
    """Each ends (math-verify's own time limits, or its worker killed at the deadline) with no
    verdict: a grading timeout, which the scorer counts, not a silent "not equal"."""
    results, events = _within(HANG_S, _grade_unscreened)
    assert [value for _, value, _ in results] == [None] * len(_UNSCREENED) + [True]
    assert events.get("killed", 0) >= 1 and events.get("timed out", 0) >= 1, events


_HANGING_WORKER = """
import signal, sys, time
signal.signal(signal.SIGALRM, signal.SIG_IGN)  # deaf to math-verify's own timeout, like C code
sys.stdout.buffer.write(b'{"ready": true}\\n'); sys.stdout.buffer.flush()
for line in sys.stdin.buffer:
    time.sleep(3600)
"""


def test_a_stuck_math_verify_is_killed_at_the_deadline_on_any_thread(monkeypatch):
    monkeypatch.setattr(mathverify, "_MV_WORKER_SOURCE", _HANGING_WORKER)
    monkeypatch.setattr(mathverify, "_MV_DEADLINE_S", 1.5)
    monkeypatch.setattr(mathverify, "_workers", threading.local())

    def verdict(pair):
        return answers.grade_verdict(*pair, "math"), grade(*pair, "math")

    # the worker sleeps an hour: only the kill at the deadline lets these calls end
    pairs = [("\\sqrt{2}/2", "1/\\sqrt{2}"), ("\\sqrt{8}/4", "1/\\sqrt{2}")]
    results = [_within(HANG_S, verdict, pairs[0])]
    with ThreadPoolExecutor(1) as pool:
        results.append(pool.submit(verdict, pairs[1]).result(timeout=HANG_S))
    # undecided (a grading timeout), not "not equal"; and never cached as a verdict
    assert results == [(None, False), (None, False)]
    assert not any(key in mathverify._MV_CACHE for key in pairs)

    # Back to the real worker: the next answer is graded properly.
    monkeypatch.undo()
    monkeypatch.setattr(mathverify, "_workers", threading.local())
    mathverify._MV_CACHE.clear()
    assert grade("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "math") is True


@pytest.mark.parametrize(
    "source",
    ["raise SystemExit(3)", 'print(\'{"ready": false, "error": "no sympy"}\', flush=True)'],
)
def test_where_no_worker_can_start_math_verify_runs_in_process(monkeypatch, source):
    monkeypatch.setattr(mathverify, "_MV_WORKER_SOURCE", source)
    monkeypatch.setattr(mathverify, "_workers", threading.local())
    monkeypatch.setattr(mathverify, "_worker_broken", False)
    monkeypatch.setattr(mathverify, "_MV_CACHE", type(mathverify._MV_CACHE)())
    assert grade("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "math") is True
    assert mathverify._worker_broken is True


def test_a_task_regex_that_backtracks_is_cut_off():
    text = "x" * 300_000  # this pattern is quadratic here: a lazy prefix, then ".*" per start
    pattern = r"(?s)\A.*?(?:x.*Z)"
    results = _within(
        HANG_S, _timed_calls, [("regex", extract_answer, text, "string", pattern),
                                    ("fallback", extract_answer, text, "string", pattern, True)]
    )
    assert results[0][1] is None  # cut off: the task's regex gave no answer
    assert results[1][1] == text  # ... and, where the task opts in, the default extraction
    # Flags of a compiled pattern are kept.
    assert extract_answer("ANSWER: 7", "integer", pattern=re.compile("answer: (\\d)", re.I)) == "7"


# ---------------------------------------------------------------------------------------------
# The linear rewrites give what the regexes they replace gave
# ---------------------------------------------------------------------------------------------

_OLD_SENTENCE = re.compile(r"\s*(.+?)\s*(?:\.\s|\.?$|\n)", re.MULTILINE)
_OLD_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_OLD_NUM_CORE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?:/\d+)?$", re.IGNORECASE)


def _old_last_boxed(text):
    for m in reversed(list(spans._BOXED.finditer(text))):
        depth = 1
        for i in range(m.end(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[m.end() : i]
    bare = spans._BOXED_BARE.findall(text)
    return bare[-1] if bare else None


def _blank_is_none(span):  # a whitespace-only span tidies to nothing either way
    return span if span is not None and span.strip() else None


def test_linear_extraction_matches_the_regexes_it_replaces():
    rng = random.Random(7)
    alphabet = ["a", "5", ".", " ", "\n", "\t", "\r", "#", "####", "\x1c", "\u2028", "\u00a0",
                ". ", ".\n", "{", "}", "\\boxed{", "\\fbox{", "\\boxed ", "e"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        pos = rng.randint(0, len(text))
        old = _OLD_SENTENCE.match(text, pos)
        assert _blank_is_none(answers._sentence_after(text, pos)) == _blank_is_none(
            old.group(1) if old else None
        ), (text, pos)
        found = _OLD_HASHES.findall(text)
        assert _blank_is_none(answers._last_hashes(text)) == _blank_is_none(
            found[-1] if found else None
        ), text
        assert last_boxed(text) == _old_last_boxed(text), text
    for _ in range(20_000):
        text = "".join(rng.choice("0123456789..eE+-/ \n") for _ in range(rng.randint(0, 8)))
        assert bool(numbers._NUM_CORE.match(text)) == bool(_OLD_NUM_CORE.match(text)), text


# ---------------------------------------------------------------------------------------------
# Fuzz: 10^4 adversarial outputs per answer type
# ---------------------------------------------------------------------------------------------


def _load_bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "fuzz_grading.py"
    spec = importlib.util.spec_from_file_location("fuzz_grading", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


N_FUZZ = 10_000
REAL_MATH_VERIFY_CALLS = 250


def test_fuzz_every_answer_type_never_raises(monkeypatch):
    """Every public call on 5 x 10^4 adversarial outputs: no exception (raised, or swallowed
    and logged), results of the promised types (bench/fuzz_grading.py times them against the
    bound).

    math-verify costs ~7 ms a call on such input, so the first REAL_MATH_VERIFY_CALLS reach the
    real worker and the rest a stand-in that checks what it is handed (the worker's bound has
    its own tests above); everything before the worker runs for real on all of them."""
    fuzz = _load_bench()
    errors = _Errors()
    logging.getLogger(answers.__name__).addHandler(errors)
    real, budget = mathverify._worker_verdict, [REAL_MATH_VERIFY_CALLS]

    def worker_verdict(pred, reference, deadline):
        assert isinstance(pred, str) and isinstance(reference, str)
        assert not mathverify._mv_refuses(pred) and not mathverify._mv_refuses(reference)
        budget[0] -= 1
        return real(pred, reference, deadline) if budget[0] >= 0 else False

    monkeypatch.setattr(mathverify, "_worker_verdict", worker_verdict)
    rng = random.Random(20251129)

    try:
        for kind in TYPES:
            refs = fuzz.REFERENCES[kind]
            for i in range(N_FUZZ):
                text = fuzz.adversarial(rng)
                ref = refs[i % len(refs)]
                pred = extract_answer(text, kind)
                assert pred is None or (isinstance(pred, str) and pred), (kind, text)
                for answer in (pred, text):  # the raw output too: grade must take anything
                    assert grade(answer, ref, kind) in (True, False), (kind, text)
                    key = canonical_answer(answer, kind)
                    assert key is None or isinstance(key, str), (kind, text)
    finally:
        logging.getLogger(answers.__name__).removeHandler(errors)
    assert not errors.messages, errors.messages[:3]
    assert budget[0] < 0, "the fuzz inputs should reach math-verify"


# ---------------------------------------------------------------------------------------------
# The zoo's integer answers: the whole answer is the number, or there is none
# ---------------------------------------------------------------------------------------------

ZOO_TASKS = ("add5", "add_sweep", "mul")


@pytest.mark.parametrize("name", ZOO_TASKS)
def test_zoo_answers_that_are_not_an_integer_are_no_answer_not_another_number(name):
    """'1d0' was read as 0 and '10;;;</think>3' as 3 (the last number in the text): six
    records of the default job graded as answers the models never gave."""
    import pandas as pd

    from evalharness.scoring import score_records
    from evalharness.tasks import load_task

    task = load_task(name, limit=1)
    for text in ("1d0", "10;;;</think>3", "12 13", "-", "3;", "</think>42", "7a"):
        assert extract_answer(text, task.answer_type, task.answer_regex) is None, text
    for text, want in (("156438", "156438"), (" 42\n", "42"), ("0", "0")):
        assert extract_answer(text, task.answer_type, task.answer_regex) == want
    # through the scorer, as a run's spec sets it: no answer, counted, and not correct
    df = pd.DataFrame({"problem_id": ["p"] * 3, "answer": ["1d0", "10;;;</think>3", "3"],
                       "reference": ["0", "3", "3"], "finish_reason": ["stop"] * 3})
    s = score_records(df, task.answer_type, pattern=task.answer_regex)
    assert s["no_answer"].tolist() == [True, True, False]
    assert s["exact_match"].tolist() == [False, False, True]


@pytest.mark.parametrize("name", ZOO_TASKS)
def test_every_gold_answer_of_a_zoo_task_scores_correct_under_its_regex(name):
    """The built-in tasks still score what they should: each problem's gold answer, as a
    model would write it, is extracted whole and graded correct."""
    from evalharness.tasks import load_task

    task = load_task(name)
    assert task.answer_regex is not None and not task.answer_fallback
    for p in task.problems:
        pred = extract_answer(p.reference, task.answer_type, task.answer_regex)
        assert pred == p.reference and grade(pred, p.reference, task.answer_type), p.id


# regex tasks whose extraction is checked in another file (name -> where)
REGEX_TESTED_ELSEWHERE = {
    "chat_arith": "tests/test_tasks.py::test_chat_arith_regex_is_authoritative",
}


def test_built_in_tasks_without_a_regex_keep_the_default_extraction():
    from evalharness.tasks.yaml_tasks import _read_yaml, _yaml_files

    for path in _yaml_files():
        cfg = _read_yaml(path)
        if cfg.get("answer_regex") is None:
            assert not cfg.get("answer_fallback"), path
        elif cfg["name"] not in ZOO_TASKS and cfg["name"] not in REGEX_TESTED_ELSEWHERE:
            pytest.fail(f"{path}: a regex task this test does not know; check what it scores")


_UNDECIDED_WORKER = """
import json, sys
sys.stdout.buffer.write(b'{"ready": true}\\n'); sys.stdout.buffer.flush()
for line in sys.stdin.buffer:  # every comparison "ran out of time" (a starved machine)
    rid = json.loads(line)[0]
    sys.stdout.buffer.write(json.dumps([rid, False, True]).encode() + b"\\n")
    sys.stdout.buffer.flush()
"""


def test_a_grading_timeout_is_counted_beside_accuracy_and_decided_on_a_rescore(monkeypatch):
    """When math-verify runs out of time on a correct answer, the record is not silently
    wrong: `grade_timeout` marks it (the run table counts it next to exact match), and the
    verdict is not cached, so scoring again on a quiet machine decides it."""
    import pandas as pd

    from evalharness.scoring import score_records
    from evalharness.types import SampleRecord

    base = dict(
        run_id="r", model="m", task="t", sample=0, seed=0, budget=0, extensions=0,
        thinking_tokens=0, natural_thinking_tokens=0, cut=False, thinking="", answer_ids=[1],
        answer_logprobs=[-0.1], ref_ids=[1], ref_logprobs=[-0.1], ref_hits=[True],
        prompt_tokens=1, generated_tokens=1, finish_reason="stop", time_s=0.0)
    rows = pd.DataFrame([
        SampleRecord(**base, problem_id="a", answer="\\boxed{(x+1)^2}", reference="x^2+2x+1")
        .to_json(),
        SampleRecord(**base, problem_id="b", answer="\\boxed{7}", reference="7").to_json(),
    ])
    monkeypatch.setattr(mathverify, "_MV_WORKER_SOURCE", _UNDECIDED_WORKER)
    monkeypatch.setattr(mathverify, "_workers", threading.local())
    monkeypatch.setattr(mathverify, "_MV_CACHE", type(mathverify._MV_CACHE)())
    starved = score_records(rows, "math")
    assert starved["exact_match"].tolist() == [False, True]  # "7" = "7" needs no math-verify
    assert starved["grade_timeout"].tolist() == [True, False]
    assert starved["no_answer"].tolist() == [False, False]

    monkeypatch.undo()
    monkeypatch.setattr(mathverify, "_workers", threading.local())
    quiet = score_records(rows, "math")
    assert quiet["exact_match"].tolist() == [True, True]
    assert quiet["grade_timeout"].tolist() == [False, False]
