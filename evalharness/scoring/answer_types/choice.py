"""The "choice" answer type: an option letter (A-J), the same letter being correct."""

from __future__ import annotations

import re

from evalharness.scoring.answer_types.registry import AnswerKind
from evalharness.scoring.answer_types.strings import _TEXT_CMD, _norm_string
from evalharness.scoring.spans import _last

# A choice letter standing alone: "(B)", "B)", "B.", "B" at the end; capitals only, so the
# article "a" and the pronoun "I" in running text are not votes.
_CHOICE = re.compile(r"(?:^|[\s(\[*])\(?([A-J])(?:\)|\]|\.|:|,|\*|$)(?=\s|$|[.,;:)*])")


def _choice_letter(s: str) -> str | None:
    """Option letter in "B", "(B)", "b)", "Option B", "B. 42"; None when there is none."""
    t = _TEXT_CMD.sub(r"\1", s).strip().strip("*$").strip()
    t = re.sub(r"^(?:option|choice)\s*", "", t, flags=re.IGNORECASE)
    if len(t) == 1 and t.isalpha():
        return t.upper()
    m = re.match(r"^[(\[]?([A-Za-z])[)\]]?(?:$|[\s.:,)])", t)
    return m.group(1).upper() if m else None


def _last_letter(text: str) -> str | None:
    letter = _last(_CHOICE.finditer(text))
    return letter.group(1) if letter else None


def _tidy_choice(span: str) -> str:
    return _choice_letter(span) or span


def _canonical_choice(pred: str) -> str:
    letter = _choice_letter(pred)
    return letter if letter is not None else _norm_string(pred)


def _equal_choice(pred: str, reference: str) -> bool:
    a, b = _choice_letter(pred), _choice_letter(reference)
    if a is not None and b is not None:
        return a == b
    return _norm_string(pred) == _norm_string(reference)


CHOICE = AnswerKind(
    name="choice", extract=_last_letter, tidy=_tidy_choice, canonical=_canonical_choice,
    equal=_equal_choice, description="an option letter A-J: the same letter",
)
