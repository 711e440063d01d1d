"""The Engine protocol, EngineError and the small helpers every engine shares.

This module never imports an engine implementation; the registry (`evalharness.engines`) maps
names to implementations and imports them lazily.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from evalharness.types import Completion, GenRequest, ScoreResult


class EngineError(RuntimeError):
    pass


class Engine(Protocol):
    name: str  # a registry name: "hf" | "vllm" | "openai"
    version: str  # the engine library's version, for the manifest
    tokenizer: Any  # a transformers tokenizer (both engines tokenize with it)
    max_model_len: int | None
    # The effective value of everything that can change outputs (resolved dtype, device kind,
    # max_model_len, revision, seed, ...): what a run's identity should hold.
    settings: dict[str, Any]

    # `progress`: optional; an engine calls it with token counts as work completes inside the
    # call (decoded tokens for generate, continuation tokens for score). Engines without it
    # (e.g. Ray replicas) stay valid: `evalharness.progress.call_with_progress` ticks for them
    # once the call returns.
    def generate(self, requests: Sequence[GenRequest],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """One list of `request.n` completions per request, in request order."""
        ...

    def score(self, pairs: Sequence[tuple[list[int], list[int]]],
              progress: Callable[[int], None] | None = None) -> list[ScoreResult]:
        """Teacher-forced log p of each continuation token after its context tokens."""
        ...

    def close(self) -> None:
        """Release the model (memory, engine processes) so the next one can start."""
        ...


# -- defaults every engine shares (one place each) ---------------------------------------------
DEFAULT_DTYPE = "auto"
DEFAULT_SEED = 0
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def resolve_dtype(dtype: str | None, device_kind: str) -> str:
    """`auto` is bfloat16 on CUDA and float32 on CPU, in every engine.

    Not the checkpoint's dtype, and not vLLM's own `auto` (which casts float32 checkpoints to
    bfloat16 even on CPU): float32 on CPU is what makes the engines agree token for token.
    """
    dtype = dtype or DEFAULT_DTYPE
    if dtype not in DTYPE_NAMES:
        raise EngineError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_NAMES)}")
    if dtype == "auto":
        return "bfloat16" if device_kind == "cuda" else "float32"
    return dtype


def strip_stop(
    token_ids: list[int], logprobs: list[float], stop_ids: set[int]
) -> tuple[list[int], list[float], int | None]:
    """Drop a final stop token so both engines report completions the same way."""
    if token_ids and token_ids[-1] in stop_ids:
        return token_ids[:-1], logprobs[:-1], token_ids[-1]
    return token_ids, logprobs, None


# -- model loading: one clear line instead of a library's traceback ----------------------------
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf", "*.safetensors.index.json",
            "*.bin.index.json")


def check_model_source(model: str, revision: str | None = None) -> None:
    """Fail early, in one line, on a model that cannot load; silent when it may load.

    Libraries turn these cases into long tracebacks with misleading ends (a missing local path
    becomes "Repo id must be in the form 'repo_name'..."), so we check what is cheap to check.
    """
    p = Path(model).expanduser()
    if p.is_dir():
        config = p / "config.json"
        if not config.is_file():
            raise EngineError(f"{model} has no config.json: point --model at a checkpoint "
                              "directory (config.json plus weights)")
        try:
            cfg = json.loads(config.read_text())
        except (ValueError, OSError) as e:
            raise EngineError(f"{config} is not valid JSON ({_one_line(e)}): repair or "
                              "re-download the checkpoint") from None
        if not isinstance(cfg, dict) or not {"model_type", "architectures", "auto_map"} & set(cfg):
            raise EngineError(f"{config} has no model_type: it is not a transformers model "
                              "config; repair or re-download the checkpoint") from None
        if not any(any(p.glob(pattern)) for pattern in _WEIGHTS):
            raise EngineError(f"{model} has a config.json but no weights (*.safetensors or "
                              "pytorch_model.bin): copy the weights there or point at the full "
                              "checkpoint")
        for f in sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin")):
            if not _readable_weights(f):
                raise EngineError(f"could not read the weights of {model}: {f.name} is not a "
                                  f"valid {f.suffix[1:]} file; re-download or re-save the "
                                  "checkpoint")
        return
    if p.exists():
        raise EngineError(f"{model} is a file, not a model directory: point --model at the "
                          "directory that holds config.json and the weights")
    looks_local = model.startswith(("/", "./", "../", "~")) or not _HUB_ID.match(model)
    if looks_local:
        raise EngineError(f"model path {model} does not exist: give an existing checkpoint "
                          "directory or a hub id (org/name)")
    if _offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str):
            raise EngineError(
                f"{model} is neither a local directory nor in the Hugging Face cache, and "
                f"HF_HUB_OFFLINE=1 forbids downloading it: download it first "
                f"(`hf download {model}`) or pass a local path")


def _readable_weights(f: Path) -> bool:
    """The file's header is what its suffix promises (cheap: a few bytes, no tensors read).

    Libraries fail on a corrupt file with errors such as "pop from empty list"."""
    try:
        with f.open("rb") as fh:
            head = fh.read(8)
            if f.suffix == ".safetensors":  # 8-byte little-endian length, then a JSON header
                n = int.from_bytes(head, "little")
                return len(head) == 8 and 0 < n < 100_000_000 and json.loads(fh.read(n)) is not None
            # torch.save: a zip archive since torch 1.6, before that a pickle (protocol byte 0x80)
            return zipfile.is_zipfile(f) or head[:1] == b"\x80"
    except (OSError, ValueError):
        return False


def load_error(model: str, e: BaseException) -> EngineError:
    """A library's failure to load `model`, as one line that names it and says what to do."""
    msg = _one_line(e)
    if "pytorch_model.bin" in msg or "Unable to load weights" in msg or "unpickl" in msg.lower():
        return EngineError(f"could not read the weights of {model} ({msg[:200]}): re-download "
                           "or re-save the checkpoint")
    return EngineError(f"could not load {model}: {type(e).__name__}: {msg[:300]}")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


# Query parameters kept as they are when a URL is shown or stored: known not to be secret.
# Every other parameter's value is masked, since servers and proxies put keys, tokens and
# signatures there under many names (key, api_key, token, sig, X-Amz-Signature, ...).
_PUBLIC_QUERY = frozenset({"api-version", "api_version", "version"})


def redact_url(url: str) -> str:
    """`url` as it may reach disk or the console: no userinfo (user:password@), no fragment,
    and every query value but a few known-public ones masked as ***.

    A server URL is where users paste credentials (http://user:key@host/v1?api_key=...); the
    manifest, report, exports and log lines only ever hold this form."""
    from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

    url = url.strip()
    if "://" not in url:  # host:port/v1 (as --base-url accepts): else "host" parses as a scheme
        url = "http://" + url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable URL: keep nothing that could be a secret
        return "<unparsable URL>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    shown = []
    for chunk in filter(None, parts.query.split("&")):
        if "=" not in chunk:  # a bare token (?s3cr3t): nothing about it is safe to show
            shown.append("***")
            continue
        ((k, v),) = parse_qsl(chunk, keep_blank_values=True) or [(chunk.split("=")[0], "")]
        public = k.lower() in _PUBLIC_QUERY and len(k) < 40
        shown.append(f"{quote(k, safe='')}={quote(v, safe='') if public else '***'}")
    query = "&".join(shown)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
