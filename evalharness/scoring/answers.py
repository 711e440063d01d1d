"""Answer extraction and grading: text in, a prediction and a verdict out (pure functions).

What an answer type means (where its answer is in the text, when two answers are equal) is its
`AnswerKind` in the registry (`scoring.answer_types`); this module finds the span the types share
(a task's regex, ``\\boxed{}``, an "answer is" cue, ``#### X``) and wraps every call so that it
never raises and stays in bounds.

Bounded cost. `extract_answer`, `grade` and `canonical_answer` never raise on any str/None
input, and each call returns within ``GRADE_TIME_LIMIT_S`` seconds of wall time on inputs up to
1 MB (typical answers take microseconds), on any thread:

- every built-in extraction path is linear in the text (no regex that can backtrack
  quadratically; ``last_boxed`` matches all braces in one pass);
- a task's own regex runs under the `regex` module's timeout (``_PATTERN_TIMEOUT_S``);
- numbers are parsed only up to ``_MAX_NUMBER_CHARS`` characters and exponents up to
  ``_MAX_EXPONENT`` (`answer_types.numbers`): anything bigger is not a number and compares as a
  normalised string (so ``"1e5000"`` matches ``"1e5000"`` but ``"1e100000000"`` costs nothing);
- math-verify (sympy) runs in a worker process per thread that is killed at a deadline
  (`scoring.mathverify`); inputs known to be slow are refused before that.

The one exception to the bound: a thread's first math-verify call also waits for its worker to
start (importing sympy, about 1 s), so that a slow start never turns into a wrong verdict.
"""

from __future__ import annotations

import logging
import math
import re
import string
from functools import lru_cache

from evalharness.scoring.answer_types import (
    NUMERIC_TYPES,  # noqa: F401 - a public name of the scoring package
    AnswerKind,
    UnknownAnswerType,
    answer_kind,
)
from evalharness.scoring.answer_types.choice import _choice_letter  # noqa: F401 - columns uses it
from evalharness.scoring.mathverify import mv_events  # noqa: F401 - benchmarks read it
from evalharness.scoring.spans import (
    _ANSWER_CUE,
    _clean_span,
    _last,
    _last_hashes,
    _sentence_after,
    last_boxed,
)
from evalharness.types import AnswerType

log = logging.getLogger(__name__)

# The documented worst case of one `extract_answer`, `grade` or `canonical_answer` call (wall
# time, inputs up to 1 MB, any thread; see the module docstring for the worker's start-up).
GRADE_TIME_LIMIT_S = 6.0
# A task regex gets this long (the `regex` module checks its clock coarsely and overshoots by up
# to ~1 s on a loaded machine); the built-in paths after it take well under 1 s even at 1 MB.
_PATTERN_TIMEOUT_S = 1.0


@lru_cache(maxsize=64)
def _unknown(name: str) -> None:
    """Log an unregistered type once per name, not once per record."""
    log.error("%s; its answers count as no answer and not correct", UnknownAnswerType(name))


def _kind(answer_type: object) -> AnswerKind | None:
    try:
        return answer_kind(str(answer_type))
    except UnknownAnswerType:
        _unknown(str(answer_type))
        return None


