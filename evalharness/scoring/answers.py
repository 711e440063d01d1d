"""Answer extraction and grading: text in, a prediction and a verdict out (pure functions).

Bounded cost. `extract_answer`, `grade` and `canonical_answer` never raise on any str/None
input, and each call returns within ``GRADE_TIME_LIMIT_S`` seconds of wall time on inputs up to
1 MB (typical answers take microseconds), on any thread:

- every built-in extraction path is linear in the text (no regex that can backtrack
  quadratically; ``last_boxed`` matches all braces in one pass);
- a task's own regex runs under the `regex` module's timeout (``_PATTERN_TIMEOUT_S``);
- numbers are parsed only up to ``_MAX_NUMBER_CHARS`` characters and exponents up to
  ``_MAX_EXPONENT``: anything bigger is not a number and compares as a normalised string
  (so ``"1e5000"`` matches ``"1e5000"`` but ``"1e100000000"`` costs nothing);
- math-verify (sympy) runs in a worker process per thread that is killed at a deadline
  (``_MV_DEADLINE_S``), because neither of the in-process ways to stop it works everywhere:
  SIGALRM only on the main thread, and nothing at all interrupts CPython inside one huge
  integer operation. Inputs known to be slow (deep nesting, numeric power towers, huge
  exponents and factorials) are refused before that, so the deadline is a backstop.

The one exception to the bound: a thread's first math-verify call also waits for its worker to
start (importing sympy, about 1 s; ``_MV_START_LIMIT_S`` at most), so that a slow start never
turns into a wrong verdict.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import selectors
import string
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter, OrderedDict, deque
from fractions import Fraction
from functools import lru_cache

from evalharness.types import AnswerType

log = logging.getLogger(__name__)

NUMERIC_TYPES = frozenset({"integer", "number"})

# The documented worst case of one `extract_answer`, `grade` or `canonical_answer` call (wall
# time, inputs up to 1 MB, any thread; see the module docstring for the worker's start-up).
GRADE_TIME_LIMIT_S = 6.0
# A task regex gets this long (the `regex` module checks its clock coarsely and overshoots by up
# to ~1 s on a loaded machine); the built-in paths after it take well under 1 s even at 1 MB.
_PATTERN_TIMEOUT_S = 1.0
# math-verify's answer must arrive this long after `grade` starts, else its worker is killed;
# the margin to GRADE_TIME_LIMIT_S covers the kill and the (linear) work around it.
_MV_DEADLINE_S = 4.5
# ... not counting, on a thread's first math-verify call, the start of its worker process
# (importing sympy: ~1 s), given up on after this long (then math-verify runs in-process).
_MV_START_LIMIT_S = 60.0

# ---------------------------------------------------------------------------------------------
# Answer extraction
# ---------------------------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# "\boxed 5" (no braces) is legal LaTeX and some models emit it.
_BOXED_BARE = re.compile(r"\\boxed\s+([^\s{$]+)")
_BRACES = re.compile(r"[{}]")
_ANSWER_CUE = re.compile(r"answer\s*(?:is|:)\s*:?", re.IGNORECASE)
_WS = re.compile(r"\s*")
# A sentence-ending period: followed by whitespace or the end of the text (not the one in "3.5").
_PERIOD_END = re.compile(r"\.(?=\s|\Z)")
_LETTERS = re.compile(r"[a-df-zA-DF-Z]")  # letters, but not the "e" of 1e3
_FRAC_CMD = re.compile(r"\\[dt]?frac")
# Thousands separators only in groups of three, so "3,4" in a list stays two numbers.
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
# A choice letter standing alone: "(B)", "B)", "B.", "B" at the end; capitals only, so the
# article "a" and the pronoun "I" in running text are not votes.
_CHOICE = re.compile(r"(?:^|[\s(\[*])\(?([A-J])(?:\)|\]|\.|:|,|\*|$)(?=\s|$|[.,;:)*])")


def _last(matches):
    """The last item of an iterator, or None (the others are not kept)."""
    tail = deque(matches, maxlen=1)
    return tail[0] if tail else None


def _balanced(text: str, start: int) -> str | None:
    """Content from `start` up to the brace that closes the one just before it, or None."""
    depth = 1
    for m in _BRACES.finditer(text, start):
        if m.group() == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return text[start : m.start()]
    return None  # truncated generation: no closing brace


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (nested braces allowed), else None.

    For ``\\boxed{\\boxed{5}}`` the inner box is the last one, so the result is ``5``.
    One pass over the braces (a stack), so 10^4 unclosed boxes cost as much as one: matching
    each box on its own rescans the rest of the text per box, quadratic in the box count.
    """
    boxes = [m.end() - 1 for m in _BOXED.finditer(text)]  # index of each box's "{"
    if boxes:
        is_box, closes, stack = set(boxes), {}, []
        for m in _BRACES.finditer(text, boxes[0]):
            if m.group() == "{":
                stack.append(m.start())
            elif stack:  # a "}" with nothing open is stray: it closes nothing
                opened = stack.pop()
                if opened in is_box:
                    closes[opened] = m.start()
        # A brace is closed by the first "}" at which the depth counted from it returns to 0,
        # whatever came before it: exactly what the stack pairs it with.
        for b in reversed(boxes):
            if b in closes:
                return text[b + 1 : closes[b]]
    bare = _last(_BOXED_BARE.finditer(text))
    return bare.group(1) if bare else None


