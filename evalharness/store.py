"""Run ids, manifests and the append-only, resumable ``samples.jsonl``.

A run lives in ``results/runs/<run_id>/``. Its id hashes everything that affects results, so the
same command resumes the same run: finished (problem, sample) units are skipped, a torn last
line (a crash mid-write) is discarded, and a lock refuses a second concurrent writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from evalharness.types import SampleRecord


class RunLockedError(RuntimeError):
    pass


def run_id_for(settings: dict[str, Any]) -> str:
    """Readable prefix (task, model) plus a hash of every setting that changes results."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{settings['task']}__{settings['model']}").strip("-")
    return f"{slug[:60]}-{hashlib.sha256(blob).hexdigest()[:10]}"


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """A run's manifest.json as a dict ({} when the run has none yet)."""
    path = Path(run_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunStore:
    def __init__(self, root: Path, run_id: str) -> None:
        self.dir = Path(root) / "runs" / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.samples = self.dir / "samples.jsonl"
        self.manifest_path = self.dir / "manifest.json"
        self._lock = FileLock(str(self.dir / ".lock"))

    def __enter__(self) -> RunStore:
        try:
            self._lock.acquire(timeout=0)
        except Timeout as e:
            raise RunLockedError(
                f"another evalharness process is writing run {self.dir.name} ({self.dir}); "
                "wait for it to finish or stop it"
            ) from e
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    # -- manifest ----------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        os.replace(tmp, self.manifest_path)  # atomic: a reader never sees half a manifest

    def write_problems(self, rows: list[dict[str, Any]]) -> None:
        tmp = self.dir / "problems.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.dir / "problems.jsonl")

    # -- samples -----------------------------------------------------------------------------
    def done_units(self, rows_per_unit: int) -> set[tuple[str, int]]:
        """Complete (problem_id, sample) units; repairs a torn tail and drops partial units."""
        if not self.samples.exists():
            return set()
        raw = self.samples.read_bytes()
        lines = raw.split(b"\n")
        good: list[bytes] = []
        for line in lines[:-1]:  # the part after the last newline is a torn write
            try:
                json.loads(line)
                good.append(line)
            except ValueError:
                continue
        counts = Counter()
        keys = []
        for line in good:
            row = json.loads(line)
            key = (row["problem_id"], row["sample"])
            keys.append(key)
            counts[key] += 1
        done = {k for k, c in counts.items() if c == rows_per_unit}
        kept = [line for line, k in zip(good, keys, strict=True) if k in done]
        if len(kept) != len(lines) - 1 or lines[-1]:
            tmp = self.samples.with_suffix(".tmp")
            tmp.write_bytes(b"".join(line + b"\n" for line in kept))
            os.replace(tmp, self.samples)
        return done

    def append(self, records: Iterable[SampleRecord]) -> None:
        """One write per unit, flushed and synced: a crash loses at most the unit in flight."""
        data = "".join(json.dumps(r.to_json()) + "\n" for r in records)
        with open(self.samples, "a") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[SampleRecord]:
        if not self.samples.exists():
            return []
        out = []
        for line in self.samples.read_text().splitlines():
            try:
                out.append(SampleRecord.from_json(json.loads(line)))
            except ValueError:
                continue
        return out