def extract_answer(
    text: str, answer_type: AnswerType | str = "string", pattern: str | re.Pattern | None = None,
    fallback: bool = False,
) -> str | None:
    """The answer a model gave in `text`, or None when it gave none.

    With a `pattern` (a task's own regex) the pattern is authoritative, as lm-eval's regex
    filter is: its last match (group 1 if it has one group; the first non-empty group if it
    has several, as lm-eval picks), tidied by type; no match, or an empty one, is no answer.
    Only with ``fallback=True`` (a task's explicit `answer_fallback`) does a pattern that
    does not match fall through to the default cascade below.

    Without a pattern (the default cascade), tried in order, the first that matches wins:
    1. the last complete ``\\boxed{...}``;
    2. the last "answer is X" / "answer: X" (up to the end of that sentence or line);
    3. the last ``#### X`` (GSM8K style);
    4. by type (its `AnswerKind.extract`): the last number (integer/number/math), the last
       standalone option letter (choice), or the last non-empty line (string).
    A span found by 1-3 or by the pattern is tidied by type (`AnswerKind.tidy`).
    An answer type that is not registered gives None (logged once per name).
    Never raises: any input that is not a string gives None, and so does a broken `pattern`
    (and a pattern that times out, unless `fallback`).
    Bounded: at most ``GRADE_TIME_LIMIT_S`` seconds for texts up to 1 MB (a task regex gets
    ``_PATTERN_TIMEOUT_S`` of it; without the `regex` module it runs unbounded).
    """
    if not isinstance(text, str) or not text.strip():
        return None
    kind = _kind(answer_type)
    if kind is None:
        return None
    try:
        return _extract(text, kind, pattern, fallback)
    except Exception:  # a bad task regex must not take a whole scoring pass down
        log.exception("answer extraction failed; treating as no answer")
        return None


@lru_cache(maxsize=256)
def _compile_task_pattern(pattern: str | re.Pattern):
    """The task regex compiled with the `regex` module (same syntax as `re`, but its searches
    take a timeout), or with `re` when that module is missing or rejects the pattern."""
    if isinstance(pattern, re.Pattern):
        source, flags = pattern.pattern, pattern.flags
    else:
        source, flags = pattern, 0
    try:
        import regex

        keep = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.LOCALE | re.UNICODE
        rflags = (flags & keep) | (regex.ASCII if flags & re.ASCII else 0)  # ASCII differs
        return regex.compile(source, rflags), True
    except Exception:  # ImportError, or a pattern only `re` reads: keep `re`'s behaviour
        return re.compile(pattern), False


def _last_task_match(pattern: str | re.Pattern, text: str):
    compiled, timed = _compile_task_pattern(pattern)
    try:
        if timed:
            return _last(compiled.finditer(text, timeout=_PATTERN_TIMEOUT_S))
        return _last(compiled.finditer(text))
    except TimeoutError:
        log.warning("task answer regex timed out after %.1f s; no answer (or the default "
                    "extraction, where the task sets answer_fallback)",
                    _PATTERN_TIMEOUT_S)
        return None


def _group(m) -> str:
    """The answer span of a task-regex match: the whole match without groups, group 1 with
    one, and with several the first non-empty one (lm-eval's regex filter picks so)."""
    if not m.re.groups:
        return m.group(0)
    return next((g for g in m.groups() if g), "")


def _extract(text: str, kind: AnswerKind, pattern: str | re.Pattern | None,
             fallback: bool = False) -> str | None:
    if pattern is not None:
        m = _last_task_match(pattern, text)
        span = _tidy(_group(m), kind) if m is not None else None
        if span or not fallback:
            return span or None
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if boxed is not None and (span := _tidy(boxed, kind)):
            return span
    if "nswer" in text or "NSWER" in text:  # cheap pre-check before the regex
        # The last cue, not the last non-overlapping match: in "Final Answer: The final answer
        # is $5$." the answer follows the second cue.
        cue = _last(_ANSWER_CUE.finditer(text))
        found = _sentence_after(text, cue.end()) if cue else None
        if found and (span := _tidy(found, kind)):
            return span
    if "####" in text:
        found = _last_hashes(text)
        if found and (span := _tidy(found, kind)):
            return span
    return kind.extract(text) or None  # by type: the last number, option letter, line, ...


def lm_eval_filter(text: str | None, pattern: str | re.Pattern | None) -> str | None:
    """What lm-eval's first filter pipeline (a ``regex`` filter, then ``take_first``) makes of a
    completion: the pattern's match (its group, the first non-empty of several), stripped; no
    match (lm-eval's ``"[invalid]"``) or an empty one is None. Without a pattern, the whole
    completion (lm-eval's ``none`` filter). Nothing is tidied by type: lm-eval does not."""
    if not isinstance(text, str):
        return None
    if pattern is None:
        return text
    try:
        m = _last_task_match(pattern, text)
    except Exception:  # a bad task regex must not take a whole scoring pass down
        log.exception("answer extraction failed; treating as no answer")
        return None
    span = _group(m).strip() if m is not None else ""
    return span or None


