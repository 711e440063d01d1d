"""Continuous batching in the transformers engine: same outputs as static batches, less work."""

import json
from pathlib import Path

import pytest

from evalharness.engines.hf import HFEngine
from evalharness.progress import generated_tokens
from evalharness.types import GenRequest

ADD = [json.loads(x) for x in
       (Path(__file__).parents[1] / "tasks/data/add_sweep.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def engines(largest):
    return (HFEngine(largest.path, batch_size=4, batching="static"),
            HFEngine(largest.path, batch_size=4, batching="continuous"))


def mixed_requests(tok, n=24, long=128, **kw):
    """n prompts of different lengths; every other one may write `long` tokens, the rest 4."""
    rows = ADD[::11][:n]
    return [GenRequest(tok.encode(r["prompt"] + "<think>"), 4 if k % 2 else long, **kw)
            for k, r in enumerate(rows)]


def run(engine, reqs):
    before = engine.counters.copy()
    ticks: list[int] = []
    out = engine.generate(reqs, progress=ticks.append)
    return out, engine.counters - before, ticks


@pytest.fixture(scope="module")
def mixed_runs(engines):
    """(outputs, forward-pass counters, progress ticks) of each engine on the mixed workload."""
    reqs = mixed_requests(engines[0].tokenizer)
    return [run(eng, reqs) for eng in engines]


def test_continuous_equals_static_on_mixed_lengths_with_fewer_forward_passes(mixed_runs):
    (want, s_work, _), (got, c_work, _) = mixed_runs
    lengths = {len(c[0].token_ids) for c in got}
    assert max(lengths) > 4 * min(lengths)  # the workload really mixes short and long rows
    for w, g in zip(want, got, strict=True):
        assert g[0].token_ids == w[0].token_ids
        assert (g[0].finish_reason, g[0].stop_id, g[0].text) == \
            (w[0].finish_reason, w[0].stop_id, w[0].text)
        assert g[0].logprobs == pytest.approx(w[0].logprobs, abs=1e-4)
    # the behaviour that matters: no decode step spent on a finished row
    assert c_work["decode_steps"] + c_work["prefills"] < s_work["decode_steps"] + s_work["prefills"]
    assert c_work["decode_rows"] < 0.8 * s_work["decode_rows"]
    assert c_work["decode_rows"] == sum(len(c[0].token_ids) + (c[0].stop_id is not None) - 1
                                        for c in got)


def test_seeded_samples_do_not_depend_on_batch_size_or_neighbours(largest):
    probe = [GenRequest([*range(3, 9)], 24, temperature=1.0, seed=7, n=3)]
    tok_engine = HFEngine(largest.path, batch_size=1)
    reqs = mixed_requests(tok_engine.tokenizer, n=12, long=32, temperature=0.9, top_p=0.95,
                          seed=11)
    results = []
    for bs in (1, 4, 64):
        eng = tok_engine if bs == 1 else HFEngine(largest.path, batch_size=bs)
        alone = eng.generate(probe)
        crowd = eng.generate(reqs[:6] + probe + reqs[6:])
        assert [c.token_ids for c in crowd[6]] == [c.token_ids for c in alone[0]]
        results.append([[c.token_ids for c in cs] for cs in crowd])
    assert results[0] == results[1] == results[2]
    assert len({tuple(x[0]) for x in results[0]}) > 3  # sampled, not greedy copies


def test_progress_ticks_sum_to_decoded_tokens_per_step(mixed_runs):
    for out, work, ticks in mixed_runs:
        assert sum(ticks) == generated_tokens(out)
        # one tick per step: a step decodes every row that is still running, one token each
        assert work["decode_steps"] <= len(ticks) <= work["decode_steps"] + work["prefills"]
        assert max(ticks) <= 4  # one tick per step, at most one token per batch row


def test_over_long_prompt_is_an_error_completion_beside_normal_rows(largest):
    eng = HFEngine(largest.path, batch_size=2)
    tok = eng.tokenizer
    ok = GenRequest(tok.encode(ADD[0]["prompt"] + "<think>"), 8)
    long = GenRequest([5] * (eng.max_model_len - 3), 8)
    out = eng.generate([ok, long, ok, GenRequest(ok.prompt_ids, 0)])
    assert out[1][0].finish_reason.startswith("error: prompt of")
    assert out[0][0].token_ids == out[2][0].token_ids and out[0][0].token_ids
    assert out[3][0].token_ids == [] and out[3][0].finish_reason == "length"


def test_score_progress_counts_continuation_tokens(engines):
    _, eng = engines
    pairs = [([3, 4, 5], [6, 7]), ([3] * 10, [4]), ([3] * 600, [4, 5, 6])]
    ticks: list[int] = []
    res = eng.score(pairs, progress=ticks.append)
    assert sum(ticks) == 6 and res[2].logprobs == []
