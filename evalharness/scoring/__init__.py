"""Scoring: sample records in, one score row per record out (re-scoring never regenerates).

- `answers`: answer extraction and grading (text -> prediction -> correct?);
- `tokens`: token-level metrics over ragged columns (edit distance);
- `columns`: the score columns computed from a frame of records.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evalharness import store
from evalharness.scoring.answers import (  # noqa: F401 - the package's public names
    NUMERIC_TYPES,
    canonical_answer,
    extract_answer,
    grade,
    last_boxed,
)
from evalharness.scoring.columns import (  # noqa: F401
    COLUMNS,
    EMERGENCE_COLUMNS,
    ID_COLUMNS,
    SCORE_COLUMNS,
    columns_fingerprint,
    score_columns,
    score_records,
)
from evalharness.scoring.tokens import batch_edit_distance, edit_distance  # noqa: F401
from evalharness.spec import flat
from evalharness.store import Manifest, read_manifest, read_samples  # noqa: F401

log = logging.getLogger("evalharness")

# Bump for a change to scoring that no registered column's version covers (the score file's
# layout, the run state beside it); a column's own change bumps that column's `version`.
SCORES_BASE = "5"  # 5: task regex authoritative; lm-eval tasks graded by its exact_match


def version_fingerprints() -> list[str]:
    """The fingerprints cached scores depend on, beside `SCORES_BASE`: one per part of scoring
    that declares its versions: the column registry and the answer-type registry."""
    from evalharness.scoring.answer_types import answer_types_fingerprint

    return [columns_fingerprint(), answer_types_fingerprint()]


def scores_version() -> str:
    """The cache version of score files: `load_scores` re-scores files written under another.
    Derived, so adding or changing a column (its `version`) needs no manual bump."""
    return "-".join([SCORES_BASE, *version_fingerprints()])
_VERSION_KEY = b"evalharness_scores_version"
_STATE_KEY = b"evalharness_run_state"


def score_run(run_dir: Path) -> Path:
    """Score one run folder; writes and returns ``<run_dir>/scores.parquet``.

    Concurrent scorers of one run take turns (a lock) and write through unique temporaries."""
    from filelock import FileLock

    run_dir = Path(run_dir)
    with FileLock(str(run_dir / ".score.lock"), timeout=300):
        manifest = Manifest.read(run_dir)
        health = store.Health()
        samples = read_samples(run_dir / store.SAMPLES, health)
        options = {r["id"]: r["choices"] for r in store.read_problems(run_dir)
                   if isinstance(r.get("choices"), list)} or None
        scores = score_records(samples, manifest.answer_type, pattern=manifest.answer_regex,
                               options=options, fallback=manifest.answer_fallback,
                               exact_match=manifest.exact_match, markers=manifest.format,
                               informative=manifest.informative)
        state = store.run_state(run_dir, samples, health, manifest)
        table = pa.Table.from_pandas(scores, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[_VERSION_KEY] = scores_version().encode()
        meta[_STATE_KEY] = json.dumps(state).encode()
        out = run_dir / store.SCORES
        tmp = store.temp_path(out)
        try:
            pq.write_table(table.replace_schema_metadata(meta), tmp)
            tmp.replace(out)  # atomic: a reader never sees half a file
        finally:
            tmp.unlink(missing_ok=True)
    return out


def _is_stale(run_dir: Path) -> bool:
    scores, samples = run_dir / store.SCORES, run_dir / store.SAMPLES
    if not scores.exists():
        return True
    newest = max(samples.stat().st_mtime, (run_dir / store.MANIFEST).stat().st_mtime)
    if newest > scores.stat().st_mtime:
        return True
    try:
        meta = pq.read_schema(scores).metadata or {}
    except (pa.ArrowException, OSError):
        return True  # corrupt: rebuild it
    return meta.get(_VERSION_KEY) != scores_version().encode()


def _read_scores(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    if _is_stale(run_dir):
        score_run(run_dir)
    try:
        table = pq.read_table(run_dir / store.SCORES)
    except (pa.ArrowException, OSError):
        log.warning("%s: unreadable, rescoring", run_dir / store.SCORES)
        score_run(run_dir)
        table = pq.read_table(run_dir / store.SCORES)
    state = json.loads((table.schema.metadata or {}).get(_STATE_KEY, b"{}"))
    return table.to_pandas(), state


MANIFEST_COLUMNS = ("params", "family", "engine", "answer_type", "temperature", "top_p",
                    "spec_label",
                    "model_config", "train_tokens", "train_flops", "size", "model_seed")
# settings that already make separate curves (sampled runs are labelled by n and temperature),
# and the plan of manifests written before the spec existed (budgets and n were settings then)
_LABELLED_ELSEWHERE = {"temperature", "top_p", "budgets", "n"}


def spec_labels(manifests: dict[str, Manifest]) -> dict[str, str]:
    """Per run id, the short label of its spec among its family's runs (see `_labelling`)."""
    return _labelling(manifests)[0]


def spec_details(manifests: dict[str, Manifest]) -> dict[str, str]:
    """Per run id, every setting that tells its spec apart, spelled out ("" when none)."""
    return _labelling(manifests)[1]


