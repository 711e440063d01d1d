"""Scoring: sample records in, one score row per record out (re-scoring never regenerates).

- `answers`: answer extraction and grading (text -> prediction -> correct?);
- `tokens`: token-level metrics over ragged columns (edit distance);
- `columns`: the score columns computed from a frame of records.
"""

from __future__ import annotations

import io
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from evalharness.scoring.answers import (  # noqa: F401 - the package's public names
    NUMERIC_TYPES,
    canonical_answer,
    extract_answer,
    grade,
    last_boxed,
)
from evalharness.scoring.columns import ID_COLUMNS, SCORE_COLUMNS, score_records  # noqa: F401
from evalharness.scoring.tokens import batch_edit_distance, edit_distance  # noqa: F401
from evalharness.store import read_manifest  # noqa: F401
from evalharness.types import SampleRecord

# Bump when the score columns or their meaning change: load_scores re-scores older files.
SCORES_VERSION = "1"
_VERSION_KEY = b"evalharness_scores_version"

_FIELD_TYPES: dict[str, pa.DataType] = {
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
}  # fmt: skip
assert set(_FIELD_TYPES) == {f.name for f in fields(SampleRecord)}, "types.py changed"
_SCHEMA = pa.schema(list(_FIELD_TYPES.items()))


def _arrow_lists_only(t: pa.DataType):
    return pd.ArrowDtype(t) if pa.types.is_list(t) else None


def read_samples(path: Path) -> pd.DataFrame:
    """samples.jsonl as a DataFrame (list fields as Arrow lists); unparsable lines are skipped.

    Fast path: Arrow's JSON reader over the whole file. A half-written trailing line (a run
    that is still going, or was killed) is dropped first; anything else the fast reader rejects
    (e.g. ``-Infinity`` log-probs) falls back to parsing line by line.
    """
    data = Path(path).read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        try:
            json.loads(data[cut + 1 :])
            data += b"\n"  # complete, just unterminated
        except ValueError:
            data = data[: cut + 1]  # half-written: drop it
    if not data.strip():
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _FIELD_TYPES})
    try:
        table = pj.read_json(
            io.BytesIO(data),
            parse_options=pj.ParseOptions(
                explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"
            ),
            read_options=pj.ReadOptions(block_size=1 << 24),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        rows = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        df = pd.DataFrame(rows)
        for name in _FIELD_TYPES:
            if name not in df:
                df[name] = None
        for name in ("run_id", "model", "task", "problem_id"):  # ids are strings everywhere
            df[name] = df[name].astype(str)
        return df
    return table.to_pandas(types_mapper=_arrow_lists_only)


def _answer_regex(manifest: dict) -> str | None:
    settings = manifest.get("settings") or {}
    return manifest.get("answer_regex") or settings.get("answer_regex")


def score_run(run_dir: Path) -> Path:
    """Score one run directory; writes and returns ``<run_dir>/scores.parquet``.

    The grader comes from the manifest's ``answer_type``; a task regex, if the manifest has
    ``answer_regex`` (top level or in settings), is tried first by the extractor.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    samples = read_samples(run_dir / "samples.jsonl")
    scores = score_records(
        samples, manifest.get("answer_type", "string"), pattern=_answer_regex(manifest)
    )
    table = pa.Table.from_pandas(scores, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_VERSION_KEY] = SCORES_VERSION.encode()
    out = run_dir / "scores.parquet"
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(out)  # atomic: a reader never sees half a file
    return out


def _is_stale(run_dir: Path) -> bool:
    scores, samples = run_dir / "scores.parquet", run_dir / "samples.jsonl"
    if not scores.exists():
        return True
    if samples.stat().st_mtime > scores.stat().st_mtime:
        return True
    meta = pq.read_schema(scores).metadata or {}
    return meta.get(_VERSION_KEY) != SCORES_VERSION.encode()


MANIFEST_COLUMNS = ("params", "family", "engine", "answer_type")


def load_scores(results_dir: Path) -> pd.DataFrame:
    """All runs' scores in one frame, scoring runs whose scores are missing or stale.

    `results_dir` is ``results/`` (runs under ``results/runs/``) or the runs folder itself.
    Adds the manifest columns params (float, NaN if unknown), family, engine, answer_type.
    """
    results_dir = Path(results_dir)
    runs_root = results_dir / "runs" if (results_dir / "runs").is_dir() else results_dir
    frames = []
    for run_dir in sorted(p for p in runs_root.iterdir() if (p / "samples.jsonl").exists()):
        if _is_stale(run_dir):
            score_run(run_dir)
        scores = pd.read_parquet(run_dir / "scores.parquet")
        manifest = read_manifest(run_dir)
        params = manifest.get("params")
        scores["params"] = float(params) if params is not None else np.nan
        scores["family"] = manifest.get("family") or manifest.get("model") or run_dir.name
        scores["engine"] = manifest.get("engine")
        scores["answer_type"] = manifest.get("answer_type", "string")
        sweep = (manifest.get("settings") or {}).get("sweep") or {}
        scores["temperature"] = float(sweep.get("temperature") or 0.0)
        frames.append(scores)
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS + list(MANIFEST_COLUMNS))
    return pd.concat(frames, ignore_index=True)
