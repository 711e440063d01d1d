from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalharness.flops import (
    RULE_ATTENTION,
    RULE_FALLBACK,
    add_flops,
    attention_width,
    non_embedding_params,
    record_flops,
)

# Llama-2-7B's published shape; its total parameter count is 6,738,415,616.
LLAMA2_7B = {
    "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
    "num_key_value_heads": 32, "head_dim": 128, "intermediate_size": 11008,
    "vocab_size": 32000, "tie_word_embeddings": False,
}


def zoo_config(name: str) -> dict:
    from evalharness.zoo import ZOO_DIR

    return json.loads((Path(ZOO_DIR) / name / "config.json").read_text())


def hand_count(n_params: int, layers: int, d_attn: int, prompt: int, generated: int) -> int:
    """Token by token: each position pays 2N, and attends to every position up to itself."""
    total = 0
    for position in range(1, prompt + generated + 1):  # prefill positions, then generated ones
        total += 2 * n_params + 2 * layers * position * d_attn
    return total


def test_non_embedding_params_of_llama2_7b_is_total_minus_both_embeddings():
    ne = non_embedding_params(LLAMA2_7B)
    assert ne + 2 * 32000 * 4096 == 6_738_415_616
    assert attention_width(LLAMA2_7B) == 4096


def test_non_embedding_params_match_the_zoo_manifest():
    from evalharness.zoo import zoo_manifest

    for m in zoo_manifest()["models"]:
        assert non_embedding_params(zoo_config(m["path"])) == m["non_embedding_params"]


def test_grouped_query_attention_shrinks_k_and_v_only():
    gqa = {**LLAMA2_7B, "num_key_value_heads": 8}
    saved = 32 * 2 * 4096 * (32 - 8) * 128  # k and v projections, every layer
    assert non_embedding_params(LLAMA2_7B) - non_embedding_params(gqa) == saved
    assert attention_width(gqa) == attention_width(LLAMA2_7B)  # QK^T runs at query width


@pytest.mark.parametrize(
    ("config", "prompt", "generated"),
    [(LLAMA2_7B, 7, 5), (LLAMA2_7B, 1, 0), ("arith-h16-s0", 6, 40), ("arith-h128-s0", 12, 129)],
)
def test_record_flops_equal_a_token_by_token_hand_count_prefill_included(config, prompt, generated):
    cfg = zoo_config(config) if isinstance(config, str) else config
    n, d = non_embedding_params(cfg), attention_width(cfg)
    layers = cfg["num_hidden_layers"]
    got = record_flops(np.array([prompt]), np.array([generated]), n, layers, d)
    assert got[0] == hand_count(n, layers, d, prompt, generated)


def test_attention_term_dominates_the_zoo_at_long_thinking_but_not_at_short():
    cfg = zoo_config("arith-h16-s0")  # d_attn = 128 > hidden 16: attention is the big term
    n, d, layers = non_embedding_params(cfg), attention_width(cfg), cfg["num_hidden_layers"]
    short = record_flops([5], [3], n, layers, d)[0] / record_flops([5], [3], n)[0]
    long = record_flops([5], [500], n, layers, d)[0] / record_flops([5], [500], n)[0]
    assert short < 1.1 < 2 < long


def test_add_flops_uses_the_config_where_known_and_says_when_it_falls_back():
    records = pd.DataFrame(
        {
            "model": ["a", "a", "hub"],
            "params": [7e9, 7e9, 1e8],
            "prompt_tokens": [10, 10, 10],
            "generated_tokens": [5, 50, 5],
        }
    )
    models = pd.DataFrame({"model": ["a"], "config": [LLAMA2_7B], "non_embedding_params": [np.nan]})
    out = add_flops(records, models)
    n = non_embedding_params(LLAMA2_7B)
    assert out["flops"].iloc[1] == hand_count(n, 32, 4096, 10, 50)
    assert out["flops"].iloc[2] == 2 * 1e8 * 15
    assert out["flops_rule"].tolist() == [RULE_ATTENTION, RULE_ATTENTION, RULE_FALLBACK]
