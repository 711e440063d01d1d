"""A run's identity is its inputs' content, never where they lie: the task data by a hash of
its rows, each record by a hash of its problem, a served model by its name and revision. So
the same command gives the same run from any clone or path spelling, copied results resume,
and a changed problem is never graded against records made for the old one."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from evalharness.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
ADD5 = REPO / "tasks" / "data" / "add5.jsonl"
MODEL = "zoo/arith-h16-s0"


def ev(results, *args, ok: bool = True):
    res = runner.invoke(app, ["eval", "--model", MODEL, "--task", "add5", "--budgets", "0",
                              "--results", str(results), "--no-progress", "--no-score", *args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def dry_run_id(results, *args) -> str:
    res = ev(results, "--dry-run", *args)
    return re.findall(r"run id: (\S+)", res.output)[-1]


def made(res) -> int:
    return sum(int(n) for n in re.findall(r"; (\d+) records made", res.output))


def rows_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_the_same_data_gives_the_same_run_id_from_any_folder_and_path_spelling(tmp_path,
                                                                               monkeypatch):
    one, two = tmp_path / "clone1" / "data", tmp_path / "clone2" / "data"
    for d in (one, two):
        d.mkdir(parents=True)
        shutil.copy(ADD5, d / "add5.jsonl")
    results = tmp_path / "results"
    monkeypatch.chdir(one)
    relative = dry_run_id(results, "--limit", "2", "--data-file", "add5.jsonl")
    absolute = dry_run_id(results, "--limit", "2", "--data-file", str(one / "add5.jsonl"))
    other_clone = dry_run_id(results, "--limit", "2", "--data-file", str(two / "add5.jsonl"))
    builtin = dry_run_id(results, "--limit", "2")  # the shipped file: the same rows
    assert relative == absolute == other_clone == builtin
    # what the id hashes is the content: one changed row anywhere (even past --limit) is
    # another data set and another run
    rows = rows_of(two / "add5.jsonl")
    rows[-1]["answer"] = str(int(rows[-1]["answer"]) + 1)
    (two / "add5.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert dry_run_id(results, "--limit", "2", "--data-file", str(two / "add5.jsonl")) != relative


def test_a_changed_reference_is_never_graded_against_records_made_for_the_old_one(tmp_path):
    """The repro: a local data file, --limit 6; one reference changed under the same path;
    --limit 10. The rerun is another run (the data's hash changed), whose records all carry
    the new reference; nothing is scored against the old one."""
    from evalharness.scoring import load_scores

    data = tmp_path / "data.jsonl"
    shutil.copy(ADD5, data)
    results = tmp_path / "results"
    first = ev(results, "--limit", "6", "--data-file", str(data))
    assert made(first) == 6
    rows = rows_of(data)
    changed = rows[2]
    new_ref = str(int(changed["answer"]) + 1)
    changed["answer"] = new_ref
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    second = ev(results, "--limit", "10", "--data-file", str(data))
    assert made(second) == 10  # regenerated, not resumed from the records of the old data
    runs = sorted((results / "runs").iterdir())
    assert len(runs) == 2
    latest = next(r for r in runs if len(rows_of(r / "samples.jsonl")) == 10)
    recs = {r["problem_id"]: r for r in rows_of(latest / "samples.jsonl")}
    assert recs[changed["id"]]["reference"] == new_ref
    assert all(isinstance(r["problem_sha"], str) and len(r["problem_sha"]) == 16
               for r in recs.values())
    problems = {p["id"]: p for p in rows_of(latest / "problems.jsonl")}
    assert all(problems[k]["problem_sha"] == r["problem_sha"] for k, r in recs.items())
    # the old run keeps its own records (old reference); the scorer grades each run's records
    # against the reference they carry, so nothing meets the new data with the old answer
    old = next(r for r in runs if r != latest)
    assert {r["reference"] for r in rows_of(old / "samples.jsonl")
            if r["problem_id"] == changed["id"]} == {str(int(new_ref) - 1)}
    scores = load_scores(results)
    assert set(scores["run_id"]) == {old.name, latest.name}


def test_a_resumed_run_whose_problem_changed_under_the_same_id_is_refused_naming_it(tmp_path):
    """Under one run id a problem can still change where the data's hash does not see it
    (a YAML normaliser, or records written by an older version): the records' problem hash
    (or, without one, their reference) is checked on resume, and the run is refused in one
    line naming the problem."""
    results = tmp_path / "results"
    ev(results, "--limit", "4")
    (run,) = (results / "runs").iterdir()
    samples = run / "samples.jsonl"
    recs = rows_of(samples)
    victim = recs[1]["problem_id"]
    recs[1]["problem_sha"] = "0" * 16  # made for another version of this problem
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = ev(results, "--limit", "6", ok=False)
    assert res.exit_code == 2
    line = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and repr(victim) in line[0] and "refusing" in line[0]
    assert len(rows_of(samples)) == 4  # nothing was added
    # records from before the hash existed are compared by their reference
    recs[1].pop("problem_sha")
    recs[1]["reference"] = "12345"
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = ev(results, "--limit", "6", ok=False)
    assert res.exit_code == 2 and repr(victim) in res.output
    # without the altered record the others resume
    del recs[1]
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert made(ev(results, "--limit", "6")) == 3


def test_results_copied_to_another_folder_resume_with_no_new_records(tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ADD5, clone / "add5.jsonl")
    monkeypatch.chdir(clone)
    ev(clone / "results", "--limit", "5", "--data-file", "add5.jsonl")
    moved = tmp_path / "elsewhere" / "machine2"
    shutil.copytree(clone / "results", moved / "results")
    shutil.copy(ADD5, moved / "mine.jsonl")
    monkeypatch.chdir(moved)
    res = ev(moved / "results", "--limit", "5", "--data-file", str(moved / "mine.jsonl"))
    assert made(res) == 0, res.output
    assert len(list((moved / "results" / "runs").iterdir())) == 1


def test_the_served_engine_is_identified_by_model_name_and_revision_not_its_server_path():
    from evalharness.runner import engine_identity

    class Served:
        def __init__(self, root):
            self.settings = {"engine": "openai", "served_model": "qwen", "model_root": root,
                             "model_revision": "abc123"}

    here = engine_identity(Served("/home/alice/models/Qwen3-0.6B"))
    there = engine_identity(Served("/mnt/shared/ckpt/Qwen3-0.6B"))
    assert here == there and here["model_root"] == "Qwen3-0.6B"
    assert here["served_model"] == "qwen" and here["model_revision"] == "abc123"
    hub = engine_identity(Served("Qwen/Qwen3-0.6B"))  # a hub id names the model: kept whole
    assert hub["model_root"] == "Qwen/Qwen3-0.6B"
    assert engine_identity(Served("/x/Qwen3-1.7B")) != here  # another model is another run


def test_a_spec_without_the_fallback_keeps_its_id_and_the_fallback_changes_it():
    import hashlib
    from dataclasses import replace

    from evalharness.spec import EngineSpec, GenerationSpec, ModelSpec, RunSpec, TaskSpec

    def spec(fallback: bool) -> RunSpec:
        return RunSpec(ModelSpec("m", "w"), TaskSpec("t", "sha", "integer", r"(\d+)",
                                                     answer_fallback=fallback),
                       {"name": "zoo"}, GenerationSpec(), EngineSpec("hf"))

    plain = spec(False)
    d = plain.to_json()
    del d["task"]["answer_fallback"]  # the spec as it was before these fields existed
    del d["task"]["exact_match"]
    before = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]
    assert plain.run_id().endswith(before)
    assert spec(True).run_id() != plain.run_id()
    lm = RunSpec(plain.model, replace(plain.task, exact_match={"ignore_case": True}),
                 plain.format, plain.generation, plain.engine)
    assert lm.run_id() != plain.run_id()  # lm-eval's grading settings are part of the id
    assert RunSpec.from_json(spec(True).to_json()) == spec(True)
    # a manifest written before the content hash (its task held the data path) still reads
    old = plain.to_json()
    old["task"]["source"] = old["task"].pop("data")
    assert RunSpec.from_json(old).task.data == "sha"


def test_two_clones_in_different_folders_give_the_same_run_id(tmp_path):
    """The same command in two copies of the project (the built-in task's file at two paths,
    each clone's own package and zoo) prints one run id."""
    import os
    import subprocess
    import sys

    ids = []
    for name in ("clone-a", "deeper/clone-b"):
        root = tmp_path / name
        root.mkdir(parents=True)
        for part in ("evalharness", "tasks"):
            shutil.copytree(REPO / part, root / part,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("EVALHARNESS_") and k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(root)
        out = subprocess.run(
            [sys.executable, "-m", "evalharness.cli", "eval", "--model", MODEL, "--task", "add5",
             "--limit", "2", "--budgets", "0", "--dry-run", "--results", str(root / "results")],
            cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        ids += re.findall(r"run id: (\S+)", out.stdout)
    assert len(ids) == 2 and ids[0] == ids[1]