def _clean_span(span: str) -> str:
    """Strip what surrounds an answer in prose: math delimiters, bold, final punctuation."""
    s = span.strip()
    for _ in range(3):  # a few layers, e.g. "**$5$**."
        before = s
        s = s.strip().rstrip(".;,!").strip().strip("*").strip()  # "**Answer:** 12"
        if s.startswith("$$") and s.endswith("$$") and len(s) >= 4:
            s = s[2:-2]
        elif s.startswith("$") and s.endswith("$") and len(s) >= 2 and s.count("$") == 2:
            s = s[1:-1]
        if s.startswith("\\(") and s.endswith("\\)"):
            s = s[2:-2]
        if s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
        inner = last_boxed(s) if "\\boxed" in s else None
        if inner is not None:
            s = inner
        if s == before:
            break
    return s.strip()


def _sentence_after(text: str, pos: int) -> str | None:
    """The answer span after a cue at `pos`: from the first non-space character to the end of
    its sentence (a period followed by whitespace or the end), its line, or the text; trailing
    spaces excluded. None when only whitespace follows.

    What ``re.compile(r"\\s*(.+?)\\s*(?:\\.\\s|\\.?$|\\n)", re.M).match(text, pos)`` gives (the
    earlier implementation), in linear time: that regex re-scans every whitespace run once per
    character of the lazy group before it, which is quadratic in a long run of spaces.
    """
    start = _WS.match(text, pos).end()
    if start == len(text):
        return None  # the regex's group would be whitespace, which tidies to nothing
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    # The group ends at the first of: the whitespace before a sentence-ending period, the
    # line's trailing whitespace, the end of the line. It is never empty.
    stop = line_end
    period = _PERIOD_END.search(text, start + 1, line_end)
    if period is not None:
        stop = period.start()
    end = start + len(text[start:stop].rstrip())
    return text[start:end]


