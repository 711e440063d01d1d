"""The "integer" and "number" answer types: the last number in the text, compared by exact
value after normalisation (commas, ``$``, units, ``.0``, leading zeros, ``\\frac``); "number"
also accepts a relative error up to 1e-6. The parsing here also serves the "math" type."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from evalharness.scoring.answer_types.registry import AnswerKind
from evalharness.scoring.answer_types.strings import _TEXT_CMD, _norm_string
from evalharness.scoring.spans import _last

NUMERIC_TYPES = frozenset({"integer", "number"})

# Thousands separators only in groups of three, so "3,4" in a list stays two numbers.
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_LETTERS = re.compile(r"[a-df-zA-DF-Z]")  # letters, but not the "e" of 1e3
_FRAC_CMD = re.compile(r"\\[dt]?frac")

_LATEX_NOISE = re.compile(
    r"\\[,;:! ]|\\left|\\right|\{,\}|\\displaystyle|~|\^\s*\{?\\circ\}?|\u00b0"
)
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



def _numbers_equal(a: Fraction, b: Fraction, answer_type: str) -> bool:
    if a == b:
        return True
    # "number" answers may be rounded decimals (0.333333 for 1/3); integers must be exact.
    return answer_type != "integer" and abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


def _last_number(text: str) -> str | None:
    number = _last(_NUMBER.finditer(text))
    return number.group() if number else None


def _tidy_number(span: str) -> str:
    """A span that is prose around a number ("5 (since 2+3=5)") becomes its first number."""
    # "12 + 30 = 42" and "x = 5": the value is on the right of the last "=".
    tail = span.rsplit("=", 1)[1].strip() if "=" in span else span
    tail = tail.removeprefix("\\$").removeprefix("$").strip()
    if _is_numeric(tail) and not _LETTERS.search(_FRAC_CMD.sub("", tail)):
        return tail
    first = _NUMBER.search(tail)
    return first.group() if first else span


def _canonical_number(pred: str) -> str:
    value = _to_number(pred)
    return str(value) if value is not None else _norm_string(pred)


def _equal_numbers(name: str):
    def equal(pred: str, reference: str) -> bool:
        a, b = _to_number(pred), _to_number(reference)
        if a is not None and b is not None:
            return _numbers_equal(a, b, name)
        return _norm_string(pred) == _norm_string(reference)

    return equal


INTEGER = AnswerKind(
    name="integer", extract=_last_number, tidy=_tidy_number, canonical=_canonical_number,
    equal=_equal_numbers("integer"), description="an integer: exact value",
)
NUMBER = AnswerKind(
    name="number", extract=_last_number, tidy=_tidy_number, canonical=_canonical_number,
    equal=_equal_numbers("number"), description="a number: value within a relative 1e-6",
)
