"""What every task loader returns (:class:`Task`), the one error it raises, and the named answer
normalisers a task YAML can pick (``normalize: <name>``)."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from evalharness.types import Problem

# Option letters of multiple-choice problems: the reference is one of these, the option at
# index i has letter CHOICE_LETTERS[i] (the scorer's choice pattern reads A-J).
CHOICE_LETTERS = string.ascii_uppercase[:10]


def __getattr__(name: str) -> Any:
    # ANSWER_TYPES, the registered answer types (always current), comes from the scoring
    # package, which imports pandas: loaded on first use, so that listing tasks stays quick.
    if name == "ANSWER_TYPES":
        from evalharness.scoring.answer_types import ANSWER_TYPES

        return ANSWER_TYPES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TaskLoadError(RuntimeError):
    """A task could not be found or its data could not be loaded (message is one line)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class Task:
    name: str
    problems: tuple[Problem, ...]
    answer_type: str
    default_budgets: tuple[int, ...]
    max_answer_tokens: int
    max_thinking_tokens: int
    description: str = ""
    # few-shot (user turn, assistant turn) pairs, formatted; the prompt builder puts them before
    # each Problem.prompt (chat turns, or concatenated). Empty when zero-shot.
    few_shot: tuple[tuple[str, str], ...] = ()
    system_prompt: str | None = None
    # optional extraction regex for completions (group 1 if the pattern has groups, else match);
    # authoritative: no match is no answer, unless answer_fallback opts into the default cascade
    answer_regex: str | None = None
    source: str = ""  # where the rows came from (file path or hub id), for the run manifest
    # sha256 of the data's content, every row before any limit (`data_sha256`): the run id's
    # identity of the data, the same from any path
    data_sha: str = ""
    answer_fallback: bool = False
    # lm-eval's exact_match settings, for bridged tasks graded as lm-eval grades (TaskSpec)
    exact_match: dict[str, Any] | None = None
    # which gold-trace tokens carry information (TaskSpec.informative): a regex; None = all
    informative: str | None = None

    def __len__(self) -> int:
        return len(self.problems)


def data_sha256(rows: Iterable[Any]) -> str:
    """sha256 over rows as canonical JSON (sorted keys, one row per line): the content, not
    where or in which file format it is stored."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def choice_letter(index: int, n_choices: int) -> str:
    """The letter of option ``index`` (0-based) among ``n_choices``; ValueError if out of range."""
    if n_choices > len(CHOICE_LETTERS):
        raise ValueError(f"{n_choices} options; at most {len(CHOICE_LETTERS)} (A-J) are supported")
    if not 0 <= index < n_choices:
        raise ValueError(f"option index {index} out of range for {n_choices} options")
    return CHOICE_LETTERS[index]


def short_error(e: BaseException) -> str:
    """``Type: first line`` of an exception, for one-line TaskLoadError messages."""
    lines = str(e).strip().splitlines()
    msg = lines[0] if lines else ""
    return f"{type(e).__name__}: {msg[:200]}"


# ---------------------------------------------------------------------------------------------
# answer normalisers (named in YAML as `normalize: <name>`)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, stripped: the scorer's extractor, one definition."""
    from evalharness.scoring import last_boxed as _last_boxed

    found = _last_boxed(text)
    return found.strip() if found is not None else None


def _norm_strip(x: Any) -> str:
    return str(x).strip()


def _norm_int(x: Any) -> str:
    s = str(x).strip().replace(",", "")
    if s.startswith("$") and s.endswith("$"):
        s = s[1:-1].strip()
    try:
        return str(int(s))
    except ValueError:
        f = float(s)
        if f != int(f):
            raise ValueError(f"not an integer: {x!r}") from None
        return str(int(f))


def _norm_gsm8k_hash(x: Any) -> str:
    s = str(x)
    if "####" not in s:
        raise ValueError("no '####' final-answer marker")
    return s.rsplit("####", 1)[1].strip().replace(",", "")


def _norm_boxed(x: Any) -> str:
    b = last_boxed(str(x))
    if b is None:
        raise ValueError("no \\boxed{...}")
    return b


NORMALIZERS: dict[str, Callable[[Any], str]] = {
    "none": str,
    "strip": _norm_strip,
    "int": _norm_int,
    "gsm8k_hash": _norm_gsm8k_hash,
    "boxed": _norm_boxed,
}