def _last_hashes(text: str) -> str | None:
    """The last ``#### X`` answer (GSM8K style): X runs to the end of its line, trailing spaces
    excluded. What ``re.findall(r"####\\s*(.+?)\\s*$", text, re.M)[-1]`` gives (the earlier
    implementation), in linear time (that regex is quadratic in a long run of spaces)."""
    last, pos, n = None, 0, len(text)
    while (i := text.find("####", pos)) >= 0:
        start = _WS.match(text, i + 4).end()  # \s* may cross newlines, as in the regex
        if start == n:  # only whitespace follows
            if text[i + 4 :].strip("\n"):
                last = " "  # the regex matches a whitespace group here (it tidies to nothing)
            break  # (only newlines: no match at all, the previous one stands)
        line_end = text.find("\n", start)
        if line_end < 0:
            line_end = n
        last = text[start : start + len(text[start:line_end].rstrip())]
        pos = line_end  # what the regex consumed beyond this is whitespace: no "####" in it
    return last


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
    4. by type: the last number (integer/number/math), the last standalone option letter
       (choice), or the last non-empty line (string).
    Never raises: any input that is not a string gives None, and so does a broken `pattern`
    (and a pattern that times out, unless `fallback`).
    Bounded: at most ``GRADE_TIME_LIMIT_S`` seconds for texts up to 1 MB (a task regex gets
    ``_PATTERN_TIMEOUT_S`` of it; without the `regex` module it runs unbounded).
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return _extract(text, str(answer_type), pattern, fallback)
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
                    _PATTERN_TIMEOUT_S)  # fmt: skip
        return None


def _group(m) -> str:
    """The answer span of a task-regex match: the whole match without groups, group 1 with
    one, and with several the first non-empty one (lm-eval's regex filter picks so)."""
    if not m.re.groups:
        return m.group(0)
    return next((g for g in m.groups() if g), "")


def _extract(text: str, answer_type: str, pattern: str | re.Pattern | None,
             fallback: bool = False) -> str | None:
    if pattern is not None:
        m = _last_task_match(pattern, text)
        span = _tidy(_group(m), answer_type) if m is not None else None
        if span or not fallback:
            return span or None
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if boxed is not None and (span := _tidy(boxed, answer_type)):
            return span
    if "nswer" in text or "NSWER" in text:  # cheap pre-check before the regex
        # The last cue, not the last non-overlapping match: in "Final Answer: The final answer
        # is $5$." the answer follows the second cue.
        cue = _last(_ANSWER_CUE.finditer(text))
        found = _sentence_after(text, cue.end()) if cue else None
        if found and (span := _tidy(found, answer_type)):
            return span
    if "####" in text:
        found = _last_hashes(text)
        if found and (span := _tidy(found, answer_type)):
            return span
    if answer_type == "choice":
        letter = _last(_CHOICE.finditer(text))
        return letter.group(1) if letter else None
    if answer_type == "string":
        for line in reversed(text.splitlines()):
            if line.strip():
                return _clean_span(line) or None
        return None
    number = _last(_NUMBER.finditer(text))
    return number.group() if number else None


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


def _tidy(span: str, answer_type: str) -> str | None:
    """Post-process an extracted span by type: a choice span becomes its letter; a numeric
    span that is prose around a number ("5 (since 2+3=5)") becomes its first number."""
    span = _clean_span(span)
    if not span:
        return None
    if answer_type == "choice":
        return _choice_letter(span) or span
    if answer_type in NUMERIC_TYPES:
        # "12 + 30 = 42" and "x = 5": the value is on the right of the last "=".
        tail = span.rsplit("=", 1)[1].strip() if "=" in span else span
        tail = tail.removeprefix("\\$").removeprefix("$").strip()
        if _is_numeric(tail) and not _LETTERS.search(_FRAC_CMD.sub("", tail)):
            return tail
        first = _NUMBER.search(tail)
        return first.group() if first else span
    return span


# ---------------------------------------------------------------------------------------------
# Normalisation and graders
# ---------------------------------------------------------------------------------------------

_LATEX_NOISE = re.compile(
    r"\\[,;:! ]|\\left|\\right|\{,\}|\\displaystyle|~|\^\s*\{?\\circ\}?|\u00b0"
)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}$")
_FRAC_SHORT = re.compile(r"^(-?)\\[dt]?frac\s*(\d)\s*(\d)$")  # \dfrac12
# "\d+(?:\.\d*)?" rather than "\d+\.?\d*": the same strings, but the latter backtracks
# quadratically on a long digit run that then fails ("111...1a").
_NUM_CORE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?(?:/\d+)?$", re.IGNORECASE)
_EXPONENT = re.compile(r"e([-+]?\d+)", re.IGNORECASE)
_RATIO = re.compile(r"[-+]?\d+/\d+$")
# Unit words / currency / percent that may trail or lead a number ("72 dollars", "$5", "5%").
_UNITS = re.compile(r"^(.*?\d\.?)\s*(?:%|[a-zA-Z][a-zA-Z. ]*)$")
# Longer strings, and exponents beyond this, are not numbers: they compare as strings. The caps
# keep every integer below Python's 4,300-digit str/int conversion limit and every Fraction
# cheap (1e100000000 would be an exact integer of 10^8 digits).
_MAX_NUMBER_CHARS = 1000
_MAX_EXPONENT = 1000


