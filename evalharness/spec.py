"""The run spec: every setting that changes prompts, generation or scoring, in one typed object.

A run's id is a hash of its `RunSpec`; the manifest stores the spec whole; the sweep, the scorer
and the analysis read their settings from it and from nowhere else. What a run *covers* (which
problems, budgets and samples) is its `Plan`, kept outside the id: adding budgets, raising
``--limit`` or adding samples extends the same run, record by record, because every record is
keyed by (problem, sample, budget, extension level) and does not depend on the plan.

Settings that cannot change results stay out of both: the results folder, replicas, the
transformers batch size, progress display.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MODES = ("truncate", "extend")
SWEEPS = ("one-pass", "independent")

# Bounds on what a run can ask for: no context holds more than this many tokens (the longest
# served today hold ~10^7), so a larger budget is a typo, and one that overflows int64 used to
# poison the results folder (records written, then every reader crashed).
MAX_BUDGET = 10_000_000
MAX_SAMPLES = 1_000_000  # samples per problem
MAX_LEVELS = 10_000  # "Wait" extension levels


def check_budgets(budgets: tuple[int, ...] | list[int]) -> None:
    """Raise ValueError (one line) unless every budget is an int in 0..MAX_BUDGET."""
    for b in budgets:
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b <= MAX_BUDGET:
            raise ValueError(f"budget {b!r:.30} is out of range: budgets are thinking-token "
                             f"counts from 0 to {MAX_BUDGET:,} (more than any context holds)")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # as the user named it: zoo/arith-h128-s0, a hub id, a local dir
    weights: str | None  # sha256 over weight, config and tokenizer files; None for a hub id
    revision: str | None = None  # hub revision (the weights' identity for hub ids)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    # sha256 of the task's data *content* (every row, before --limit): the same data gives the
    # same run id from any folder or path spelling, and changed data gives another run. Where
    # the rows were read from is the manifest's `data_source`, outside the id.
    data: str
    answer_type: str
    # authoritative: a completion it does not match has no answer (as lm-eval's regex filter)
    answer_regex: str | None = None
    few_shot: int | None = None
    system_prompt: str | None = None
    # regex over the gold trace (thinking + think-end + answer, as text): tokens inside its
    # groups (or its matches, without groups) are the informative ones for gold_info_* scores
    informative: str | None = None
    # opt-in: where answer_regex does not match, fall back to the default extraction cascade
    # (boxed, "answer is", ####, last number). Scoring differs, so it is in the id when set.
    answer_fallback: bool = False
    # bridged lm-eval tasks: lm-eval's exact_match settings (regexes_to_ignore, ignore_case, …);
    # answers are then filtered by answer_regex and compared as lm-eval compares them
    exact_match: dict[str, Any] | None = None


@dataclass(frozen=True)
class GenerationSpec:
    """How thinking and answers are generated (budgets and n are the plan's, not here)."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    mode: str = "truncate"
    max_extensions: int = 0  # extend mode: up to k "Wait" extensions (levels 0..k recorded)
    max_answer_tokens: int = 16
    sweep: str = "one-pass"
    # extend mode only: a "Wait" continuation runs up to the largest budget, so records at a
    # budget depend on it; truncate-mode records do not (generation is causal)
    extend_t_max: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.temperature <= 100:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose {' or '.join(MODES)}")
        if self.sweep not in SWEEPS:
            raise ValueError(f"unknown sweep {self.sweep!r}; choose {' or '.join(SWEEPS)}")
        if self.mode == "extend" and self.max_extensions < 1:
            raise ValueError("extend mode needs --max-extensions >= 1")
        if self.max_extensions < 0:
            raise ValueError(f"max extensions must be >= 0, got {self.max_extensions}")
        if self.max_answer_tokens < 1:
            raise ValueError(f"max answer tokens must be >= 1, got {self.max_answer_tokens}")

    @property
    def levels(self) -> int:
        return self.max_extensions + 1 if self.mode == "extend" else 1


@dataclass(frozen=True)
class EngineSpec:
    name: str  # hf | vllm
    settings: dict[str, Any] = field(default_factory=dict)  # effective dtype, context length, …


@dataclass(frozen=True)
class RunSpec:
    model: ModelSpec
    task: TaskSpec
    format: dict[str, Any]  # the ReasoningFormat, whole (markers, cue, chat template use)
    generation: GenerationSpec
    engine: EngineSpec

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What the run id hashes: the whole spec, less fields at a default that was the only
        behaviour before the field existed (so those runs keep their ids)."""
        d = self.to_json()
        for key, default in (("answer_fallback", False), ("exact_match", None)):
            if d["task"].get(key, default) == default:
                d["task"].pop(key, None)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunSpec:
        task = dict(d["task"])
        if "data" not in task:  # manifests written before the content hash: their path
            task["data"] = task.pop("source", "")
        task.pop("source", None)
        return cls(
            model=ModelSpec(**d["model"]), task=TaskSpec(**task), format=dict(d["format"]),
            generation=GenerationSpec(**d["generation"]), engine=EngineSpec(**d["engine"]),
        )

    def run_id(self) -> str:
        """Readable prefix (task, model) plus a hash of the spec's identity."""
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{self.task.name}__{self.model.name}").strip("-")
        return f"{slug[:60]}-{hashlib.sha256(blob).hexdigest()[:10]}"


@dataclass(frozen=True)
class Plan:
    """What one `eval` asks of a run: budgets, samples per problem, extension levels."""

    budgets: tuple[int, ...]
    n: int = 1
    levels: int = 1

    def __post_init__(self) -> None:
        if not self.budgets:
            raise ValueError("at least one thinking budget is needed")
        if min(self.budgets) < 0:
            raise ValueError("budgets must be non-negative integers")
        check_budgets(self.budgets)
        if not 1 <= self.n <= MAX_SAMPLES:
            raise ValueError(f"n must be in 1..{MAX_SAMPLES:,}, got {self.n}")
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"extension levels must be in 1..{MAX_LEVELS:,}, got {self.levels}")

    def keys(self, problem_ids: list[str]) -> list[tuple[str, int, int, int]]:
        """Every record key (problem, sample, budget, level) the plan asks for."""
        return [(p, j, b, lv) for p in problem_ids for j in range(self.n)
                for b in sorted(set(self.budgets)) for lv in range(self.levels)]


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested spec as dotted keys, for telling two specs apart in a label."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
