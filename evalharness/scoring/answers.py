"""Answer extraction and grading: text in, a prediction and a verdict out (pure functions)."""

from __future__ import annotations

import logging
import math
import re
import threading
from fractions import Fraction
from functools import lru_cache

from evalharness.types import AnswerType

log = logging.getLogger(__name__)

NUMERIC_TYPES = frozenset({"integer", "number"})

# ---------------------------------------------------------------------------------------------
# Answer extraction
# ---------------------------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# "\boxed 5" (no braces) is legal LaTeX and some models emit it.
_BOXED_BARE = re.compile(r"\\boxed\s+([^\s{$]+)")
# Non-greedy up to a sentence end: a period followed by space/end (not the one in "3.5"),
# a newline, or the end of the text.
_ANSWER_CUE = re.compile(r"answer\s*(?:is|:)\s*:?", re.IGNORECASE)
_SENTENCE = re.compile(r"\s*(.+?)\s*(?:\.\s|\.?$|\n)", re.MULTILINE)
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
# Thousands separators only in groups of three, so "3,4" in a list stays two numbers.
_LETTERS = re.compile(r"[a-df-zA-DF-Z]")  # letters, but not the "e" of 1e3
_FRAC_CMD = re.compile(r"\\[dt]?frac")
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
# A choice letter standing alone: "(B)", "B)", "B.", "B" at the end; capitals only, so the
# article "a" and the pronoun "I" in running text are not votes.
_CHOICE = re.compile(r"(?:^|[\s(\[*])\(?([A-J])(?:\)|\]|\.|:|,|\*|$)(?=\s|$|[.,;:)*])")


def _balanced(text: str, start: int) -> str | None:
    """Content from `start` up to the brace that closes the one just before it, or None."""
    depth = 1
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None  # truncated generation: no closing brace


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (nested braces allowed), else None.

    For ``\\boxed{\\boxed{5}}`` the inner box is the last one, so the result is ``5``.
    """
    for m in reversed(list(_BOXED.finditer(text))):
        content = _balanced(text, m.end())
        if content is not None:
            return content
    bare = _BOXED_BARE.findall(text)
    return bare[-1] if bare else None


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


def extract_answer(
    text: str, answer_type: AnswerType | str = "string", pattern: str | re.Pattern | None = None
) -> str | None:
    """The answer a model gave in `text`, or None when it gave none.

    Tried in order, the first that matches wins:
    1. `pattern` (a task's own regex): its last match, group 1 if it has groups;
    2. the last complete ``\\boxed{...}``;
    3. the last "answer is X" / "answer: X" (up to the end of that sentence or line);
    4. the last ``#### X`` (GSM8K style);
    5. by type: the last number (integer/number/math), the last standalone option letter
       (choice), or the last non-empty line (string).
    Never raises: any input that is not a string gives None.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return _extract(text, str(answer_type), pattern)
    except Exception:  # a bad task regex must not take a whole scoring pass down
        log.exception("answer extraction failed; treating as no answer")
        return None


def _extract(text: str, answer_type: str, pattern: str | re.Pattern | None) -> str | None:
    if pattern is not None:
        matches = list(re.finditer(pattern, text))
        if matches:
            m = matches[-1]
            span = _tidy(m.group(1) if m.re.groups else m.group(0), answer_type)
            if span:
                return span
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if boxed is not None and (span := _tidy(boxed, answer_type)):
            return span
    if "nswer" in text or "NSWER" in text:  # cheap pre-check before the regex
        # The last cue, not the last non-overlapping match: in "Final Answer: The final answer
        # is $5$." the answer follows the second cue.
        cues = list(_ANSWER_CUE.finditer(text))
        found = _SENTENCE.match(text, cues[-1].end()) if cues else None
        if found and (span := _tidy(found.group(1), answer_type)):
            return span
    if "####" in text:
        found = _HASHES.findall(text)
        if found and (span := _tidy(found[-1], answer_type)):
            return span
    if answer_type == "choice":
        letters = _CHOICE.findall(text)
        return letters[-1] if letters else None
    if answer_type == "string":
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return _clean_span(lines[-1]) or None
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


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
        if _to_number(tail) is not None and not _LETTERS.search(_FRAC_CMD.sub("", tail)):
            return tail
        numbers = _NUMBER.findall(tail)
        return numbers[0] if numbers else span
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
_NUM_CORE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?:/\d+)?$", re.IGNORECASE)
# Unit words / currency / percent that may trail or lead a number ("72 dollars", "$5", "5%").
_UNITS = re.compile(r"^(.*?\d\.?)\s*(?:%|[a-zA-Z][a-zA-Z. ]*)$")