def _numeric_form(s: str) -> str | tuple[str, str, str] | None:
    """The number `s` is written as, or None: its core ("1234.5", "3/4", "1e3") or a
    ``\\frac``'s (sign, numerator, denominator). Syntax only, nothing is evaluated, so it is
    cheap (linear) on any input; the forms Fraction rejects ("1.5/2", a zero denominator) are
    None here too."""
    t = _TEXT_CMD.sub(r" \1", s)
    t = _LATEX_NOISE.sub("", t).replace("\\$", "").replace("$", "").replace("\\%", "%")
    t = t.replace("\u2212", "-").strip().rstrip(".").strip()
    if "=" in t:  # "x = 5": the value is on the right
        t = t.rsplit("=", 1)[1].strip()
    m = _FRAC.match(t) or _FRAC_SHORT.match(t)
    if m:
        return m.groups() if m.group(3).lstrip("-").strip("0") else None
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t).replace(" ", "")
    m = _UNITS.match(t)
    if m and not _NUM_CORE.match(t):
        t = m.group(1)
    t = t.rstrip(".")
    if not _NUM_CORE.match(t):
        return None
    if "/" in t and not (_RATIO.match(t) and t.rsplit("/", 1)[1].strip("0")):
        return None  # Fraction takes "a/b" of integers only, and b != 0
    return t


def _is_numeric(s: str) -> bool:
    """Whether `s` is written as a number, of any size ("1e100000000" is one)."""
    return (_cached_form(s) if len(s) <= _MAX_NUMBER_CHARS else _numeric_form(s)) is not None


@lru_cache(maxsize=1 << 16)  # references and common answers recur across many records
def _cached_form(s: str) -> str | tuple[str, str, str] | None:
    return _numeric_form(s)


def _to_number(s: str | None) -> Fraction | None:
    """Exact value of a numeric answer string, tolerant of the ways people write numbers.

    Accepts commas as thousands separators, ``$``/``\\$``, ``%``, trailing unit words,
    ``x = 5``, leading zeros, trailing ``.0``, ``3/4`` and ``\\frac{3}{4}``. Fractions keep it
    exact, so 16-digit integers compare exactly (floats would not). Strings longer than
    ``_MAX_NUMBER_CHARS`` or with an exponent beyond ``_MAX_EXPONENT`` have no value here.
    """
    if s is None or len(s) > _MAX_NUMBER_CHARS:  # (and no 1 MB keys in the cache)
        return None
    return _value(s)


@lru_cache(maxsize=1 << 16)
def _value(s: str) -> Fraction | None:
    form = _cached_form(s)
    if form is None:
        return None
    if isinstance(form, tuple):  # digit runs of at most _MAX_NUMBER_CHARS: int() is safe
        sign, num, den = form
        return Fraction(int(num), int(den)) * (-1 if sign else 1)
    exponent = _EXPONENT.search(form)
    if exponent and abs(int(exponent.group(1))) > _MAX_EXPONENT:
        return None
    return Fraction(form)


def _norm_string(s: str) -> str:
    """Normalised exact-match form: case, spacing, quotes and end punctuation don't count."""
    t = _TEXT_CMD.sub(r"\1", s)
    t = t.strip().strip("\"'`*").strip().rstrip(".!").strip().lower()
    return " ".join(t.split())


