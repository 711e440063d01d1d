"""Greedy tokens of one zoo checkpoint in transformers and in vLLM, on the first add5 prompts
(the check every shipped and every kept checkpoint has to pass)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from evalharness.types import GenRequest

ADD5 = [json.loads(x) for x in
        (Path(__file__).parents[1] / "tasks/data/add5.jsonl").read_text().splitlines()]


def greedy_tokens_both_engines(path: str, vllm_pool, n: int = 8, max_new: int = 60):
    """(transformers token ids, vLLM token ids, transformers texts) for `n` add5 prompts."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    probs = ADD5[:n]
    batch = tok([p["prompt"] + "<think>" for p in probs], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=max_new, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    new = out[:, batch["input_ids"].shape[1]:]
    hf = [[t for t in row.tolist() if t != tok.pad_token_id] for row in new]
    engine = vllm_pool.get(path)
    reqs = [GenRequest(tok.encode(p["prompt"] + "<think>"), max_tokens=max_new,
                       stop_ids=(tok.eos_token_id,)) for p in probs]
    vl = [c[0].token_ids + ([c[0].stop_id] if c[0].stop_id is not None else [])
          for c in engine.generate(reqs)]
    return hf, vl, tok.batch_decode(new, skip_special_tokens=False)
