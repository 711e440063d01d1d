"""The transformers engine: batched decoding with left padding, a KV cache and per-row seeds.

We decode with our own loop instead of `model.generate` for two reasons: every row samples from
its own `torch.Generator` (so a sample does not depend on which other rows share its batch), and
we need the log-prob of every generated token in one consistent form with `score`.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Sequence

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from evalharness.engines.base import (
    DEFAULT_DTYPE,
    DEFAULT_SEED,
    check_model_source,
    load_error,
    resolve_dtype,
    strip_stop,
)
from evalharness.types import Completion, GenRequest, ScoreResult

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class HFEngine:
    name = "hf"
    version = transformers.__version__
    OPTIONS = frozenset({"device", "dtype", "batch_size", "revision", "trust_remote_code",
                         "max_model_len", "seed"})

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
    ) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        device_kind = torch.device(self.device).type
        resolved = resolve_dtype(dtype, device_kind)
        self.batch_size = batch_size
        # Sampled rows without a seed of their own draw one from here: reproducible per engine
        # seed, as vLLM's `LLM(seed=...)` makes its unseeded requests.
        self._rng = random.Random(seed)
        check_model_source(model, revision)
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
    def generate(self, requests: Sequence[GenRequest]) -> list[list[Completion]]:
        rows = [(i, j, r) for i, r in enumerate(requests) for j in range(r.n)]
        # Similar lengths together: less padding. Order never changes a row's result.
        rows.sort(key=lambda x: (len(x[2].prompt_ids), x[2].max_tokens))
        out: list[list[Completion | None]] = [[None] * r.n for r in requests]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            ok = [x for x in chunk if self._fits(x[2])]
            for i, j, r in chunk:
                if not self._fits(r):
                    out[i][j] = Completion([], "", [], f"error: prompt of {len(r.prompt_ids)} "
                                           f"tokens + {r.max_tokens} new exceeds {self.max_model_len}")
            if ok:
                for (i, j, _), c in zip(ok, self._generate_batch(ok), strict=True):
                    out[i][j] = c
        return out  # type: ignore[return-value]

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

    @torch.inference_mode()
    def _generate_batch(self, rows: list[tuple[int, int, GenRequest]]) -> list[Completion]:
        reqs = [r for _, _, r in rows]
        B = len(reqs)
        ids, mask, pos = self._left_pad([r.prompt_ids for r in reqs])
        gens = []
        for _, j, r in rows:
            g = None
            if r.temperature > 0:
                seed = r.seed if r.seed is not None else self._rng.getrandbits(32)
                g = torch.Generator().manual_seed(seed * 1000003 + j)
            gens.append(g)
        tokens: list[list[int]] = [[] for _ in range(B)]
        lps: list[list[float]] = [[] for _ in range(B)]
        finish = ["length"] * B
        active = [r.max_tokens > 0 for r in reqs]
        # Like vLLM, generation always ends at <eos>; the stop token is reported, not kept.
        stop_sets = [set(r.stop_ids) | {self.tokenizer.eos_token_id} for r in reqs]
        # only the last position's logits are needed (a 150K vocabulary makes the rest costly)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                         logits_to_keep=1)
        cache, logits = out.past_key_values, out.logits[:, -1, :].float()
        next_pos = pos[:, -1:] + 1
        for _ in range(max(r.max_tokens for r in reqs)):
            if not any(active):
                break
            logp = torch.log_softmax(logits, dim=-1)
            nxt = logp.argmax(-1)
            for b in range(B):
                if active[b] and reqs[b].temperature > 0:
                    nxt[b] = _sample(logits[b], reqs[b].temperature, reqs[b].top_p, gens[b])
            chosen = logp.gather(1, nxt[:, None])[:, 0].tolist()
            nxt_list = nxt.tolist()
            for b in range(B):
                if not active[b]:
                    continue
                t = nxt_list[b]
                tokens[b].append(t)
                lps[b].append(chosen[b])
                r = reqs[b]
                if t in stop_sets[b] or (r.stop_strs and self._hit_stop_str(tokens[b], r)):
                    active[b], finish[b] = False, "stop"
                elif len(tokens[b]) >= r.max_tokens:
                    active[b] = False
            if not any(active):
                break
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=mask.device)], 1)
            out = self.model(input_ids=nxt[:, None].to(self.device), attention_mask=mask,
                             position_ids=next_pos, past_key_values=cache, use_cache=True)
            cache, logits = out.past_key_values, out.logits[:, -1, :].float()
            next_pos = next_pos + 1
        result = []
        for b in range(B):
            toks, lp, stop_id = strip_stop(tokens[b], lps[b], stop_sets[b])
            text = self.tokenizer.decode(toks, skip_special_tokens=False)
            result.append(Completion(toks, text, lp, finish[b], stop_id))
        return result

    def _hit_stop_str(self, toks: list[int], r: GenRequest) -> bool:
        tail = self.tokenizer.decode(toks[-32:], skip_special_tokens=False)
        return any(s in tail for s in r.stop_strs)

    # -- scoring ---------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[ScoreResult]:
        order = sorted(range(len(pairs)), key=lambda k: len(pairs[k][0]) + len(pairs[k][1]))
        out: list[ScoreResult | None] = [None] * len(pairs)
        too_long = {k for k, (c, t) in enumerate(pairs)
                    if self.max_model_len and len(c) + len(t) > self.max_model_len}
        order = [k for k in order if k not in too_long]  # like vLLM: no score past the context
        for k in too_long:
            out[k] = ScoreResult([], [])
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
