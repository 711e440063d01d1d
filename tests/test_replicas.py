"""Data-parallel replicas on Ray: same records as one engine, work split across processes."""

from __future__ import annotations

import json
import os

import pytest
from helpers import assert_same_records, read_records

from evalharness.engines.base import EngineError
from evalharness.engines.replicas import core_groups, shard
from evalharness.types import GenRequest

CORES = len(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(CORES < 2, reason=f"replicas need 2 CPU cores, have {CORES}")


@pytest.fixture(scope="module")
def ray_session():
    # `make install` always installs ray (extra 'ray'): a missing one is an install bug, not a skip
    import ray

    yield
    ray.shutdown()


def test_core_groups_split_cores_contiguously_and_evenly():
    assert core_groups([3, 0, 1, 2, 4], 2) == [[0, 1, 2], [3, 4]]
    assert core_groups([0, 1], 2) == [[0], [1]]
    with pytest.raises(EngineError, match="3 replicas on 2 CPU cores"):
        core_groups([0, 1], 3)


def test_shard_splits_in_contiguous_ranges_of_about_equal_work():
    costs = [5, 1, 1, 1, 4, 4, 2, 3, 3]  # total 24
    parts = shard(costs, 3)
    assert [k for p in parts for k in p] == list(range(len(costs)))  # every item once, in order
    loads = [sum(costs[k] for k in p) for p in parts]
    assert max(loads) - min(loads) <= max(costs)
    assert parts == [[0, 1, 2, 3], [4, 5], [6, 7, 8]] and loads == [8, 8, 8]
    assert shard([1, 1], 4) == [[], [0], [], [1]]  # fewer items than replicas: some idle
    assert shard([], 2) == [[], []]


def test_load_engine_rejects_zero_replicas(largest):
    from evalharness.engines import load_engine

    with pytest.raises(EngineError, match="replicas must be >= 1"):
        load_engine("hf", largest.path, replicas=0)


def _eval(results, engine, replicas, **sweep):
    from evalharness.runner import EvalOptions, run_eval

    opts = EvalOptions(models="zoo/arith-h128-s0", task="add_sweep", budgets=(4, 16, 64), **sweep,
                       engine=engine, results=results, limit=16, replicas=replicas,
                       engine_options={"dtype": "float32"}, progress=False)
    return run_eval(opts, log=lambda *_: None)


@needs_two_cores
def test_two_hf_replicas_write_the_same_records_as_one_engine(tmp_path, ray_session):
    one, two = tmp_path / "one", tmp_path / "two"
    d1 = _eval(one, "hf", 1)[0].dir
    d2 = _eval(two, "hf", 2)[0].dir
    assert d1.name == d2.name  # replicas do not change results, so not the run id either
    assert_same_records(read_records(one), read_records(two), tol=1e-4)
    manifest = json.loads((d2 / "manifest.json").read_text())
    assert manifest["replicas"] == 2 and manifest["status"] == "complete"


@needs_two_cores
def test_seeded_samples_do_not_depend_on_which_replica_ran_them(tmp_path, ray_session):
    kw = dict(n=4, temperature=0.8, seed=7)
    _eval(tmp_path / "one", "hf", 1, **kw)
    _eval(tmp_path / "two", "hf", 2, **kw)
    a, b = read_records(tmp_path / "one"), read_records(tmp_path / "two")
    assert_same_records(a, b, tol=1e-4)
    # and sampling really happened: the 4 samples of a problem are not all the same trace
    traces = {}
    for (pid, *_), r in a.items():
        traces.setdefault(pid, set()).add(r["answer"])
    assert any(len(t) > 1 for t in traces.values())


@needs_two_cores
@pytest.mark.vllm
def test_two_vllm_replicas_match_the_in_process_engine(largest, vllm_pool, ray_session):
    from evalharness.engines.replicas import ReplicatedEngine
    from evalharness.formats import FORMATS, render_prompt
    from evalharness.tasks import load_task

    task = load_task("add5")
    eng = ReplicatedEngine("vllm", largest.path, 2, dtype="float32", max_model_len=512, seed=0)
    try:
        assert eng.name == "vllm" and eng.max_model_len == 512
        tok = eng.tokenizer
        reqs = [GenRequest(tok.encode(render_prompt(p, FORMATS["zoo"], tok)), 60)
                for p in task.problems[:24]]
        got = eng.generate(reqs)
        pairs = [(r.prompt_ids, c[0].token_ids) for r, c in zip(reqs, got, strict=True)]
        scores = eng.score(pairs)
    finally:
        eng.close()
    ref = vllm_pool.get(largest.path)
    want = ref.generate(reqs)
    assert [c[0].token_ids for c in got] == [c[0].token_ids for c in want]
    for g, w in zip(got, want, strict=True):
        assert g[0].logprobs == pytest.approx(w[0].logprobs, abs=1e-4)
    for s, c in zip(scores, got, strict=True):  # score re-reads the greedy tokens: all argmax
        assert s.logprobs == pytest.approx(c[0].logprobs, abs=1e-4) and all(s.hits)


@needs_two_cores
def test_replicas_are_reused_for_the_next_model_and_a_bad_model_fails_clearly(
    zoo, tmp_path, ray_session
):
    from evalharness.engines.replicas import ReplicatedEngine

    small = ReplicatedEngine("hf", zoo[0].path, 2, dtype="float32")
    actors = small.actors
    reqs = [GenRequest(small.tokenizer.encode("12+34=<think>"), 8)] * 3
    first = small.generate(reqs)
    small.close()
    big = ReplicatedEngine("hf", zoo[-1].path, 2, dtype="float32")
    try:
        assert big.actors is actors  # same processes, new model
        assert big.generate(reqs) != first  # ... and really the other model now
    finally:
        big.close()
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EngineError, match="replica failed to load"):
        ReplicatedEngine("hf", str(tmp_path), 2)
    again = ReplicatedEngine("hf", zoo[0].path, 2, dtype="float32")  # the pool survived
    try:
        assert again.generate(reqs) == first
    finally:
        again.close()
