import json

import pytest

from evalharness.store import RunLockedError, RunStore
from evalharness.types import SampleRecord


def rec(pid: str, sample: int, budget: int) -> SampleRecord:
    return SampleRecord(
        run_id="r", model="m", task="t", problem_id=pid, sample=sample, seed=1, budget=budget,
        extensions=0, thinking_tokens=budget, natural_thinking_tokens=None, cut=True,
        thinking="x" * budget, answer="1", answer_ids=[1], answer_logprobs=[-0.1],
        reference="1", ref_ids=[1], ref_logprobs=[-0.1], ref_hits=[True], prompt_tokens=3,
        generated_tokens=budget + 2, finish_reason="stop", time_s=0.0,
    )


def test_resume_keeps_every_whole_record_and_drops_a_torn_last_line(tmp_path):
    with RunStore(tmp_path, "run") as st:
        st.append([rec("p1", 0, 0), rec("p1", 0, 8)])
        st.append([rec("p2", 0, 0), rec("p2", 0, 8)])
    # a crash mid-write: one whole record of p3, then half a line
    with open(st.samples, "a") as f:
        f.write(json.dumps(rec("p3", 0, 0).to_json()) + "\n")
        f.write('{"run_id": "r", "problem_id": "p3", "sam')
    with RunStore(tmp_path, "run") as st:
        assert st.done_keys() == {("p1", 0, 0, 0), ("p1", 0, 8, 0), ("p2", 0, 0, 0),
                                  ("p2", 0, 8, 0), ("p3", 0, 0, 0)}
        st.append([rec("p3", 0, 8)])
        assert len(st.done_keys()) == 6
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