@lru_cache(maxsize=1 << 16)  # references and common answers recur across many records
def _to_number(s: str | None) -> Fraction | None:
    """Exact value of a numeric answer string, tolerant of the ways people write numbers.

    Accepts commas as thousands separators, ``$``/``\\$``, ``%``, trailing unit words,
    ``x = 5``, leading zeros, trailing ``.0``, ``3/4`` and ``\\frac{3}{4}``. Fractions keep it
    exact, so 16-digit integers compare exactly (floats would not).
    """
    if s is None:
        return None
    t = _TEXT_CMD.sub(r" \1", s)
    t = _LATEX_NOISE.sub("", t).replace("\\$", "").replace("$", "").replace("\\%", "%")
    t = t.replace("\u2212", "-").strip().rstrip(".").strip()
    if "=" in t:  # "x = 5": the value is on the right
        t = t.rsplit("=", 1)[1].strip()
    m = _FRAC.match(t) or _FRAC_SHORT.match(t)
    if m:
        sign, num, den = m.groups()
        return None if int(den) == 0 else Fraction(int(num), int(den)) * (-1 if sign else 1)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t).replace(" ", "")
    m = _UNITS.match(t)
    if m and not _NUM_CORE.match(t):
        t = m.group(1)
    t = t.rstrip(".")
    if not _NUM_CORE.match(t):
        return None
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


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
    """
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


def _mv_timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which only the main thread may set; elsewhere the
    library raises, so off the main thread we disable them (inputs are short extracted answers,
    capped in length, so a runaway parse is unlikely)."""
    return 5 if threading.current_thread() is threading.main_thread() else None


_MV_MAX_CHARS = 400  # longer "answers" are prose, not maths; don't hand them to sympy


@lru_cache(maxsize=1 << 16)
def _mv_parse(text: str, timeout: int | None) -> tuple:
    """math-verify's parse, cached: sympy parsing costs 10-100 ms, and the same reference (and
    many predictions) recur across samples and budgets."""
    from math_verify import parse  # imported lazily: it pulls in sympy (~1 s)

    try:
        # Wrapped in $...$ so the LaTeX extractor (not the plain-expression one) reads it:
        # bare "\dfrac12" or "(0,1]" parse to nothing or to the wrong object otherwise.
        return tuple(parse(f"${text}$", parsing_timeout=timeout))
    except Exception:  # sympy can raise nearly anything on odd input: unparsable
        return ()


def _math_verify(pred: str, reference: str) -> bool:
    from math_verify import verify

    if len(pred) > _MV_MAX_CHARS or len(reference) > _MV_MAX_CHARS:
        return False
    t = _mv_timeout()
    gold, target = _mv_parse(reference, t), _mv_parse(pred, t)
    if not gold or not target:
        return False
    try:
        return bool(verify(list(gold), list(target), timeout_seconds=t))
    except Exception:  # as above: an error in comparison means "not shown equal"
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
    """
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
        return _math_verify(pred, reference)
    if answer_type == "choice":
        a, b = _choice_letter(pred), _choice_letter(reference)
        if a is not None and b is not None:
            return a == b
        return _norm_string(pred) == _norm_string(reference)
    return _norm_string(pred) == _norm_string(reference)


