"""The answer-type registry: a type added through it alone is loaded, extracted, graded and
keyed like a built-in one, and leaves nothing behind when removed."""

from __future__ import annotations

import logging
import re

import pytest

from evalharness.scoring import canonical_answer, extract_answer, grade
from evalharness.scoring.answer_types import (
    ANSWER_TYPES,
    AnswerKind,
    UnknownAnswerType,
    answer_kind,
    answer_type_names,
    answer_types_fingerprint,
    register_answer_type,
    unregister_answer_type,
)
from evalharness.tasks import TaskLoadError, load_task
from evalharness.tasks import lmeval as lb

BUILT_IN = ("integer", "number", "math", "string", "choice")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def _last_yes_no(text: str) -> str | None:
    found = _YES_NO.findall(text)
    return found[-1].lower() if found else None


def _yes_no_key(pred: str) -> str | None:
    return _last_yes_no(pred)


def _yes_no_equal(pred: str, reference: str) -> bool:
    key = _yes_no_key(pred)
    return key is not None and key == _yes_no_key(reference)


YESNO = AnswerKind(
    name="yesno", extract=_last_yes_no, tidy=_last_yes_no, canonical=_yes_no_key,
    equal=_yes_no_equal, version="1", description="yes or no, in any case",
)


@pytest.fixture
def yesno():
    register_answer_type(YESNO)
    try:
        yield YESNO
    finally:
        if "yesno" in ANSWER_TYPES:
            unregister_answer_type("yesno")


def _yesno_yaml(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"q": "Is 7 prime?", "a": "Yes"}\n'
                                      '{"q": "Is 9 prime?", "a": "no"}\n')
    y = tmp_path / "t.yaml"
    y.write_text("name: t\nsource: {file: r.jsonl}\nfields: {question: [q], answer: [a]}\n"
                 "answer_type: yesno\n")
    return y


def test_the_built_in_types_are_registered_in_their_documented_order():
    assert answer_type_names()[:5] == BUILT_IN
    assert tuple(ANSWER_TYPES)[:5] == BUILT_IN
    assert all(answer_kind(name).name == name for name in BUILT_IN)


def test_a_type_registered_through_the_registry_alone_is_loaded_extracted_and_graded(
    tmp_path, yesno
):
    task = load_task(str(_yesno_yaml(tmp_path)))
    assert task.answer_type == "yesno"
    assert [p.answer_type for p in task.problems] == ["yesno", "yesno"]
    # its own extraction where the text marks no answer, its tidying where it does
    assert extract_answer("Hmm, 7 has no divisors... so YES.", "yesno") == "yes"
    assert extract_answer("The answer is: No, it is 3 x 3.", "yesno") == "no"
    assert extract_answer("I cannot tell.", "yesno") is None
    assert grade("YES", task.problems[0].reference, "yesno") is True
    assert grade("yes", task.problems[1].reference, "yesno") is False
    assert grade(None, "yes", "yesno") is False
    assert canonical_answer("No!", "yesno") == canonical_answer("no", "yesno") == "no"


def test_a_removed_type_leaves_the_registry_as_it_was(tmp_path):
    before_names, before_print = answer_type_names(), answer_types_fingerprint()
    register_answer_type(YESNO)
    assert "yesno" in ANSWER_TYPES and answer_types_fingerprint() != before_print
    assert unregister_answer_type("yesno") is YESNO
    assert answer_type_names() == before_names
    assert answer_types_fingerprint() == before_print
    with pytest.raises(TaskLoadError) as e:
        load_task(str(_yesno_yaml(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg and "'yesno'" in msg and ", ".join(BUILT_IN) in msg
    with pytest.raises(UnknownAnswerType):
        unregister_answer_type("yesno")


def test_an_unknown_answer_type_in_a_task_yaml_is_refused_in_one_line_listing_the_registered(
    tmp_path,
):
    (tmp_path / "r.jsonl").write_text('{"q": "a", "a": "1"}\n')
    y = tmp_path / "t.yaml"
    y.write_text("name: t\nsource: {file: r.jsonl}\nfields: {question: [q], answer: [a]}\n"
                 "answer_type: intger\n")
    with pytest.raises(TaskLoadError) as e:
        load_task(str(y))
    msg = str(e.value)
    assert "\n" not in msg and str(y) in msg and "'intger'" in msg
    assert all(name in msg for name in BUILT_IN)


def test_a_taken_or_malformed_name_is_refused_and_replace_is_explicit(yesno):
    with pytest.raises(ValueError, match="already registered"):
        register_answer_type(YESNO)
    with pytest.raises(ValueError, match="lower-case identifier"):
        register_answer_type(AnswerKind("Yes No", _last_yes_no, _yes_no_key, _yes_no_equal))
    with pytest.raises(TypeError):
        register_answer_type("yesno")  # type: ignore[arg-type]
    print_v1 = answer_types_fingerprint()
    v2 = AnswerKind("yesno", _last_yes_no, _yes_no_key, _yes_no_equal, version="2")
    assert register_answer_type(v2, replace=True) is v2
    assert answer_kind("yesno") is v2
    assert answer_types_fingerprint() != print_v1  # a changed rule invalidates old scores


def test_the_fingerprint_is_a_short_stable_hash_of_names_and_versions():
    fp = answer_types_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{12}", fp) and fp == answer_types_fingerprint()


def test_an_unregistered_type_at_scoring_time_is_no_answer_and_logged_once(caplog):
    with caplog.at_level(logging.ERROR, logger="evalharness.scoring.answers"):
        for _ in range(3):
            assert extract_answer("the answer is 5", "nosuch_type") is None
            assert grade("5", "5", "nosuch_type") is False
            assert canonical_answer("5", "nosuch_type") is None
    errors = [r.getMessage() for r in caplog.records if "nosuch_type" in r.getMessage()]
    assert len(errors) == 1 and "registered: integer" in errors[0]


def test_the_lmeval_mapping_refuses_a_type_that_is_not_registered(monkeypatch):
    assert lb._answer_type(["1", "-2"]) == "integer"
    assert lb._answer_type(["1.5"]) == "number"
    assert lb._answer_type(["Paris"]) == "string"
    monkeypatch.setattr(lb, "_OTHER_REFERENCES", "text")
    with pytest.raises(TaskLoadError) as e:
        lb._answer_type(["Paris"])
    msg = str(e.value)
    assert "\n" not in msg and "'text'" in msg and ", ".join(BUILT_IN) in msg
