import json

import pytest

from evalharness.store import Manifest, RunLockedError, RunStore
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


def test_manifest_round_trips_keeping_fields_it_does_not_know(tmp_path):
    written = {"run_id": "run", "params": 5, "from_a_newer_version": {"x": [1, 2]}}
    with RunStore(tmp_path, "run") as st:
        st.write_manifest(written)
        m = st.read_manifest()
        assert (m.run_id, m.params) == ("run", 5)
        st.write_manifest(m.to_dict())
        assert st.read_manifest().to_dict() == written


def test_a_manifest_is_read_into_typed_fields_from_its_spec_and_plan():
    m = Manifest.from_dict({
        "run_id": "r", "model": "m", "task": "t", "status": "complete", "params": 7,
        "plan": {"budgets": [0, 8], "n": 4, "levels": 2},
        "spec": {"task": {"answer_type": "integer", "answer_regex": "(\\d+)",
                          "answer_fallback": True, "informative": "x", "exact_match": {"a": 1}},
                 "generation": {"temperature": 0.7, "top_p": 0.9},
                 "format": {"think_end": "</think>"}, "engine": {"settings": {"dtype": "f32"}}},
    })
    assert (m.budgets, m.n, m.levels, m.status, m.params) == ((0, 8), 4, 2, "complete", 7)
    assert (m.answer_type, m.answer_regex, m.answer_fallback) == ("integer", "(\\d+)", True)
    assert (m.informative, m.exact_match, m.format) == ("x", {"a": 1}, {"think_end": "</think>"})
    assert (m.temperature, m.top_p, m.engine_settings) == (0.7, 0.9, {"dtype": "f32"})


def test_a_manifest_from_before_the_spec_reads_its_legacy_settings():
    m = Manifest.from_dict({"model": "m", "answer_type": "number",
                            "settings": {"answer_regex": "r", "sweep": {"temperature": 0.5}}})
    assert (m.answer_type, m.answer_regex, m.temperature, m.top_p) == ("number", "r", 0.5, 1.0)
    assert m.spec == {"answer_regex": "r", "sweep": {"temperature": 0.5}}  # what labels compare
    assert (m.budgets, m.n, m.levels, m.status, m.family_or_model) == ((), None, None, "unknown", "m")


def test_an_empty_manifest_is_falsy_and_has_defaults():
    assert not Manifest.from_dict({}) and Manifest.from_dict({"run_id": "r"})
    assert Manifest().answer_type == "string" and Manifest().format is None


@pytest.mark.parametrize("damage,why", [
    ({"plan": {"budgets": [0, 10**20], "n": 1, "levels": 1}}, "plan.budgets"),
    ({"plan": {"budgets": [0, 10_000_001], "n": 1, "levels": 1}}, "plan.budgets"),
    ({"plan": {"budgets": [0], "n": 10**30, "levels": 1}}, "plan.n"),
    ({"params": 10**400}, "params is out of range"),
])
def test_a_manifest_with_an_out_of_range_value_is_skipped_with_a_warning(
        tmp_path, caplog, damage, why):
    from evalharness.store import run_dirs

    for name in ("good", "bad"):
        with RunStore(tmp_path, name) as st:
            st.append([rec("p1", 0, 0)])
            st.write_manifest({"run_id": name, "train_flops": 6 * 10**20,  # > int64: fine
                               "plan": {"budgets": [0], "n": 1, "levels": 1},
                               **(damage if name == "bad" else {})})
    assert [d.name for d in run_dirs(tmp_path)] == ["good"]
    assert f"damaged manifest ({why}" in caplog.text and "run skipped" in caplog.text


@pytest.mark.parametrize("field,value", [("budget", 10**20), ("budget", 10_000_001),
                                         ("sample", -1), ("seed", 10**19),
                                         ("answer_ids", [10**19])])
def test_a_record_with_an_out_of_range_value_is_skipped_with_a_warning(
        tmp_path, caplog, field, value):
    from evalharness.store import Health, read_samples

    with RunStore(tmp_path, "run") as st:
        st.append([rec("p1", 0, 0), rec("p2", 0, 0)])
    row = rec("p3", 0, 0).to_json()
    row[field] = value
    with open(st.samples, "a") as f:
        f.write(json.dumps(row) + "\n")
    health = Health()
    df = read_samples(st.samples, health)
    assert sorted(df["problem_id"]) == ["p1", "p2"] and len(health.bad_lines) == 1
    assert "skipped an invalid record" in caplog.text and "out of range" in caplog.text
