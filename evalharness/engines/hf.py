"""The transformers engine: batched decoding with left padding, a KV cache and per-row seeds.

We decode with our own loop instead of `model.generate` for two reasons: every row samples from
its own `torch.Generator` (so a sample does not depend on which other rows share its batch), and
we need the log-prob of every generated token in one consistent form with `score`.

Batching is continuous: a row that ends leaves the batch and a waiting row joins, so short
answers do not wait for long ones. transformers' own continuous batching (`generate_batch`) is
not used: it samples from one global seed (a row's sample would depend on its neighbours), takes
one generation config for all requests, and has no stop strings.
"""

from __future__ import annotations

import gc
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.cache_utils import DynamicCache, DynamicLayer

from evalharness.engines.base import (
    DEFAULT_DTYPE,
    DEFAULT_SEED,
    check_model_source,
    load_error,
    resolve_dtype,
    strip_stop,
)
from evalharness.types import Completion, GenRequest, ScoreResult

Tick = Callable[[int], None]
BATCHING = ("continuous", "static")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class HFEngine:
    name = "hf"
    version = transformers.__version__

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str = DEFAULT_DTYPE,
        batch_size: int = 64,
        revision: str | None = None,
        trust_remote_code: bool = False,
        max_model_len: int | None = None,
        seed: int = DEFAULT_SEED,
        batching: str = "continuous",
    ) -> None:
        """`batching`: "continuous" (finished rows leave, waiting rows join) or "static" (each
        batch decodes until its longest row ends; the reference). Outputs do not depend on it,
        so it is not a run setting."""
        if batching not in BATCHING:
            raise ValueError(f"batching must be one of {BATCHING}, not {batching!r}")
        self.batching = batching
        # Joining rows cost one prefill pass per join: with big batches, wait until a few
        # slots are free rather than prefill one row after every finish.
        self.refill_min = max(1, batch_size // 8)
        # Forward passes, for benchmarks and tests (work done, not wall time).
        self.counters: Counter[str] = Counter()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        device_kind = torch.device(self.device).type
        resolved = resolve_dtype(dtype, device_kind)
        self.batch_size = batch_size
        # Sampled rows without a seed of their own draw one from here: reproducible per engine
        # seed, as vLLM's `LLM(seed=...)` makes its unseeded requests.
        self._rng = random.Random(seed)
        check_model_source(model, revision)
        # transformers' own "Loading weights" bar: one line per model, 33 in the zoo's default
        # job; the harness shows its own progress (and none with --no-progress)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                model, revision=revision, trust_remote_code=trust_remote_code
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                model, revision=revision, dtype=DTYPES[resolved],
                trust_remote_code=trust_remote_code,
            ).to(self.device)
        except Exception as e:  # noqa: BLE001 - every library failure becomes one clear line
            raise load_error(model, e) from None
        self.tokenizer.padding_side = "left"
        self.model.eval()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id or 0
        cfg = self.model.config
        self.max_model_len = max_model_len or getattr(cfg, "max_position_embeddings", None)
        self.settings = {
            "engine": self.name, "dtype": resolved, "device": device_kind,
            "max_model_len": self.max_model_len, "revision": revision,
            "trust_remote_code": trust_remote_code, "seed": seed,
        }

    # -- generation ------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest],
                 progress: Tick | None = None) -> list[list[Completion]]:
        """`progress`, if given, is called after every decode step with the number of tokens
        that step produced (stop tokens included): the sum is every token decoded."""
        tick = progress or _no_tick
        rows = [(i, j, r) for i, r in enumerate(requests) for j in range(r.n)]
        # Similar lengths together: less padding. Order never changes a row's result.
        rows.sort(key=lambda x: (len(x[2].prompt_ids), x[2].max_tokens))
        out: list[list[Completion | None]] = [[None] * r.n for r in requests]
        ok = []
        for i, j, r in rows:
            if self._fits(r):
                ok.append((i, j, r))
            else:
                out[i][j] = Completion([], "", [], f"error: prompt of {len(r.prompt_ids)} "
                                       f"tokens + {r.max_tokens} new exceeds {self.max_model_len}")
        # Drawn in sorted row order before any decoding, as the static engine always did, so
        # unseeded rows get the same seeds whichever batching runs them.
        gens = [self._generator(j, r) for _, j, r in ok]
        if self.batching == "continuous":
            comps = self._generate_continuous([r for _, _, r in ok], gens, tick)
        else:
            comps = []
            for start in range(0, len(ok), self.batch_size):
                end = start + self.batch_size
                comps += self._generate_batch([r for _, _, r in ok[start:end]], gens[start:end],
                                              tick)
        for (i, j, _), c in zip(ok, comps, strict=True):
            out[i][j] = c
        return out  # type: ignore[return-value]

    def _generator(self, j: int, r: GenRequest) -> torch.Generator | None:
        if r.temperature <= 0:
            return None
        seed = r.seed if r.seed is not None else self._rng.getrandbits(32)
        return torch.Generator().manual_seed(seed * 1000003 + j)

    def _fits(self, r: GenRequest) -> bool:
        return self.max_model_len is None or len(r.prompt_ids) + r.max_tokens <= self.max_model_len

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for k, s in enumerate(seqs):
            if s:
                ids[k, width - len(s) :] = torch.tensor(s)
                mask[k, width - len(s) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _prefill(self, prompts: list[list[int]]) -> tuple[Any, torch.Tensor, torch.Tensor,
                                                            torch.Tensor]:
        """(cache, attention mask, next position per row [B, 1], last logits [B, V])."""
        ids, mask, pos = self._left_pad(prompts)
        # only the last position's logits are needed (a 150K vocabulary makes the rest costly)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                         logits_to_keep=1)
        self.counters["prefills"] += 1
        return out.past_key_values, mask, pos[:, -1:] + 1, out.logits[:, -1, :].float()

    def _decode(self, nxt: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor,
                cache: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """One decode step for every row in the cache: (cache, mask, logits)."""
        mask = torch.cat([mask, torch.ones((len(mask), 1), dtype=mask.dtype,
                                           device=mask.device)], 1)
        out = self.model(input_ids=nxt[:, None].to(self.device), attention_mask=mask,
                         position_ids=pos, past_key_values=cache, use_cache=True)
        self.counters["decode_steps"] += 1
        self.counters["decode_rows"] += len(mask)
        return out.past_key_values, mask, out.logits[:, -1, :].float()

    def _pick(self, logits: torch.Tensor, reqs: list[GenRequest],
              gens: list[torch.Generator | None], active: list[bool] | None = None,
              ) -> tuple[list[int], list[float], torch.Tensor]:
        """Each row's next token (argmax, or sampled from its own generator) and its log-prob.

        A finished row (`active` False) draws nothing: a generator advances only for tokens
        its row keeps, which is what makes samples independent of the batch."""
        logp = torch.log_softmax(logits, dim=-1)
        nxt = logp.argmax(-1)
        for b, r in enumerate(reqs):
            if r.temperature > 0 and (active is None or active[b]):
                nxt[b] = _sample(logits[b], r.temperature, r.top_p, gens[b])
        return nxt.tolist(), logp.gather(1, nxt[:, None])[:, 0].tolist(), nxt

    def _done(self, toks: list[int], r: GenRequest, stops: set[int]) -> str | None:
        """"stop" / "length" once this row has ended, else None."""
        if toks[-1] in stops or (r.stop_strs and self._hit_stop_str(toks, r)):
            return "stop"
        return "length" if len(toks) >= r.max_tokens else None

    def _finish(self, toks: list[int], lps: list[float], reason: str,
                stops: set[int]) -> Completion:
        toks, lps, stop_id = strip_stop(toks, lps, stops)
        return Completion(toks, self.tokenizer.decode(toks, skip_special_tokens=False), lps,
                          reason, stop_id)

    def _stops(self, r: GenRequest) -> set[int]:
        # Like vLLM, generation always ends at <eos>; the stop token is reported, not kept.
        return set(r.stop_ids) | {self.tokenizer.eos_token_id}

    @torch.inference_mode()
    def _generate_continuous(self, reqs: list[GenRequest], gens: list[torch.Generator | None],
                             tick: Tick) -> list[Completion]:
        """Continuous batching: a finished row leaves the batch at once, a waiting row joins.

        Joining rows are prefilled together in a batch of their own; their KV caches are then
        left-padded (or the running batch's are) to a common width and stacked onto the running
        batch. Every row keeps its own attention mask and position ids, so a row's logits are
        those of the static engine up to float rounding (masked columns weigh exactly 0).
        Leaving rows are dropped from the cache, and columns no remaining row attends to are
        cut, so the batch never pays for a finished row's tokens again.
        """
        n = len(reqs)
        toks: list[list[int]] = [[] for _ in range(n)]
        lps: list[list[float]] = [[] for _ in range(n)]
        result: list[Completion | None] = [None] * n
        stops = [self._stops(r) for r in reqs]
        waiting = deque(k for k in range(n) if reqs[k].max_tokens > 0)
        for k in range(n):
            if reqs[k].max_tokens <= 0:
                result[k] = Completion([], "", [], "length")
        slots: list[int] = []  # request index of each batch row
        cache: Any = None
        mask = pos = logits = torch.empty(0)
        while waiting or slots:
            free = self.batch_size - len(slots)
            # Refill in groups (refill_min): each join costs one prefill forward pass.
            if waiting and (not slots or free >= self.refill_min):
                join = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                j_cache, j_mask, j_pos, j_logits = self._prefill([reqs[k].prompt_ids
                                                                  for k in join])
                if not _plain_cache(j_cache):  # sliding windows, recurrent state: no merging
                    return self._fallback_static(reqs, gens, tick, result)
                if slots:
                    mask = _stack_caches(cache, mask, j_cache, j_mask)
                    pos, logits = torch.cat([pos, j_pos]), torch.cat([logits, j_logits])
                else:
                    cache, mask, pos, logits = j_cache, j_mask, j_pos, j_logits
                slots += join
            nxt_list, chosen, nxt = self._pick(logits, [reqs[k] for k in slots],
                                               [gens[k] for k in slots])
            keep = []
            for b, k in enumerate(slots):
                toks[k].append(nxt_list[b])
                lps[k].append(chosen[b])
                reason = self._done(toks[k], reqs[k], stops[k])
                if reason is None:
                    keep.append(b)
                else:
                    result[k] = self._finish(toks[k], lps[k], reason, stops[k])
            tick(len(slots))
            if len(keep) < len(slots):
                slots = [slots[b] for b in keep]
                if not slots:
                    cache = None
                    continue
                idx = torch.tensor(keep, device=mask.device)
                mask, pos, nxt = mask[idx], pos[idx], nxt[idx]
                first = int(mask.any(0).nonzero()[0])  # columns before it: padding for all
                for layer in cache.layers:
                    layer.keys = layer.keys[idx, :, first:]
                    layer.values = layer.values[idx, :, first:]
                mask = mask[:, first:]
            cache, mask, logits = self._decode(nxt, mask, pos, cache)
            pos = pos + 1
        return result  # type: ignore[return-value]

    def _fallback_static(self, reqs: list[GenRequest], gens: list[torch.Generator | None],
                         tick: Tick, result: list[Completion | None]) -> list[Completion]:
        """Caches that cannot be stacked row-wise: static batches (called before any token is
        drawn, so the generators are untouched)."""
        self.batching = "static"
        todo = [k for k in range(len(reqs)) if result[k] is None]
        for start in range(0, len(todo), self.batch_size):
            part = todo[start : start + self.batch_size]
            for k, c in zip(part, self._generate_batch([reqs[k] for k in part],
                                                       [gens[k] for k in part], tick),
                            strict=True):
                result[k] = c
        return result  # type: ignore[return-value]

    @torch.inference_mode()
    def _generate_batch(self, reqs: list[GenRequest], gens: list[torch.Generator | None],
                        tick: Tick) -> list[Completion]:
        """Static batching (the reference): the batch decodes until its longest row ends."""
        B = len(reqs)
        tokens: list[list[int]] = [[] for _ in range(B)]
        lps: list[list[float]] = [[] for _ in range(B)]
        finish = ["length"] * B
        active = [r.max_tokens > 0 for r in reqs]
        stop_sets = [self._stops(r) for r in reqs]
        cache, mask, next_pos, logits = self._prefill([r.prompt_ids for r in reqs])
        for _ in range(max(r.max_tokens for r in reqs)):
            if not any(active):
                break
            nxt_list, chosen, nxt = self._pick(logits, reqs, gens, active)
            tick(sum(active))
            for b in range(B):
                if not active[b]:
                    continue
                tokens[b].append(nxt_list[b])
                lps[b].append(chosen[b])
                reason = self._done(tokens[b], reqs[b], stop_sets[b])
                if reason is not None:
                    active[b], finish[b] = False, reason
            if not any(active):
                break
            cache, mask, logits = self._decode(nxt, mask, next_pos, cache)
            next_pos = next_pos + 1
        return [self._finish(tokens[b], lps[b], finish[b], stop_sets[b]) for b in range(B)]

    def _hit_stop_str(self, toks: list[int], r: GenRequest) -> bool:
        tail = self.tokenizer.decode(toks[-32:], skip_special_tokens=False)
        return any(s in tail for s in r.stop_strs)

    # -- scoring ---------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, pairs: Sequence[tuple[list[int], list[int]]],
              progress: Tick | None = None) -> list[ScoreResult]:
        """`progress`, if given, is called after each batch with its continuation tokens."""
        tick = progress or _no_tick
        order = sorted(range(len(pairs)), key=lambda k: len(pairs[k][0]) + len(pairs[k][1]))
        out: list[ScoreResult | None] = [None] * len(pairs)
        too_long = {k for k, (c, t) in enumerate(pairs)
                    if self.max_model_len and len(c) + len(t) > self.max_model_len}
        order = [k for k in order if k not in too_long]  # like vLLM: no score past the context
        for k in too_long:
            out[k] = ScoreResult([], [])
        tick(sum(len(pairs[k][1]) for k in too_long))  # done (refused): the bar reaches 100 %
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            keep = max(len(pairs[k][1]) for k in idx)
            if keep == 0:
                for k in idx:
                    out[k] = ScoreResult([], [])
                continue
            ids, mask, pos = self._left_pad([pairs[k][0] + pairs[k][1] for k in idx])
            # Left padding puts every continuation at the end: only the last keep+1 logits matter.
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                logits_to_keep=keep + 1).logits.float()
            logp = torch.log_softmax(logits[:, :-1, :], dim=-1)  # position p predicts p+1
            for row, k in enumerate(idx):
                cont = pairs[k][1]
                if not cont:
                    out[k] = ScoreResult([], [])
                    continue
                lp = logp[row, keep - len(cont) :]
                target = torch.tensor(cont, device=lp.device)
                vals = lp.gather(1, target[:, None])[:, 0].tolist()
                hits = (lp.argmax(-1) == target).tolist()
                out[k] = ScoreResult(vals, hits)
            tick(sum(len(pairs[k][1]) for k in idx))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> int:
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sp, si = probs.sort(descending=True)
        keep = sp.cumsum(-1) - sp < top_p  # smallest set whose mass reaches top_p
        probs = torch.zeros_like(probs).scatter(0, si[keep], sp[keep])
    return int(torch.multinomial(probs.cpu(), 1, generator=gen))


def _no_tick(n: int) -> None:
    pass


def _plain_cache(cache: Any) -> bool:
    """A cache whose layers are plain full-attention key/value tensors (rows can be stacked)."""
    return type(cache) is DynamicCache and all(type(layer) is DynamicLayer
                                               for layer in cache.layers)


def _lpad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zero-pad `t` on the left of `dim` up to `width` (masked columns: their values never count)."""
    extra = width - t.shape[dim]
    if extra == 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t.new_zeros(shape), t], dim)


def _stack_caches(cache: Any, mask: torch.Tensor, new: Any, new_mask: torch.Tensor
                  ) -> torch.Tensor:
    """Append `new`'s rows to `cache` in place, right-aligned; returns the stacked mask."""
    width = max(mask.shape[1], new_mask.shape[1])
    for layer, add in zip(cache.layers, new.layers, strict=True):
        layer.keys = torch.cat([_lpad(layer.keys, width, 2), _lpad(add.keys, width, 2)])
        layer.values = torch.cat([_lpad(layer.values, width, 2), _lpad(add.values, width, 2)])
    return torch.cat([_lpad(mask, width, 1), _lpad(new_mask, width, 1)])
