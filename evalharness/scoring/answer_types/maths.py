"""The "math" answer type: LaTeX answers (the last number when none is marked), equal when
their normalised forms are, when their values are (within a relative 1e-6), or when
math-verify shows them equivalent (``\\frac{1}{2}`` = ``0.5``; intervals, sets, tuples)."""

from __future__ import annotations

from evalharness.scoring import mathverify
from evalharness.scoring.answer_types.numbers import (
    _LATEX_NOISE,
    _last_number,
    _numbers_equal,
    _to_number,
)
from evalharness.scoring.answer_types.registry import AnswerKind


def _norm_latex(s: str) -> str:
    """Cheap LaTeX canonical form for the string fast path before math-verify."""
    t = _LATEX_NOISE.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    t = t.replace("$", "").rstrip(".").strip()
    return "".join(t.split())


def _canonical_math(pred: str) -> str:
    # Equivalences only math-verify can see are not merged here: keys must stay cheap.
    value = _to_number(pred)
    return str(value) if value is not None else _norm_latex(pred)


def _equal_math(pred: str, reference: str) -> bool | None:
    if _norm_latex(pred) == _norm_latex(reference):
        return True
    a, b = _to_number(pred), _to_number(reference)
    if a is not None and b is not None:
        return _numbers_equal(a, b, "number")
    # Its deadline starts now: the work above is linear, and inputs longer than math-verify
    # takes are refused before any wait, so a call still ends within GRADE_TIME_LIMIT_S.
    return mathverify._math_verify(pred, reference)


MATH = AnswerKind(
    name="math", extract=_last_number, canonical=_canonical_math, equal=_equal_math,
    description="a LaTeX expression: normalised, numeric or math-verify equivalence",
)
