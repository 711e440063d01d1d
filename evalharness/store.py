"""The results folder: the one module that reads and writes it.

``results/runs/<run_id>/`` holds

- ``manifest.json``: the run spec (whole), its plan (problems, budgets, samples), status, times;
- ``problems.jsonl``: the rendered prompts with a hash of their token ids, one row per problem;
- ``samples.jsonl``: append-only raw records, one per (problem, sample, budget, extension level);
- ``scores.parquet``: derived, rebuilt whenever it is missing, stale or unreadable.

Readers validate: a line that is not a well-formed record is skipped with a warning naming
``file:line`` and counted; a duplicated record key keeps its first copy and is counted; a damaged
manifest skips its run with a one-line warning. Every derived file is written under a unique
temporary name and renamed into place, so a reader never sees half a file and two writers never
share a temporary. A lock refuses a second concurrent writer of a run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.json as pj

from evalharness.spec import MAX_BUDGET, MAX_LEVELS, MAX_SAMPLES
from evalharness.types import SampleRecord

log = logging.getLogger("evalharness")

SAMPLES, MANIFEST, PROBLEMS, SCORES = "samples.jsonl", "manifest.json", "problems.jsonl", "scores.parquet"


class RunLockedError(RuntimeError):
    pass


class ResultsError(RuntimeError):
    """The results folder cannot be written (read-only, disk full, …): one line, what to do."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` through a unique temporary in the same folder, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_path(path: Path) -> Path:
    """A unique temporary name beside `path` for writers that need a path (parquet)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent)
    os.close(fd)
    return Path(tmp)


def os_error_message(e: OSError, where: Path) -> str:
    import errno

    what = {errno.ENOSPC: "the disk is full", errno.EROFS: "the folder is read-only",
            errno.EACCES: "permission denied", errno.EDQUOT: "the disk quota is exceeded"}
    reason = what.get(e.errno, e.strerror or str(e))
    return (f"cannot write results in {where}: {reason} (errno {e.errno}); free space or choose "
            "another folder with --results, then rerun the same command to resume")


# ---------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """A run's manifest.json as a dict ({} when the run has none yet).

    Raises `ValueError` naming the file when it is not a JSON object."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return {}
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: damaged manifest ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: damaged manifest (not a JSON object)")
    why = _check_manifest(d)
    if why:
        raise ValueError(f"{path}: damaged manifest ({why})")
    return d


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class Manifest:
    """A run's manifest.json, read once into typed fields.

    Manifests written before the run spec existed kept their settings under ``settings``
    (the answer regex; generation under ``settings.sweep``) and the answer type at the top
    level: `from_dict` is the one place that falls back to them. `raw` is the file as read,
    so a manifest written back keeps every field this class does not know."""

    raw: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    model: str | None = None
    task: str | None = None
    family: str | None = None  # the model family (curves of one family share a fit)
    status: str = "unknown"
    engine: str | None = None
    params: int | float | None = None
    model_config: dict[str, Any] | None = None
    train_tokens: int | float | None = None
    train_flops: int | float | None = None
    model_size: str | None = None
    model_seed: int | None = None
    data_source: str | None = None
    git_commit: str | None = None
    packages: dict[str, Any] | None = None
    started: str | None = None
    finished: str | None = None
    # the plan: what the run covers (None where the manifest does not say)
    budgets: tuple[int, ...] = ()
    n: int | None = None
    levels: int | None = None
    # the run spec as written (or a legacy manifest's settings): what spec labels compare
    spec: dict[str, Any] = field(default_factory=dict)
    task_spec: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    format: dict[str, Any] | None = None  # the reasoning format (markers), when recorded
    engine_settings: dict[str, Any] = field(default_factory=dict)
    answer_type: str = "string"
    answer_regex: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        spec, legacy = _obj(d.get("spec")), _obj(d.get("settings"))
        task, plan = _obj(spec.get("task")), _obj(d.get("plan"))
        return cls(
            raw=dict(d), run_id=d.get("run_id"), model=d.get("model"), task=d.get("task"),
            family=d.get("family"), status=d.get("status", "unknown"), engine=d.get("engine"),
            params=d.get("params"), model_config=d.get("model_config"),
            train_tokens=d.get("train_tokens"), train_flops=d.get("train_flops"),
            model_size=d.get("model_size"), model_seed=d.get("model_seed"),
            data_source=d.get("data_source"), git_commit=d.get("git_commit"),
            packages=d.get("packages"), started=d.get("started"), finished=d.get("finished"),
            budgets=tuple(plan.get("budgets") or ()),
            n=int(plan["n"]) if plan.get("n") else None,
            levels=int(plan["levels"]) if plan.get("levels") else None,
            spec=spec or legacy, task_spec=task,
            generation=_obj(spec.get("generation")) or _obj(legacy.get("sweep")),
            format=spec.get("format"), engine_settings=_obj(_obj(spec.get("engine")).get("settings")),
            answer_type=str(task.get("answer_type") or d.get("answer_type") or "string"),
            answer_regex=task.get("answer_regex") or d.get("answer_regex") or legacy.get("answer_regex"),
        )

    @classmethod
    def read(cls, run_dir: Path) -> Manifest:
        """The run's manifest (empty when it has none yet); `ValueError` naming the file when
        it is damaged (see `read_manifest`)."""
        return cls.from_dict(read_manifest(run_dir))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def __bool__(self) -> bool:
        """False for a run without a manifest yet (as an empty dict was)."""
        return bool(self.raw)

    @property
    def family_or_model(self) -> str | None:
        return self.family or self.model

    @property
    def temperature(self) -> float:
        return float(self.generation.get("temperature") or 0.0)

    @property
    def top_p(self) -> float:
        return float(self.generation.get("top_p") or 1.0)

    @property
    def answer_fallback(self) -> bool:
        """Whether the task opted into the default extraction where its regex does not match
        (TaskSpec.answer_fallback); by default the regex is authoritative."""
        return bool(self.task_spec.get("answer_fallback"))

    @property
    def informative(self) -> str | None:
        """The task's informative-token regex (TaskSpec.informative)."""
        return self.task_spec.get("informative")

    @property
    def exact_match(self) -> dict[str, Any] | None:
        """lm-eval's exact_match settings (TaskSpec.exact_match), for bridged tasks."""
        return self.task_spec.get("exact_match")


