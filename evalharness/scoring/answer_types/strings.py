"""The "string" answer type: the last non-empty line, compared after normalisation (case,
spacing, quotes and end punctuation don't count). Its normal form is also the other types'
last resort when an answer is not of their shape."""

from __future__ import annotations

import re

from evalharness.scoring.answer_types.registry import AnswerKind
from evalharness.scoring.spans import _clean_span

# \text{...} and friends: their content is the answer ("\text{Paris}").
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")


def _norm_string(s: str) -> str:
    """Normalised exact-match form: case, spacing, quotes and end punctuation don't count."""
    t = _TEXT_CMD.sub(r"\1", s)
    t = t.strip().strip("\"'`*").strip().rstrip(".!").strip().lower()
    return " ".join(t.split())


def _last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        if line.strip():
            return _clean_span(line) or None
    return None


def _strings_equal(pred: str, reference: str) -> bool:
    return _norm_string(pred) == _norm_string(reference)


STRING = AnswerKind(
    name="string", extract=_last_line, canonical=_norm_string, equal=_strings_equal,
    description="free text: normalised exact match",
)