def _choice_letter(s: str) -> str | None:
    """Option letter in "B", "(B)", "b)", "Option B", "B. 42"; None when there is none."""
    t = _TEXT_CMD.sub(r"\1", s).strip().strip("*$").strip()
    t = re.sub(r"^(?:option|choice)\s*", "", t, flags=re.IGNORECASE)
    if len(t) == 1 and t.isalpha():
        return t.upper()
    m = re.match(r"^[(\[]?([A-Za-z])[)\]]?(?:$|[\s.:,)])", t)
    return m.group(1).upper() if m else None


def _norm_latex(s: str) -> str:
    """Cheap LaTeX canonical form for the string fast path before math-verify."""
    t = _LATEX_NOISE.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    t = t.replace("$", "").rstrip(".").strip()
    return "".join(t.split())


def canonical_answer(pred: str | None, answer_type: AnswerType | str) -> str | None:
    """A key under which equivalent answers collide (for majority voting), or None.

    Numbers map to their exact value (``"1,234.0"`` and ``"1234"`` give the same key); choice
    answers to their letter; strings to their normalised form; LaTeX to a whitespace-free form
    (a number when it is one). Equivalences only math-verify can see are not merged here.
    Never raises; linear in the input (well within ``GRADE_TIME_LIMIT_S`` at 1 MB).
    """
    try:
        return _canonical(pred, answer_type)
    except Exception:
        log.exception("canonical_answer failed; treating as no answer")
        return None


def _canonical(pred: str | None, answer_type: AnswerType | str) -> str | None:
    if pred is None or (isinstance(pred, float) and math.isnan(pred)):
        return None
    pred = str(pred)
    if answer_type in NUMERIC_TYPES or answer_type == "math":
        value = _to_number(pred)
        if value is not None:
            return str(value)
        return _norm_latex(pred) if answer_type == "math" else _norm_string(pred)
    if answer_type == "choice":
        letter = _choice_letter(pred)
        return letter if letter is not None else _norm_string(pred)
    return _norm_string(pred)


# ---------------------------------------------------------------------------------------------
# math-verify, bounded
# ---------------------------------------------------------------------------------------------

_MV_MAX_CHARS = 400  # longer "answers" are prose, not maths; don't hand them to sympy
# Measured (math-verify 0.9, sympy 1.14): its LaTeX parser is exponential in bracket nesting
# (depth 8: 0.8 s, 10: 1.6 s, 20: minutes), and sympy evaluates integer powers and factorials
# exactly ("9^{9^{9}}", "10^{100000000}", "10000000!" never finish), expands "(x+1)^{1000}" for
# seconds, and never finishes "95E821541433" (an exponent of 9 digits; "1e5000" takes 0.1 s).
# Such inputs are refused up front: they could only ever end at the deadline.
_MV_MAX_DEPTH = 6
_MV_MAX_EXPONENT_DIGITS = 3
_MV_BIG_E = re.compile(r"\d\.?\s*e\s*[-+]?\s*\d{5,}", re.IGNORECASE)
_MV_NUMERIC_POWER = re.compile(r"\d\s*\}?\s*\^\s*\{?\s*[-+]?\d")  # 9^{9 in 9^{9^{9}}
_MV_BIG_INT = re.compile(r"\d{4,}")
_MV_FACTORIAL_OF_GROUP = re.compile(r"[)\]}]\s*!")
_MV_COMPUTED = re.compile(r"\^|\d{3}|\*|\\cdot|\\times")  # what makes "(...)!" huge