_INT64 = 2**63  # record fields are int64 columns
_FLOAT_MAX = 10**308  # manifest numbers are read with float() (params, FLOPs, tokens)


def _huge_int(v: Any, where: str = "", limit: int = _INT64) -> str | None:
    """Where an integer outside (-limit, limit) sits in a JSON value: readers convert numbers
    to int64 or float and would crash with OverflowError (JSON integers have no bound)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return where or "a value" if not -limit <= v < limit else None
    if isinstance(v, dict):
        items = v.items()
    elif isinstance(v, list):
        items = ((f"[{i}]", x) for i, x in enumerate(v))
    else:
        return None
    for k, x in items:
        key = k if str(k).startswith("[") else f".{k}"
        hit = _huge_int(x, f"{where}{key}".lstrip("."), limit)
        if hit:
            return hit
    return None


def _check_manifest(d: dict[str, Any]) -> str | None:
    """Why a manifest cannot be used (an out-of-range plan, an overflowing number), or None."""
    where = _huge_int(d, limit=_FLOAT_MAX)
    if where:
        return f"{where} is out of range"
    plan = d.get("plan")
    if plan is None:
        return None
    if not isinstance(plan, dict):
        return "plan is not an object"
    budgets = plan.get("budgets") or []
    if not isinstance(budgets, list) or not all(
            _is(b, int) and 0 <= b <= MAX_BUDGET for b in budgets):
        return f"plan.budgets {budgets!r:.60} are not thinking budgets in 0..{MAX_BUDGET:,}"
    for key, top in (("n", MAX_SAMPLES), ("levels", MAX_LEVELS)):
        v = plan.get(key)
        if v is not None and not (_is(v, int) and 1 <= v <= top):
            return f"plan.{key} {v!r:.30} is not in 1..{top:,}"
    return None


# ---------------------------------------------------------------------------------------------
# Records: validated reading
# ---------------------------------------------------------------------------------------------

FIELD_TYPES: dict[str, pa.DataType] = {
    "run_id": pa.string(), "model": pa.string(), "task": pa.string(),
    "problem_id": pa.string(), "sample": pa.int64(), "seed": pa.int64(),
    "budget": pa.int64(), "extensions": pa.int64(), "thinking_tokens": pa.int64(),
    "natural_thinking_tokens": pa.int64(), "cut": pa.bool_(), "thinking": pa.string(),
    "answer": pa.string(), "answer_ids": pa.list_(pa.int64()),
    "answer_logprobs": pa.list_(pa.float64()), "reference": pa.string(),
    "ref_ids": pa.list_(pa.int64()), "ref_logprobs": pa.list_(pa.float64()),
    "ref_hits": pa.list_(pa.bool_()), "prompt_tokens": pa.int64(),
    "generated_tokens": pa.int64(), "finish_reason": pa.string(), "time_s": pa.float64(),
    "choice_logprobs": pa.list_(pa.float64()),
    "prompt_choice_logprobs": pa.list_(pa.float64()), "choice_chars": pa.list_(pa.int64()),
    "gold_think_hits": pa.list_(pa.bool_()), "gold_think_logprobs": pa.list_(pa.float64()),
    "gold_answer_hits": pa.list_(pa.bool_()), "gold_answer_logprobs": pa.list_(pa.float64()),
    "gold_think_tokens": pa.list_(pa.string()), "gold_answer_tokens": pa.list_(pa.string()),
    "problem_sha": pa.string(),
}
assert set(FIELD_TYPES) == {f.name for f in fields(SampleRecord)}, "types.py changed"
_SCHEMA = pa.schema(list(FIELD_TYPES.items()))
KEY = ("problem_id", "sample", "budget", "extensions")
# fields every record must carry with the right type; the rest may be null
_REQUIRED = {"problem_id": str, "sample": int, "budget": int, "extensions": int,
             "finish_reason": str, "answer": str, "reference": str}
_PY = {pa.string(): str, pa.int64(): int, pa.float64(): (int, float), pa.bool_(): bool}


def _is(v: Any, typ: type | tuple) -> bool:
    """JSON-typed check: bools are not ints; an integral float (40.0) is an int."""
    if typ is int:
        return (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, float) and v.is_integer())
    if typ == (int, float):
        return isinstance(v, int | float) and not isinstance(v, bool)
    return isinstance(v, typ)


# key fields' ranges: what a run can ask for (spec.py); a record outside them is damaged
_KEY_RANGE = {"budget": MAX_BUDGET, "sample": MAX_SAMPLES - 1, "extensions": MAX_LEVELS - 1}


def _check_row(row: Any) -> str | None:
    """Why a parsed line is not a record, or None when it is one."""
    if not isinstance(row, dict):
        return f"not a JSON object ({type(row).__name__})"
    where = _huge_int(row)
    if where:
        return f"{where!r} is out of range"
    for name, top in _KEY_RANGE.items():
        v = row.get(name)
        if _is(v, int) and not 0 <= v <= top:
            return f"{name!r} is {v!r}, out of range 0..{top:,}"
    for name, typ in _REQUIRED.items():
        v = row.get(name)
        if v is None:
            return f"missing {name!r}"
        if not _is(v, typ):
            return f"{name!r} is {v!r}, not {typ.__name__}"
    for name, t in FIELD_TYPES.items():
        v = row.get(name)
        if v is None or name in _REQUIRED:
            continue
        if pa.types.is_list(t):
            if not isinstance(v, list):
                return f"{name!r} is not a list"
            item = _PY[t.value_type]
            if not all(x is None or _is(x, item) for x in v):
                return f"{name!r} holds values that are not {t.value_type}"
        elif not _is(v, _PY[t]):
            return f"{name!r} is {v!r}, not {t}"
    return None


@dataclass
class Health:
    """What a read found wrong with a run's records."""

    lines: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, why)
    duplicates: int = 0
    torn_tail: bool = False  # a half-written last line (a crash mid-write)

    def warn(self, path: Path) -> None:
        for line, why in self.bad_lines[:5]:
            log.warning("%s:%d: skipped an invalid record (%s)", path, line, why)
        if len(self.bad_lines) > 5:
            log.warning("%s: %d more invalid lines skipped", path, len(self.bad_lines) - 5)
        if self.duplicates:
            log.warning("%s: %d duplicated records ignored (the first copy of each is kept)",
                        path, self.duplicates)