def _labelling(manifests: dict[str, Manifest]) -> tuple[dict[str, str], dict[str, str]]:
    """Per run id, what tells its spec apart from other runs of the same family and task
    ("" when nothing does): two specs are two curves, never samples of one. Every run of the
    group is labelled (not only a model with two runs), so the seeds and sizes of one
    configuration share a label and those of another never do; which model a run is (name,
    weights) is no spec difference."""
    groups: dict[tuple, list[str]] = {}
    for rid, m in manifests.items():
        groups.setdefault((m.family_or_model, m.task), []).append(rid)
    labels = {rid: "" for rid in manifests}
    details = dict(labels)
    for rids in groups.values():
        if len(rids) < 2:
            continue
        flats = {rid: flat(manifests[rid].spec) for rid in rids}
        keys = sorted({k for f in flats.values() for k in f})
        differ = [k for k in keys if k.split(".")[-1] not in _LABELLED_ELSEWHERE
                  and k.split(".")[0] != "model"
                  and len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats.values()}) > 1]
        full = {rid: ", ".join(f"{k.split('.')[-1]}={_short(flats[rid].get(k))}"
                               for k in differ) for rid in rids}
        # a long label (several settings differ) would swamp every legend and table: the
        # distinct specs are numbered instead, and the warning spells each number out
        long = any(len(v) > MAX_LABEL for v in full.values())
        numbered = {v: f"spec {i + 1}" for i, v in enumerate(sorted(set(full.values())))}
        for rid in rids:
            labels[rid] = numbered[full[rid]] if long else full[rid]
            details[rid] = full[rid]
        if differ:
            log.warning("%s on %s: %d runs with different settings (%s); shown as separate "
                        "curves, never pooled%s", manifests[rids[0]].family_or_model,
                        manifests[rids[0]].task, len(rids),
                        ", ".join(k.split(".")[-1] for k in differ),
                        "".join(f"; {n} = {v}" for v, n in numbered.items()) if long else "")
    return labels, details


MAX_LABEL = 40  # characters of a spec label before the specs are numbered instead


def _short(v) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    return s if len(s) <= 16 else s[:12] + "…"


def load_scores(results_dir: Path) -> pd.DataFrame:
    """All runs' scores in one frame, scoring runs whose scores are missing, stale or corrupt.

    `results_dir` is ``results/`` (runs under ``results/runs/``) or the runs folder itself.
    Adds the manifest columns params (float, NaN if unknown), family, engine, answer_type,
    temperature, and spec_label; runs of one model and task with different specs get
    distinct model labels ("model [few_shot=2]") so nothing downstream pools them.
    """
    dirs = store.run_dirs(results_dir)
    manifests = {d.name: Manifest.read(d) for d in dirs}
    labels = spec_labels(manifests)
    frames = []
    for run_dir in dirs:
        scores, _ = _read_scores(run_dir)
        manifest = manifests[run_dir.name]
        params = manifest.params
        scores["params"] = float(params) if params is not None else np.nan
        scores["family"] = manifest.family_or_model or run_dir.name
        scores["engine"] = manifest.engine
        scores["answer_type"] = manifest.answer_type
        scores["temperature"] = manifest.temperature
        scores["top_p"] = manifest.top_p
        scores["spec_label"] = labels[run_dir.name]
        # what the FLOPs axis and the cost model need: architecture and training compute
        cfg = manifest.model_config
        scores["model_config"] = pd.Series([cfg] * len(scores), dtype=object, index=scores.index)
        for key in ("train_tokens", "train_flops"):
            v = getattr(manifest, key)
            scores[key] = float(v) if v is not None else np.nan
        # seeded families: every seed of one size shares `size`; NaN seed = not a seeded family
        scores["size"] = manifest.model_size or manifest.model or run_dir.name
        seed = manifest.model_seed
        scores["model_seed"] = float(seed) if seed is not None else np.nan
        if labels[run_dir.name]:
            scores["model"] = scores["model"].astype(str) + f" [{labels[run_dir.name]}]"
            scores["size"] = scores["size"].astype(str) + f" [{labels[run_dir.name]}]"
        frames.append(scores)
    if not frames:
        return pd.DataFrame(columns=score_columns() + list(MANIFEST_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def run_table(results_dir: Path, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: identity, state (complete / incomplete / interrupted; expected vs
    present records, duplicates, dropped lines) and the counts that belong next to accuracy:
    records, errors, no-answer, exact match. `scores`: `load_scores(results_dir)` where the
    caller has it already (each run's scores are then not read twice)."""
    if scores is None:
        scores = load_scores(results_dir)  # also rebuilds stale scores and their state
    dirs = store.run_dirs(results_dir)
    manifests = {d.name: Manifest.read(d) for d in dirs}
    labels, details = _labelling(manifests) if dirs else ({}, {})
    by_run = dict(tuple(scores.groupby("run_id"))) if len(scores) else {}
    rows = []
    for run_dir in dirs:
        meta = pq.read_schema(run_dir / store.SCORES).metadata or {}
        state = json.loads(meta.get(_STATE_KEY, b"{}"))
        g = by_run.get(run_dir.name, scores.iloc[:0])
        m = manifests[run_dir.name]
        rows.append(dict(
            run_id=run_dir.name, model=m.model, task=m.task,
            spec_label=labels.get(run_dir.name, ""), spec_detail=details.get(run_dir.name, ""),
            n=int(g["sample"].max() + 1) if len(g) else 0,
            records=len(g), errors=int(g["error"].sum()), no_answer=int(g["no_answer"].sum()),
            grade_timeouts=int(g["grade_timeout"].sum()) if "grade_timeout" in g else 0,
            exact_match=float(g["exact_match"].mean()) if len(g) else float("nan"),
            **state,
        ))
    return pd.DataFrame(rows)