def _mv_refuses(text: str) -> bool:
    """Whether `text` is too long, deep or explosive to hand to math-verify (see above)."""
    if len(text) > _MV_MAX_CHARS:
        return True
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}" and depth:
            depth -= 1
    if deepest > _MV_MAX_DEPTH or _MV_BIG_E.search(text):
        return True
    if ("!" in text or "binom" in text or "choose" in text) and (
        _MV_BIG_INT.search(text)  # 9999!!, \binom{99999}{50000}
        or (_MV_FACTORIAL_OF_GROUP.search(text) and _MV_COMPUTED.search(text))  # (10^{9})!
    ):
        return True
    i = text.find("^")
    while i >= 0:
        j = i + 1
        while j < len(text) and text[j].isspace():
            j += 1
        if j < len(text) and text[j] == "{":
            inner = _balanced(text, j + 1)
            exponent = inner if inner is not None else text[j + 1 :]
            j += len(exponent) + 2
        elif j < len(text) and text[j] == "\\":
            m = re.match(r"\\[a-zA-Z]+|\\.", text[j:])
            exponent = m.group() if m else "\\"
            j += len(exponent)
        else:
            exponent = text[j : j + 1]
            j += 1
        digits = sum(ch.isdigit() for ch in exponent)
        if digits > _MV_MAX_EXPONENT_DIGITS or _MV_NUMERIC_POWER.search(exponent):
            return True  # a big exponent, or a numeric tower such as 9^{9^{9}} (not 2^{2^{x}})
        while j < len(text) and text[j].isspace():
            j += 1
        if j < len(text) and text[j] == "^":
            return True  # a double superscript "x^x^x...": LaTeX error, sympy tower
        i = text.find("^", i + 1)
    return False


# In-worker limits: math-verify's own SIGALRM timeouts (whole seconds; the worker runs them on
# its main thread, where they work) stop the usual slow cases without losing the worker; the
# parent's deadline kills it for the rest (C-level big-integer work that no signal interrupts).
_MV_PARSE_TIMEOUT_S = 1
_MV_VERIFY_TIMEOUT_S = 2  # per comparison; typically one is slow at most (1 + 1 + 2 < 4.5)
# Run as ``python -c``: stdlib and math_verify only, nothing of this package, so it starts in
# about a second. One JSON request per line in ([id, pred, reference]), one answer per line out.
_MV_WORKER_SOURCE = f"""
import functools, json, logging, sys
out = sys.stdout.buffer
try:
    from math_verify import parse, verify
except Exception as e:
    out.write(json.dumps({{"ready": False, "error": repr(e)}}).encode() + b"\\n")
    out.flush()
    raise SystemExit(0)
logging.disable(logging.CRITICAL)  # math-verify logs every timeout
try:
    import resource
except ImportError:
    resource = None

def cpu_guard():
    # An orphan stuck in C code (parent gone) must still end: CPU limit per request.
    if resource is None:
        return
    try:
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        new = int(used.ru_utime + used.ru_stime) + 60
        if hard == resource.RLIM_INFINITY or new <= hard:
            resource.setrlimit(resource.RLIMIT_CPU, (new, hard))
    except Exception:
        pass

@functools.lru_cache(maxsize=1 << 14)
def parsed(text):
    try:
        return tuple(parse("$" + text + "$", parsing_timeout={_MV_PARSE_TIMEOUT_S}))
    except BaseException:  # math_verify's TimeoutException is a BaseException
        return ()

out.write(b'{{"ready": true}}\\n')
out.flush()
for line in sys.stdin.buffer:
    try:
        rid, pred, ref = json.loads(line)
    except Exception:
        continue
    cpu_guard()
    ok = False
    try:
        gold, target = parsed(ref), parsed(pred)
        if gold and target:
            ok = bool(verify(list(gold), list(target), timeout_seconds={_MV_VERIFY_TIMEOUT_S}))
    except BaseException:
        ok = False
    out.write(json.dumps([rid, ok]).encode() + b"\\n")
    out.flush()
"""


def _kill(proc: subprocess.Popen, owner: int) -> None:
    if os.getpid() != owner:  # a forked child must not kill its parent's worker
        return
    try:
        proc.kill()
        proc.wait(timeout=1)
    except Exception:
        pass


