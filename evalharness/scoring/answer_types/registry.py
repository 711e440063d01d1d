"""The answer-type registry: a task's ``answer_type`` names one :class:`AnswerKind`, which says
how an answer of that type is read from a model's text and when two answers are the same.

Adding a type is one `register_answer_type` call (the built-in ones are registered that way, in
the sibling modules); task YAMLs, the lm-eval bridge and the scorer all read this registry.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass


def _same(span: str) -> str | None:
    return span


@dataclass(frozen=True)
class AnswerKind:
    """How answers of one type are extracted, keyed and graded.

    The scorer calls these with plain strings (``None`` and NaN are handled before), inside its
    never-raise wrappers: an exception here counts as no answer / not correct, and is logged.

    - `extract(text)`: the answer in a model's whole text when none of the type-blind places
      (a ``\\boxed{}``, an "answer is" cue, ``#### X``) gave one; None when there is none;
    - `tidy(span)`: the answer in a span found in such a place (or by a task's regex), already
      stripped of math delimiters, bold and end punctuation; the default keeps it as it is;
    - `canonical(pred)`: a key under which equivalent answers collide (majority voting);
    - `equal(pred, reference)`: whether an extracted answer is correct; None when no verdict
      could be reached in time (counted as a grading timeout, and as not correct);
    - `version`: change it whenever any of these rules changes, so that scores graded under the
      old rule are recomputed (see `answer_types_fingerprint`).
    """

    name: str
    extract: Callable[[str], str | None]
    canonical: Callable[[str], str | None]
    equal: Callable[[str, str], bool | None]
    tidy: Callable[[str], str | None] = _same
    version: str = "1"
    description: str = ""


class UnknownAnswerType(ValueError):
    """An answer type that is not registered (the message is one line and lists those that are)."""

    def __init__(self, name: object, what: str = "answer type"):
        super().__init__(f"unknown {what} {name!r}; registered: {', '.join(_kinds)}")
        self.name = name


_kinds: dict[str, AnswerKind] = {}
_lock = threading.Lock()  # registration may race with a scorer thread's lookup
# Lower-case identifiers: the name is written in task YAMLs and run manifests.
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def register_answer_type(kind: AnswerKind, *, replace: bool = False) -> AnswerKind:
    """Register `kind` under ``kind.name`` and return it. ValueError if the name is taken
    (unless `replace`) or is not a lower-case identifier."""
    if not isinstance(kind, AnswerKind):
        raise TypeError(f"expected an AnswerKind, got {type(kind).__name__}")
    if not isinstance(kind.name, str) or not _NAME.match(kind.name):
        raise ValueError(f"answer type name {kind.name!r}: use a lower-case identifier")
    with _lock:
        if kind.name in _kinds and not replace:
            raise ValueError(f"answer type {kind.name!r} is already registered")
        _kinds[kind.name] = kind
    return kind


def unregister_answer_type(name: str) -> AnswerKind:
    """Remove a registered type and return it; UnknownAnswerType if there is none by `name`."""
    with _lock:
        if name not in _kinds:
            raise UnknownAnswerType(name)
        return _kinds.pop(name)


def answer_kind(name: str) -> AnswerKind:
    """The registered type called `name`; UnknownAnswerType (one line, listing the registered
    ones) otherwise."""
    try:
        return _kinds[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name
        raise UnknownAnswerType(name) from None


def answer_type_names() -> tuple[str, ...]:
    """The registered type names, in registration order (the built-ins first)."""
    return tuple(_kinds)


def answer_types_fingerprint() -> str:
    """A short hash over every registered type's name and version: it changes whenever a type
    is added, removed or re-versioned, so stored scores can be checked against it."""
    pairs = sorted((k.name, k.version) for k in _kinds.values())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:12]


class _RegisteredNames(Sequence[str]):
    """The registered names as a read-only sequence that is always current: a tuple taken at
    import time would refuse the types registered after it."""

    def __getitem__(self, i):  # type: ignore[override]
        return answer_type_names()[i]

    def __len__(self) -> int:
        return len(_kinds)

    def __iter__(self) -> Iterator[str]:
        return iter(answer_type_names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in _kinds

    def __repr__(self) -> str:
        return repr(answer_type_names())


ANSWER_TYPES: Sequence[str] = _RegisteredNames()