def _split_lines(data: bytes) -> tuple[list[bytes], bool]:
    """Complete lines, and whether a torn (unterminated, unparsable) tail was dropped."""
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail.strip():
        try:
            json.loads(tail)
            lines.append(tail)  # complete, just unterminated
        except ValueError:
            return lines, True
    return lines, False


def read_samples(path: Path, health: Health | None = None) -> pd.DataFrame:
    """samples.jsonl as a DataFrame (list fields as Arrow lists), validated and deduplicated.

    Fast path: Arrow's JSON reader over the whole file when every line is a valid record.
    Otherwise line by line: invalid lines are skipped (with a warning naming file:line) and
    counted in `health`; a record key seen twice keeps its first copy.
    """
    health = health if health is not None else Health()
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    lines, health.torn_tail = _split_lines(data)
    health.lines = sum(1 for ln in lines if ln.strip())
    df = _fast_read(lines)
    if df is None:
        rows = []
        for k, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                health.bad_lines.append((k, f"not JSON: {e.msg}"))
                continue
            why = _check_row(row)
            if why:
                health.bad_lines.append((k, why))
                continue
            rows.append(row)
        df = _frame(rows)
    if len(df):
        dup = df.duplicated(list(KEY), keep="first")
        health.duplicates = int(dup.sum())
        if health.duplicates:
            df = df[~dup].reset_index(drop=True)
    health.warn(path)
    return df