class _MVWorker:
    """One math-verify process, used by one thread at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _MV_WORKER_SOURCE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, close_fds=True,
        )  # fmt: skip
        self.started = time.monotonic()
        mv_events["started"] += 1
        self.ready = False
        self.buf = b""
        self.next_id = 0
        self.selector = selectors.DefaultSelector()  # not select(): fds above 1024 are fine
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._finalizer = weakref.finalize(self, _kill, self.proc, os.getpid())

    def close(self) -> None:
        self._finalizer()
        self.selector.close()

    def _line(self, deadline: float) -> bytes | None:
        """The next line from the worker, or None if none came before `deadline`."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("math-verify worker exited")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def wait_ready(self) -> float:
        """Wait for the worker's start-up (importing sympy, ~1 s); returns the seconds waited.
        Raises RuntimeError if it cannot start here."""
        if self.ready:
            return 0.0
        t0 = time.monotonic()
        try:
            line = self._line(self.started + _MV_START_LIMIT_S)
        except EOFError:
            raise RuntimeError("math-verify worker exited on start") from None
        if line is None:
            raise RuntimeError(f"math-verify worker not ready after {_MV_START_LIMIT_S:.0f} s")
        status = json.loads(line)
        if not status.get("ready"):
            raise RuntimeError(f"math-verify unavailable in worker: {status.get('error')}")
        self.ready = True
        return time.monotonic() - t0

    def ask(self, pred: str, reference: str, deadline: float) -> bool:
        """math-verify's verdict; TimeoutError (worker killed) when none came by `deadline`."""
        self.next_id += 1
        rid = self.next_id
        request = memoryview(json.dumps([rid, pred, reference]).encode() + b"\n")
        while request:  # a few kB into an empty pipe: never blocks
            request = request[os.write(self.proc.stdin.fileno(), request) :]
        while True:
            line = self._line(deadline)
            if line is None:
                self.close()  # stuck, maybe in C code no signal reaches: only a kill ends it
                raise TimeoutError
            answer_id, ok = json.loads(line)
            if answer_id == rid:
                return bool(ok)


_workers = threading.local()  # one worker per thread: no queueing behind another thread's call
# Workers started, killed at the deadline, found dead (for benchmarks and logs).
mv_events: Counter[str] = Counter()
_MV_CACHE: OrderedDict[tuple[str, str], bool] = OrderedDict()
_MV_CACHE_SIZE = 1 << 16
_mv_lock = threading.Lock()
_worker_broken = False  # no worker could start here: math-verify runs in-process instead


def _forget_workers() -> None:  # in a forked child: the parent's workers are not ours
    global _workers
    _workers = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def _worker_verdict(pred: str, reference: str, deadline: float) -> bool:
    """This thread's worker's verdict by `deadline` (extended by the worker's start-up, if it
    had to start); False when it had none by then. Raises RuntimeError if none can start."""
    worker = getattr(_workers, "worker", None)
    if worker is None or worker.proc.poll() is not None:
        worker = _workers.worker = _MVWorker()
    try:
        deadline += worker.wait_ready()  # a one-off per worker, not the input's fault
    except Exception:
        worker.close()
        _workers.worker = None
        raise
    try:
        return worker.ask(pred, reference, deadline)
    except TimeoutError:
        mv_events["killed"] += 1
        log.warning("math-verify took over %.1f s; counted as not equal: %.60r vs %.60r",
                    _MV_DEADLINE_S, pred, reference)  # fmt: skip
        _workers.worker = _MVWorker()  # start the next one now: it loads while we go on
        return False
    except (OSError, EOFError, ValueError):  # it died (out of memory, say): a fresh one next
        mv_events["died"] += 1
        worker.close()
        _workers.worker = None
        return False


def _math_verify(pred: str, reference: str, deadline: float | None = None) -> bool:
    """Whether math-verify shows `pred` equal to `reference`, by `deadline` (monotonic time;
    default ``_MV_DEADLINE_S`` from now). Refused inputs and errors count as not equal."""
    global _worker_broken
    if _mv_refuses(pred) or _mv_refuses(reference):
        return False
    key = (pred, reference)
    with _mv_lock:
        if key in _MV_CACHE:
            _MV_CACHE.move_to_end(key)
            return _MV_CACHE[key]
    if deadline is None:
        deadline = time.monotonic() + _MV_DEADLINE_S
    verdict = None
    if not _worker_broken:
        try:
            verdict = _worker_verdict(pred, reference, deadline)
        except Exception:
            log.warning("math-verify worker unavailable; running it in-process (bounded only "
                        "on the main thread)", exc_info=True)  # fmt: skip
            _worker_broken = True
    if verdict is None:
        verdict = _math_verify_in_process(pred, reference)
    with _mv_lock:
        _MV_CACHE[key] = verdict
        if len(_MV_CACHE) > _MV_CACHE_SIZE:
            _MV_CACHE.popitem(last=False)
    return verdict


