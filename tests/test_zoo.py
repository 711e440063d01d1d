"""The shipped zoo (v2): manifest, one attention shape, seeds, tokenizer, and every checkpoint
loading offline in transformers and vLLM with equal greedy tokens."""

import hashlib
import json
import re
from collections import Counter

import pytest
from transformers import AutoTokenizer
from zoo_parity import greedy_tokens_both_engines

from evalharness.zoo import ZOO_DIR, resolve_models, zoo_manifest

MODELS = zoo_manifest()["models"]
FIELDS = ("params", "non_embedding_params", "layers", "hidden", "intermediate", "heads",
          "head_dim", "seed", "steps", "batch", "lr", "tokens", "train_flops", "sha256", "size")


def test_manifest_describes_ten_sizes_three_seeds_one_recipe_over_30x_parameters():
    for m in MODELS:
        assert all(m.get(k) is not None for k in FIELDS), m
        assert m["train_flops"] == 6 * m["params"] * m["tokens"]
    by_size = Counter(m["size"] for m in MODELS)
    assert len(by_size) >= 10 and min(by_size.values()) >= 3
    params = sorted({m["params"] for m in MODELS})
    assert len(params) == len(by_size)  # seeds of one size have identical shapes
    assert params[-1] / params[0] >= 30
    # one recipe: the same steps, batch and learning rate for every size and seed
    assert len({(m["steps"], m["batch"], m["lr"]) for m in MODELS}) == 1
    # three distinct seeds per size, and different seeds give different weights
    for size in by_size:
        seeds = [m for m in MODELS if m["size"] == size]
        assert len({m["seed"] for m in seeds}) == len(seeds)
        assert len({m["sha256"] for m in seeds}) == len(seeds)


def test_every_size_shares_the_attention_shape():
    """Sizes differ in residual/MLP width only: the number of heads, the head size and the
    depth are the same, read from each checkpoint's own config (not the manifest)."""
    shapes = set()
    for m in MODELS:
        cfg = json.loads((ZOO_DIR / m["path"] / "config.json").read_text())
        shapes.add((cfg["num_hidden_layers"], cfg["num_attention_heads"],
                    cfg["num_key_value_heads"], cfg["head_dim"]))
        assert cfg["hidden_size"] == m["hidden"] and cfg["intermediate_size"] == 4 * m["hidden"]
    assert len(shapes) == 1, shapes
    assert next(iter(shapes))[3] == 32  # vLLM's CPU kernel has no smaller head size


def test_checkpoints_match_their_manifest_hashes_and_fit_the_size_budget():
    total = sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file())
    assert total <= 24 * 2**20
    for m in MODELS:
        data = (ZOO_DIR / m["path"] / "model.safetensors").read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["sha256"]


def test_short_names_resolve():
    assert [r.name for r in resolve_models("zoo")] == [m["name"] for m in MODELS]
    assert resolve_models("zoo/arith-h128-s0")[0].path.endswith("arith-h128-s0")
    seed1 = resolve_models("zoo/seed1")
    assert len(seed1) == len({m["size"] for m in MODELS})
    assert {r.seed for r in seed1} == {1} and len({r.size for r in seed1}) == len(seed1)
    with pytest.raises(ValueError, match="the zoo has"):
        resolve_models("zoo/nope")
    with pytest.raises(ValueError, match="no zoo checkpoints with seed 9"):
        resolve_models("zoo/seed9")


def test_tokenizer_is_character_level_with_single_think_tokens(largest):
    tok = AutoTokenizer.from_pretrained(largest.path)
    assert tok.padding_side == "left"
    assert len(tok.encode("<think>")) == 1 and len(tok.encode("</think>")) == 1
    text = "12+34=<think>2+4+0=06;</think>46"
    ids = tok.encode(text)
    assert len(ids) == len("12+34=2+4+0=06;46") + 2
    assert tok.decode(ids) == text


@pytest.mark.vllm
@pytest.mark.parametrize("idx", range(len(MODELS)), ids=[m["path"] for m in MODELS])
def test_every_checkpoint_gives_equal_greedy_tokens_in_transformers_and_vllm(idx, zoo, vllm_pool):
    hf, vl, texts = greedy_tokens_both_engines(zoo[idx].path, vllm_pool)
    assert vl == hf
    # every checkpoint has learnt the format: thinking opens with a fixed-width digit step, and
    # most scratchpads end with the marker within 60 tokens (the smallest may ramble on)
    assert all(re.match(r"\d[+*]\d\+\d=\d\d;", t) for t in texts), texts
    assert sum("</think>" in t for t in texts) >= 6, texts


def test_every_recipe_size_builds_a_valid_config_with_one_attention_shape():
    # transformers validates configs strictly; a size that fails here would only fail deep
    # inside `make zoo`'s worker processes
    from transformers import LlamaForCausalLM

    from evalharness.zoo.tokenizer import build_tokenizer
    from evalharness.zoo.train import SIZES, model_config

    tok = build_tokenizer()
    params = []
    for size in (s for s in SIZES if s.seed == 0):
        model = LlamaForCausalLM(model_config(size, len(tok), tok))
        assert (model.config.head_dim, model.config.num_attention_heads) == (32, 4)
        params.append(sum(p.numel() for p in model.parameters()))
    assert params == sorted(params) and params[-1] / params[0] >= 30
