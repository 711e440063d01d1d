"""One way to read a run's records and one way to compare two sets of them, for every test
that asserts two runs (engines, replicas, resumed or fresh, one-pass or independent) made the
same records: each compares every field, and what may differ is named here, not per test."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evalharness.types import SampleRecord

Key = tuple[str, int, int, int]  # (problem_id, sample, budget, extensions)

# wall-clock seconds: differ from run to run however the records were made
WALL_CLOCK = frozenset({"time_s"})
# the engine is part of a run's identity: the same records made through another engine (a
# server instead of the in-process one) belong to another run id, and nothing else may differ
OTHER_ENGINE = WALL_CLOCK | {"run_id"}
# fields of floats summed in an engine's kernels: batch composition, replicas or another
# engine move them by ~1e-6, so they are compared within a tolerance, never left out
FLOAT_LISTS = frozenset({"answer_logprobs", "ref_logprobs", "choice_logprobs",
                         "prompt_choice_logprobs", "gold_think_logprobs", "gold_answer_logprobs"})


def key(r: dict[str, Any]) -> Key:
    return (r["problem_id"], r["sample"], r["budget"], r["extensions"])


def read_records(where: Path) -> dict[Key, dict[str, Any]]:
    """Every record under `where` (a run folder, or a results folder with one or more runs)
    by key; a duplicated key fails the test."""
    where = Path(where)
    files = [where / "samples.jsonl"] if (where / "samples.jsonl").exists() else sorted(
        where.glob("runs/*/samples.jsonl"))
    assert files, f"no samples.jsonl under {where}"
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    out = {key(r): r for r in rows}
    assert len(out) == len(rows), "duplicated records"
    return out


def as_records(records: Iterable[SampleRecord]) -> dict[Key, dict[str, Any]]:
    """Records made in memory (a Sweeper's), in the form `read_records` gives."""
    rows = [asdict(r) for r in records]
    out = {key(r): r for r in rows}
    assert len(out) == len(rows), "duplicated records"
    return out


def assert_same_records(a: dict[Key, dict[str, Any]], b: dict[Key, dict[str, Any]], *,
                        may_differ: Iterable[str] = WALL_CLOCK, tol: float = 0.0) -> None:
    """The same keys and, per record, every field equal but those in `may_differ`; log-prob
    lists (FLOAT_LISTS) equal in length and within `tol` (0: exactly equal)."""
    skip = set(may_differ)
    assert a.keys() == b.keys() and len(a) > 0, sorted(set(a) ^ set(b))[:5]
    for k in a:
        fields = (set(a[k]) | set(b[k])) - skip
        for f in sorted(fields):
            v, w = a[k].get(f), b[k].get(f)
            if f in FLOAT_LISTS and tol and v is not None and w is not None:
                assert len(v) == len(w), (k, f, v, w)
                assert all(abs(x - y) <= tol for x, y in zip(v, w, strict=True)), (k, f, v, w)
            else:
                assert v == w, (k, f, v, w)


def cli(args: list[str], code: int | None = 0):
    """Run the `evalharness` command line in this process (typer's runner) and, unless `code`
    is None, check its exit code, failing with the output and any exception."""
    from typer.testing import CliRunner

    from evalharness.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    if code is not None:
        assert res.exit_code == code, f"exit {res.exit_code}:\n{res.output}\n{res.exception!r}"
    return res