def _mv_timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which only the main thread may set; elsewhere the
    library raises, so off the main thread we disable them (the in-process fallback only)."""
    return 1 if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=1 << 16)
def _mv_parse(text: str, timeout: int | None) -> tuple:
    """math-verify's parse, cached: sympy parsing costs 10-100 ms, and the same reference (and
    many predictions) recur across samples and budgets."""
    from math_verify import parse  # imported lazily: it pulls in sympy (~1 s)

    try:
        # Wrapped in $...$ so the LaTeX extractor (not the plain-expression one) reads it:
        # bare "\dfrac12" or "(0,1]" parse to nothing or to the wrong object otherwise.
        return tuple(parse(f"${text}$", parsing_timeout=timeout))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # sympy raises nearly anything on odd input; math-verify's timeout
        return ()  # is a BaseException: unparsable either way


def _math_verify_in_process(pred: str, reference: str) -> bool:
    """Fallback where no worker process can be started (inputs already screened)."""
    try:
        from math_verify import verify

        t = _mv_timeout()
        gold, target = _mv_parse(reference, t), _mv_parse(pred, t)
        if not gold or not target:
            return False
        return bool(verify(list(gold), list(target), timeout_seconds=t))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # an error or a timeout in comparison means "not shown equal"
        return False


def _numbers_equal(a: Fraction, b: Fraction, answer_type: str) -> bool:
    if a == b:
        return True
    # "number" answers may be rounded decimals (0.333333 for 1/3); integers must be exact.
    return answer_type != "integer" and abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


def grade(pred: str | None, reference: str, answer_type: AnswerType | str) -> bool:
    """Whether `pred` (an extracted answer) is correct for `reference`.

    - integer/number: exact value after normalisation (commas, ``$``, units, ``.0``, leading
      zeros); "number" also accepts a relative error up to 1e-6;
    - math: normalised string equality, then numeric equality, then math-verify equivalence
      (``\\frac{1}{2}`` = ``0.5`` = ``\\dfrac12``; intervals, sets, tuples);
    - string: normalised exact match; choice: same option letter.

    Never raises, and returns within ``GRADE_TIME_LIMIT_S`` seconds on any thread (plus, on a
    thread's first math-verify call, its worker's ~1 s start): math-verify runs in a worker
    process, and what it has not shown equal by ``_MV_DEADLINE_S`` counts as not equal, as do
    inputs too long, deep or explosive for sympy (``_mv_refuses``).
    """
    deadline = time.monotonic() + _MV_DEADLINE_S
    try:
        return _grade(pred, reference, answer_type, deadline)
    except Exception:
        log.exception("grading failed; counted as not correct")
        return False


def _grade(pred: str | None, reference: str, answer_type: str, deadline: float) -> bool:
    if pred is None or reference is None:
        return False
    if isinstance(pred, float) and math.isnan(pred):
        return False
    pred, reference = str(pred), str(reference)
    if answer_type in NUMERIC_TYPES:
        a, b = _to_number(pred), _to_number(reference)
        if a is not None and b is not None:
            return _numbers_equal(a, b, str(answer_type))
        return _norm_string(pred) == _norm_string(reference)
    if answer_type == "math":
        if _norm_latex(pred) == _norm_latex(reference):
            return True
        a, b = _to_number(pred), _to_number(reference)
        if a is not None and b is not None:
            return _numbers_equal(a, b, "number")
        return _math_verify(pred, reference, deadline)
    if answer_type == "choice":
        a, b = _choice_letter(pred), _choice_letter(reference)
        if a is not None and b is not None:
            return a == b
        return _norm_string(pred) == _norm_string(reference)
    return _norm_string(pred) == _norm_string(reference)
