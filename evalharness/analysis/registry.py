"""The analysis tables, declared once.

One computation of a topic module returns one or more tables; each is registered here as a
`TableSet`: the tables' names, the computation, where each table's provenance comes from (the
records it read, grouped by the keys of its rows), the rules that say how its numbers are made,
and which tables go into ``fits.json``. `analyze` runs the sets in registration order (a set may
read the tables computed before it) and `Analysis` serves each table as an attribute, so adding a
table is one `register_tables` call: the CSV files, ``fits.json``, the provenance checks and the
tests all read this list.

This module imports no topic module (the registrations live in `analysis.tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Inputs:
    """What every table is computed from (made once per `analyze` call)."""

    scores: pd.DataFrame  # score rows as loaded (scoring.load_scores)
    df: pd.DataFrame  # prepared records: FLOPs, difficulty, spec labels
    pp: pd.DataFrame  # per (configuration, problem, budget) rows of the curves
    ks: list[int]  # the k of pass@k / maj@k each configuration allows
    info: pd.DataFrame  # per model: parameters, training tokens and FLOPs
    thinking: pd.DataFrame  # thinking tokens used per configuration and budget
    em_recs: pd.DataFrame  # the records the emergence tables read
    n_boot: int
    alpha: float
    seed: int | None


# records and row keys the provenance of a table is read from ("runs", "problems" columns)
Provenance = Callable[[Inputs], tuple[pd.DataFrame, list[str]]]
Compute = Callable[[Inputs, Mapping[str, pd.DataFrame]], "pd.DataFrame | Sequence[pd.DataFrame]"]


@dataclass(frozen=True)
class JsonOut:
    """A table's place in ``fits.json``: its key, and the rows that go there (default all)."""

    key: str
    rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass(frozen=True)
class TableSet:
    names: tuple[str, ...]
    compute: Compute
    # table -> its provenance source; a table absent here names its runs itself (or has none)
    provenance: Mapping[str, Provenance] = field(default_factory=dict)
    rules: Mapping[str, str] = field(default_factory=dict)  # rule name -> one-line statement
    json: Mapping[str, JsonOut] = field(default_factory=dict)  # table -> fits.json entry
    docs: Mapping[str, str] = field(default_factory=dict)  # table -> what one row is


_SETS: list[TableSet] = []


def register_tables(names: Sequence[str], compute: Compute, *,
                    provenance: Mapping[str, Provenance] | None = None,
                    rules: Mapping[str, str] | None = None,
                    json: Mapping[str, JsonOut | str] | None = None,
                    docs: Mapping[str, str] | None = None) -> TableSet:
    """Declare tables computed together. `compute(inputs, tables_so_far)` returns one frame per
    name, in order. Names are unique across the registry."""
    names = tuple(names)
    taken = set(table_names()) & set(names)
    if taken:
        raise ValueError(f"analysis tables already registered: {sorted(taken)}")
    unknown = set(provenance or {}) | set(json or {}) | set(docs or {})
    if unknown - set(names):
        raise ValueError(f"not tables of this set: {sorted(unknown - set(names))}")
    out = {k: v if isinstance(v, JsonOut) else JsonOut(v) for k, v in (json or {}).items()}
    entry = TableSet(names, compute, dict(provenance or {}), dict(rules or {}), out,
                     dict(docs or {}))
    _SETS.append(entry)
    return entry


def unregister_tables(names: Sequence[str]) -> None:
    """Drop the set holding these tables (tests that register a toy table clean up with it)."""
    _SETS[:] = [s for s in _SETS if not set(s.names) & set(names)]


def table_sets() -> list[TableSet]:
    return list(_SETS)


def table_names() -> tuple[str, ...]:
    return tuple(name for s in _SETS for name in s.names)


def all_rules() -> dict[str, str]:
    return {k: v for s in _SETS for k, v in s.rules.items()}


def compute_tables(inputs: Inputs) -> dict[str, pd.DataFrame]:
    """Every registered table, in registration order (a set sees the tables before it)."""
    tables: dict[str, pd.DataFrame] = {}
    for s in _SETS:
        got = s.compute(inputs, tables)
        frames = (got,) if isinstance(got, pd.DataFrame) else tuple(got)
        if len(frames) != len(s.names):
            raise ValueError(f"{s.compute.__name__} returned {len(frames)} tables for "
                             f"{len(s.names)} names {s.names}")
        tables.update(zip(s.names, frames, strict=True))
    return tables
