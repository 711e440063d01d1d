"""Plain frozen dataclasses that flow through the pipeline (task -> engine -> records).

`SampleRecord` is the unit of raw data: one line of ``samples.jsonl`` per
(problem, sample, budget, extensions). Everything downstream (scores, fits, plots, report) is a
pure function of these records and the run manifests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The name of a registered answer type ("integer", "number", "math", "string", "choice", or one
# registered since): the registry (`evalharness.scoring.answer_types`) validates it, not a
# Literal, so that adding a type is one registration.
AnswerType = str


@dataclass(frozen=True)
class Problem:
    id: str  # stable across runs (content-derived or the dataset's own id)
    prompt: str  # the user-facing question, before any reasoning format / chat template
    reference: str  # the normalised correct answer ("72", "\\frac{1}{2}", "B")
    answer_type: AnswerType = "string"
    choices: tuple[str, ...] | None = None  # multiple-choice options (answer = one of them)
    gold_thinking: str | None = None  # a reference reasoning trace, where the task has one
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenRequest:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    n: int = 1
    stop_ids: tuple[int, ...] = ()
    stop_strs: tuple[str, ...] = ()  # text markers (multi-token think-end of plain CoT formats)
    # whether the caller needs each generated token's log-prob: answers do (records keep them),
    # thinking does not; vLLM then skips a log-softmax over the vocabulary per token
    logprobs: bool = True


@dataclass(frozen=True)
class Completion:
    token_ids: list[int]  # generated tokens; a stop token that ended generation is excluded
    text: str
    logprobs: list[float]  # log p of each generated token under the sampling model
    finish_reason: str  # "stop" (stop token / eos), "length", or "error: ..."
    stop_id: int | None = None  # which stop token ended it, if any (not in token_ids)
    # a text stop (GenRequest.stop_strs) ends generation with the marker's tokens kept in
    # token_ids/text, so the caller can split thinking from marker itself


@dataclass(frozen=True)
class ScoreResult:
    logprobs: list[float]  # teacher-forced log p of each continuation token
    hits: list[bool]  # whether the argmax token equals the continuation token


@dataclass(frozen=True)
class SampleRecord:
    run_id: str
    model: str
    task: str
    problem_id: str
    sample: int
    seed: int
    budget: int  # thinking-token budget T
    extensions: int  # "Wait" extensions applied (0 in truncate mode)
    thinking_tokens: int  # thinking tokens actually used (<= budget)
    natural_thinking_tokens: int | None  # length L where the model ended thinking itself, else None
    cut: bool  # True: thinking was cut at T and the end marker forced
    thinking: str
    answer: str
    answer_ids: list[int]
    answer_logprobs: list[float]
    reference: str
    ref_ids: list[int]
    ref_logprobs: list[float]  # teacher-forced log p(reference | prompt + thinking[:T] + end + cue)
    ref_hits: list[bool]
    prompt_tokens: int
    generated_tokens: int  # thinking + forced marker/cue + answer tokens (for the FLOPs axis)
    finish_reason: str
    time_s: float
    # multiple-choice tasks: log p(option | same prefix), summed over the option's tokens
    choice_logprobs: list[float] | None = None
    # ... and after the bare prompt (no thinking, no marker): lm-eval's context, for acc/acc_norm
    prompt_choice_logprobs: list[float] | None = None
    choice_chars: list[int] | None = None  # each option's length in characters (acc_norm)
    # tasks with a gold trace, sample 0 at the largest budget only: teacher-forced gold target
    gold_think_hits: list[bool] | None = None
    gold_think_logprobs: list[float] | None = None
    gold_answer_hits: list[bool] | None = None
    gold_answer_logprobs: list[float] | None = None
    # ... and the gold trace's tokens as text (one string per token), so the scorer can pick the
    # task's informative tokens (TaskSpec.informative) and compare the whole scratchpad
    gold_think_tokens: list[str] | None = None
    gold_answer_tokens: list[str] | None = None
    # sha256 (16 hex) of the problem as asked and graded (rendered prompt, reference, options):
    # a resumed run whose problem changed under the same id is refused, never graded against
    # a reference its records were not made for
    problem_sha: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> SampleRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})