def _fast_read(lines: list[bytes]) -> pd.DataFrame | None:
    body = b"\n".join(ln for ln in lines if ln.strip())
    if not body:
        return _frame([])
    try:
        table = pj.read_json(
            io.BytesIO(body + b"\n"),
            parse_options=pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"),
            read_options=pj.ReadOptions(block_size=1 << 24),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    for name in _REQUIRED:  # `{}` parses as a row of nulls: let the slow path name the line
        if table.column(name).null_count:
            return None
    import pyarrow.compute as pc

    for name, top in _KEY_RANGE.items():  # out-of-range keys: the slow path names the line
        col = table.column(name)
        if len(col) and (pc.min(col).as_py() < 0 or pc.max(col).as_py() > top):
            return None
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_list(t) else None)


def _frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in FIELD_TYPES})
    df = pd.DataFrame(rows)
    for name in FIELD_TYPES:
        if name not in df:
            df[name] = None
    return df[list(FIELD_TYPES)]


def read_problems(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / PROBLEMS
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# One run: the writer side
# ---------------------------------------------------------------------------------------------


class RunStore:
    def __init__(self, root: Path, run_id: str) -> None:
        self.dir = Path(root) / "runs" / run_id
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ResultsError(os_error_message(e, Path(root))) from None
        self.samples = self.dir / SAMPLES
        self.manifest_path = self.dir / MANIFEST
        from filelock import FileLock

        self._lock = FileLock(str(self.dir / ".lock"))

    def __enter__(self) -> RunStore:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout as e:
            raise RunLockedError(
                f"another evalharness process is writing run {self.dir.name} ({self.dir}); "
                "wait for it to finish or stop it"
            ) from e
        except OSError as e:
            raise ResultsError(os_error_message(e, self.dir)) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    # -- manifest ----------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        try:
            return Manifest.read(self.dir)
        except ValueError as e:
            log.warning("%s; rewriting it from this run's spec", e)
            return Manifest()

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2, default=str) + "\n")

    def merge_problems(self, rows: list[dict[str, Any]]) -> list[str]:
        """Add this invocation's problems to problems.jsonl (kept: every problem ever asked)
        and return every problem id the run now holds.

        Raises `ValueError` when a problem's prompt tokens differ from those stored under the
        same run id (a tokenizer or template that changed without changing the spec)."""
        old = {r["id"]: r for r in read_problems(self.dir)}
        changed = [r["id"] for r in rows
                   if r["id"] in old and old[r["id"]].get("prompt_sha") not in (None, r["prompt_sha"])]
        if changed:
            raise ValueError(
                f"run {self.dir.name}: the prompt tokens of {len(changed)} problem(s) (e.g. "
                f"{changed[0]!r}) differ from those its records were made with, under the same "
                "settings; the tokenizer or task text changed without changing the model "
                f"files. Use another --results folder or delete {self.dir}")
        merged = {**old, **{r["id"]: r for r in rows}}
        write_atomic(self.dir / PROBLEMS, "".join(json.dumps(r) + "\n" for r in merged.values()))
        return list(merged)

    def changed_problems(self, current: dict[str, tuple[str, str]]) -> list[str]:
        """Ids of problems whose records were made for another version of them: `current` maps
        problem id -> (problem_sha, reference); a record is compared by its problem_sha, or by
        its reference where it has none (records written before the hash existed)."""
        if not self.samples.exists():
            return []
        df = read_samples(self.samples)
        if df.empty:
            return []
        changed = set()
        shas = df["problem_sha"] if "problem_sha" in df else [None] * len(df)
        for pid, sha, ref in zip(df["problem_id"], shas, df["reference"], strict=True):
            now_ = current.get(str(pid))
            if now_ is None:
                continue
            if (sha != now_[0]) if isinstance(sha, str) else (str(ref) != now_[1]):
                changed.add(str(pid))
        return sorted(changed)

    # -- samples -----------------------------------------------------------------------------
    def done_keys(self) -> set[tuple[str, int, int, int]]:
        """Record keys already present; repairs a torn tail and drops invalid lines for good.

        Each record is written whole (one line), so a crash loses at most the records of the
        write in flight; what is kept is exactly what a reader would use."""
        if not self.samples.exists():
            return set()
        health = Health()
        df = read_samples(self.samples, health)
        if health.torn_tail or health.bad_lines or health.duplicates:
            keep = _valid_lines(self.samples.read_bytes())
            write_atomic(self.samples, b"".join(line + b"\n" for line in keep))
        return {(str(p), int(s), int(b), int(e)) for p, s, b, e in
                zip(df["problem_id"], df["sample"], df["budget"], df["extensions"], strict=True)}

    def append(self, records: Iterable[SampleRecord]) -> None:
        """One write per unit, flushed and synced: a crash loses at most the unit in flight."""
        data = "".join(json.dumps(r.to_json()) + "\n" for r in records)
        with open(self.samples, "a") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def _valid_lines(data: bytes) -> list[bytes]:
    lines, _ = _split_lines(data)
    keep, seen = [], set()
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if _check_row(row) is None:
            key = tuple(row[k] for k in KEY)
            if key not in seen:
                seen.add(key)
                keep.append(line)
    return keep


