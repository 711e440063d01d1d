import json

import pytest

from evalharness.store import RunLockedError, RunStore, run_id_for
from evalharness.types import SampleRecord


def rec(pid: str, sample: int, budget: int) -> SampleRecord:
    return SampleRecord(
        run_id="r", model="m", task="t", problem_id=pid, sample=sample, seed=1, budget=budget,
        extensions=0, thinking_tokens=budget, natural_thinking_tokens=None, cut=True,
        thinking="x" * budget, answer="1", answer_ids=[1], answer_logprobs=[-0.1],
        reference="1", ref_ids=[1], ref_logprobs=[-0.1], ref_hits=[True], prompt_tokens=3,
        generated_tokens=budget + 2, finish_reason="stop", time_s=0.0,
    )


def test_run_id_is_stable_and_changes_with_any_setting():
    s = {"model": "zoo/a", "task": "add", "budgets": [0, 8], "seed": 0}
    assert run_id_for(s) == run_id_for(dict(s))
    assert run_id_for(s) != run_id_for({**s, "seed": 1})
    assert run_id_for(s).startswith("add-zoo-a-")


def test_resume_keeps_whole_units_and_drops_a_torn_last_line(tmp_path):
    with RunStore(tmp_path, "run") as st:
        st.append([rec("p1", 0, 0), rec("p1", 0, 8)])
        st.append([rec("p2", 0, 0), rec("p2", 0, 8)])
    # a crash mid-write: half a unit, then half a line
    with open(st.samples, "a") as f:
        f.write(json.dumps(rec("p3", 0, 0).to_json()) + "\n")
        f.write('{"run_id": "r", "problem_id": "p3", "sam')
    with RunStore(tmp_path, "run") as st:
        assert st.done_units(rows_per_unit=2) == {("p1", 0), ("p2", 0)}
        assert len(st.read()) == 4  # the partial unit and the torn line are gone
        st.append([rec("p3", 0, 0), rec("p3", 0, 8)])
        assert st.done_units(rows_per_unit=2) == {("p1", 0), ("p2", 0), ("p3", 0)}
    rows = [json.loads(x) for x in st.samples.read_text().splitlines()]
    keys = [(r["problem_id"], r["budget"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6


def test_a_second_writer_is_refused(tmp_path):
    with RunStore(tmp_path, "run"):
        with pytest.raises(RunLockedError, match="another evalharness process"):
            with RunStore(tmp_path, "run"):
                pass


def test_manifest_round_trips(tmp_path):
    with RunStore(tmp_path, "run") as st:
        st.write_manifest({"run_id": "run", "params": 5})
        assert st.read_manifest() == {"run_id": "run", "params": 5}
