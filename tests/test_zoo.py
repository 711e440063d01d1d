"""The shipped zoo: manifest, tokenizer, and every checkpoint loading offline in transformers."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from evalharness.zoo import ZOO_DIR, resolve_models, zoo_manifest

ADD5 = [json.loads(x) for x in (Path(__file__).parents[1] / "tasks/data/add5.jsonl").read_text().splitlines()]


def test_manifest_describes_a_family_spanning_25x_in_parameters(zoo):
    m = zoo_manifest()["models"]
    assert len(m) >= 6
    assert m[-1]["params"] / m[0]["params"] >= 25
    assert len({(x["steps"], x["batch"], x["tokens"], x["data_seed"]) for x in m}) == 1  # same data
    for x in m:
        assert x["train_flops"] == 6 * x["params"] * x["tokens"]
        assert x["head_dim"] == 32


def test_checkpoints_match_their_manifest_hashes_and_fit_the_size_budget(zoo):
    total = sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file())
    assert total <= 15 * 2**20
    for m in zoo_manifest()["models"]:
        data = (ZOO_DIR / m["path"] / "model.safetensors").read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["sha256"]


def test_short_names_resolve():
    assert [r.name for r in resolve_models("zoo")] == [m["name"] for m in zoo_manifest()["models"]]
    assert resolve_models("zoo/arith-h128")[0].path.endswith("arith-h128")
    with pytest.raises(ValueError, match="the zoo has"):
        resolve_models("zoo/nope")


def test_tokenizer_is_character_level_with_single_think_tokens(largest):
    tok = AutoTokenizer.from_pretrained(largest.path)
    assert tok.padding_side == "left"
    assert len(tok.encode("<think>")) == 1 and len(tok.encode("</think>")) == 1
    text = "12+34=<think>2+4+0=06;</think>46"
    ids = tok.encode(text)
    assert len(ids) == len("12+34=2+4+0=06;46") + 2
    assert tok.decode(ids) == text


@pytest.mark.parametrize("idx", range(8))
def test_every_checkpoint_loads_offline_and_answers_greedily(zoo, idx):
    if idx >= len(zoo):
        pytest.skip(f"the zoo has {len(zoo)} models")
    ref = zoo[idx]
    tok = AutoTokenizer.from_pretrained(ref.path)
    model = AutoModelForCausalLM.from_pretrained(ref.path)
    probs = ADD5[:8]
    batch = tok([p["prompt"] + "<think>" for p in probs], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=60, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=False)
    answers = [t.split("</think>")[-1].split("<eos>")[0] for t in texts]
    correct = sum(a == p["answer"] for a, p in zip(answers, probs, strict=True))
    # every size has learnt the format: a scratchpad of digit steps, then the end marker
    assert all("</think>" in t and "=" in t.split("</think>")[0] for t in texts), texts
    if ref is zoo[-1]:
        assert correct >= 7, list(zip(answers, [p["answer"] for p in probs], strict=True))
    if ref is zoo[0]:
        assert correct <= 2


def test_every_recipe_size_builds_a_valid_config_with_head_size_32():
    # transformers validates configs strictly (hidden divisible by heads); a size that fails
    # here would only fail deep inside `make zoo`'s worker processes
    from transformers import LlamaForCausalLM

    from evalharness.zoo.tokenizer import build_tokenizer
    from evalharness.zoo.train import SIZES, model_config

    tok = build_tokenizer()
    params = []
    for size in SIZES:
        model = LlamaForCausalLM(model_config(size, len(tok), tok))
        assert model.config.head_dim == 32
        params.append(sum(p.numel() for p in model.parameters()))
    assert params == sorted(params) and params[-1] / params[0] >= 25