# ---------------------------------------------------------------------------------------------
# The results folder: runs, their state, scores
# ---------------------------------------------------------------------------------------------


def runs_root(results: Path) -> Path:
    results = Path(results)
    return results / "runs" if (results / "runs").is_dir() else results


def run_dirs(results: Path) -> list[Path]:
    """Every run folder with records and a readable manifest; damaged manifests are skipped
    with a one-line warning naming the file."""
    root = runs_root(results)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if (p / SAMPLES).exists()):
        try:
            if not Manifest.read(d):
                log.warning("%s: no manifest.json; run skipped", d)
                continue
        except ValueError as e:
            log.warning("%s; run skipped (delete the run folder or rerun its eval)", e)
            continue
        out.append(d)
    return out


def expected_keys(run_dir: Path, manifest: Manifest) -> set[tuple[str, int, int, int]]:
    """Every record key the run's plan asked for (problems x samples x budgets x levels)."""
    ids = [r["id"] for r in read_problems(run_dir)]
    return {(p, j, b, lv) for p in ids for j in range(manifest.n or 1)
            for b in sorted(set(manifest.budgets)) for lv in range(manifest.levels or 1)}


def run_state(run_dir: Path, df: pd.DataFrame, health: Health, manifest: Manifest) -> dict:
    """Expected vs present records, duplicates, dropped lines, and the status that follows."""
    expected = expected_keys(run_dir, manifest)
    present = set(zip(df["problem_id"].astype(str), df["sample"].astype(int),
                      df["budget"].astype(int), df["extensions"].astype(int), strict=True))
    missing = len(expected - present) if expected else 0
    status = manifest.status
    if status == "running" and not _locked(run_dir):
        status = "interrupted"
    if status == "complete" and (missing or health.bad_lines or health.duplicates):
        status = "incomplete"
    return dict(status=status, expected=len(expected), present=len(present), missing=missing,
                duplicates=health.duplicates, bad_lines=len(health.bad_lines))


def _locked(run_dir: Path) -> bool:
    from filelock import FileLock, Timeout

    lock = FileLock(str(Path(run_dir) / ".lock"))
    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):
        return True
    lock.release()
    return False