def lm_eval_exact_match(pred: str | None, reference: str | None, settings: dict) -> bool:
    """lm-eval's ``exact_match`` (its HF-evaluate port) on one filtered prediction: the
    settings' ``regexes_to_ignore`` removed from the prediction (the bridge already removed
    them from the reference), then case, punctuation and digits dropped from both where the
    settings say so, then string equality."""
    if pred is None or reference is None:
        return False
    try:
        p, r = str(pred), str(reference)
        for pat in settings.get("regexes_to_ignore") or ():
            p = re.sub(pat, "", p)
        if settings.get("ignore_case"):
            p, r = p.lower(), r.lower()
        if settings.get("ignore_punctuation"):
            table = str.maketrans("", "", string.punctuation)
            p, r = p.translate(table), r.translate(table)
        if settings.get("ignore_numbers"):
            table = str.maketrans("", "", string.digits)
            p, r = p.translate(table), r.translate(table)
        return p == r
    except Exception:
        log.exception("grading failed; counted as not correct")
        return False


def _tidy(span: str, kind: AnswerKind) -> str | None:
    """Post-process an extracted span: strip what surrounds it in prose, then by type (a choice
    span becomes its letter; a numeric span that is prose around a number, its number)."""
    span = _clean_span(span)
    if not span:
        return None
    return kind.tidy(span)


def canonical_answer(pred: str | None, answer_type: AnswerType | str) -> str | None:
    """A key under which equivalent answers collide (for majority voting), or None.

    Numbers map to their exact value (``"1,234.0"`` and ``"1234"`` give the same key); choice
    answers to their letter; strings to their normalised form; LaTeX to a whitespace-free form
    (a number when it is one). Equivalences only math-verify can see are not merged here.
    Never raises; linear in the input (well within ``GRADE_TIME_LIMIT_S`` at 1 MB).
    """
    if pred is None or (isinstance(pred, float) and math.isnan(pred)):
        return None
    kind = _kind(answer_type)
    if kind is None:
        return None
    try:
        return kind.canonical(str(pred))
    except Exception:
        log.exception("canonical_answer failed; treating as no answer")
        return None


def grade(pred: str | None, reference: str, answer_type: AnswerType | str) -> bool:
    """Whether `pred` (an extracted answer) is correct for `reference` (see `grade_verdict`;
    an undecided verdict is not correct)."""
    return grade_verdict(pred, reference, answer_type) is True


def grade_verdict(pred: str | None, reference: str, answer_type: AnswerType | str) -> bool | None:
    """Whether `pred` (an extracted answer) is correct for `reference`, or None when no verdict
    was reached in time (a grading timeout: the scorer counts these beside accuracy).

    - integer/number: exact value after normalisation (commas, ``$``, units, ``.0``, leading
      zeros); "number" also accepts a relative error up to 1e-6;
    - math: normalised string equality, then numeric equality, then math-verify equivalence
      (``\\frac{1}{2}`` = ``0.5`` = ``\\dfrac12``; intervals, sets, tuples);
    - string: normalised exact match; choice: same option letter;
    - any other registered type: its `AnswerKind.equal`; an unregistered one: False (logged).

    Never raises, and returns within ``GRADE_TIME_LIMIT_S`` seconds on any thread (plus, on a
    thread's first math-verify call, its worker's ~1 s start): math-verify runs in a worker
    process, and what it has not decided by ``mathverify._MV_DEADLINE_S`` is undecided (None);
    inputs too long, deep or explosive for sympy (``_mv_refuses``) are not equal.
    """
    if pred is None or reference is None:
        return False
    if isinstance(pred, float) and math.isnan(pred):
        return False
    kind = _kind(answer_type)
    if kind is None:
        return False
    try:
        verdict = kind.equal(str(pred), str(reference))
    except Exception:
        log.exception("grading failed; counted as not correct")
        return False
    return None if verdict is None else bool(verdict)

