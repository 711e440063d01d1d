"""Answer types: the registry (`registry`) and the built-in types, one module per family
(`numbers`, `maths`, `strings`, `choice`), registered here like any other type.

To add a type: ``register_answer_type(AnswerKind(name=..., extract=..., canonical=...,
equal=...))``, then name it in a task YAML's ``answer_type``.
"""

from evalharness.scoring.answer_types.choice import CHOICE
from evalharness.scoring.answer_types.maths import MATH
from evalharness.scoring.answer_types.numbers import INTEGER, NUMBER, NUMERIC_TYPES
from evalharness.scoring.answer_types.registry import (
    ANSWER_TYPES,
    AnswerKind,
    UnknownAnswerType,
    answer_kind,
    answer_type_names,
    answer_types_fingerprint,
    register_answer_type,
    unregister_answer_type,
)
from evalharness.scoring.answer_types.strings import STRING

# In this order: task-YAML errors list the types as registered.
for _kind in (INTEGER, NUMBER, MATH, STRING, CHOICE):
    register_answer_type(_kind)

__all__ = [
    "ANSWER_TYPES", "NUMERIC_TYPES", "AnswerKind", "UnknownAnswerType", "answer_kind",
    "answer_type_names", "answer_types_fingerprint", "register_answer_type",
    "unregister_answer_type",
]
