"""Budget forcing and the one-pass sweep on the real zoo with the transformers engine."""

import dataclasses

import pytest
from helpers import as_records, assert_same_records

from evalharness.formats import FORMATS
from evalharness.sweep import SweepConfig, Sweeper

BUDGETS = (0, 4, 8, 16, 32, 64, 128)


def run(engine, task, cfg, limit=24, start=0):
    probs = list(task.problems[start : start + limit])
    prompts = [engine.tokenizer.encode(p.prompt + "<think>") for p in probs]
    meta = {"run_id": "t", "model": "m", "task": task.name}
    return [r for unit in Sweeper(engine, FORMATS["zoo"], cfg).run(probs, prompts, meta) for r in unit]


def key(r):
    return (r.problem_id, r.sample, r.budget, r.extensions)


def assert_same_records_in_order(a, b, tol=1e-5):
    assert [key(r) for r in a] == [key(r) for r in b]
    assert_same_records(as_records(a), as_records(b), tol=tol)


@pytest.fixture(scope="module")
def mid_engine(zoo):
    from evalharness.engines.hf import HFEngine

    # a size whose forced answers vary with T, so the comparison has something to compare
    return HFEngine(zoo[len(zoo) // 2].path)


def test_one_pass_sweep_equals_independent_generations(hf_largest, add_task):
    cfg = SweepConfig(BUDGETS)
    one = run(hf_largest, add_task, cfg, limit=40, start=100)
    ind = run(hf_largest, add_task, dataclasses.replace(cfg, sweep="independent"), limit=40, start=100)
    assert_same_records_in_order(one, ind)
    assert len({r.answer for r in one}) > 5


def test_truncation_cuts_at_the_budget_and_natural_ends_stand(hf_largest, add_task):
    recs = run(hf_largest, add_task, SweepConfig(BUDGETS), limit=30, start=150)
    for r in recs:
        assert r.thinking_tokens <= r.budget
        if r.natural_thinking_tokens is not None and r.natural_thinking_tokens <= r.budget:
            assert not r.cut and r.thinking_tokens == r.natural_thinking_tokens
        else:
            assert r.cut and r.thinking_tokens == r.budget
    # past the natural end every budget gives the same answer (one shared prefix)
    by_problem = {}
    for r in recs:
        if not r.cut:
            by_problem.setdefault(r.problem_id, set()).add(r.answer)
    assert by_problem and all(len(a) == 1 for a in by_problem.values())


def test_reference_logprob_rises_with_thinking_budget(hf_largest, add_task):
    recs = run(hf_largest, add_task, SweepConfig((0, 128)), limit=40, start=200)
    lp = {b: sum(sum(r.ref_logprobs) for r in recs if r.budget == b) for b in (0, 128)}
    assert lp[128] > lp[0] + 10


def test_extend_mode_levels_nest_and_insert_the_extension(hf_largest, add_task):
    fmt = dataclasses.replace(FORMATS["zoo"], extension="9+9+9=27;")
    probs = list(add_task.problems[60:70])
    prompts = [hf_largest.tokenizer.encode(p.prompt + "<think>") for p in probs]
    cfg = SweepConfig((128,), mode="extend", max_extensions=2)
    meta = {"run_id": "t", "model": "m", "task": "add"}
    recs = [r for u in Sweeper(hf_largest, fmt, cfg).run(probs, prompts, meta) for r in u]
    assert len(recs) == len(probs) * 3
    for pid in {r.problem_id for r in recs}:
        levels = sorted((r for r in recs if r.problem_id == pid), key=lambda r: r.extensions)
        for a, b in zip(levels, levels[1:], strict=False):
            assert b.thinking.startswith(a.thinking)
        assert levels[1].thinking.count("9+9+9=27;") >= 1 or levels[1].cut


def test_best_of_n_is_seeded_and_independent_of_batch_composition(mid_engine, add_task):
    cfg = SweepConfig((32,), n=4, temperature=3.0, seed=7)
    a = run(mid_engine, add_task, cfg, limit=12, start=120)
    b = run(mid_engine, add_task, cfg, limit=12, start=120)
    alone = run(mid_engine, add_task, cfg, limit=1, start=125)
    assert [r.thinking + r.answer for r in a] == [r.thinking + r.answer for r in b]
    assert len(a) == 12 * 4
    same = [r for r in a if r.problem_id == alone[0].problem_id]
    assert [r.thinking + r.answer for r in same] == [r.thinking + r.answer for r in alone]
    assert len({r.thinking + r.answer for r in a}) > 12  # samples differ from each other


def test_greedy_with_n_above_one_is_refused():
    with pytest.raises(ValueError, match="needs sampling"):
        SweepConfig((8,), n=4, temperature=0.0)


def test_gold_trace_is_on_sample_zero_of_every_budget_and_the_same_for_each(hf_largest, add_task):
    # on every budget, not only the largest: a record must not depend on which other budgets
    # its run asked for (adding a budget later extends the run record by record)
    recs = run(hf_largest, add_task, SweepConfig((0, 128)), limit=5, start=250)
    gold = [r for r in recs if r.gold_think_hits is not None]
    assert [r.budget for r in gold] == [0, 128] * 5
    for a, b in zip(gold[::2], gold[1::2], strict=True):
        assert a.gold_think_logprobs == b.gold_think_logprobs
    for r in gold:
        p = next(p for p in add_task.problems if p.id == r.problem_id)
        assert len(r.gold_think_hits) == len(p.gold_thinking) + 1  # + </think>
        assert len(r.gold_answer_hits) == len(p.reference) + 1  # + <eos>
