"""Trust in the results folder, through the real CLI and runner on the zoo: incremental runs,
settings reaching the scorer, specs never pooled, and damaged or hostile inputs."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import assert_same_records, read_records
from typer.testing import CliRunner

from evalharness.cli import app

runner = CliRunner()
MODEL = "zoo/arith-h128-s0"


def ev(results, *args, ok=True):
    res = runner.invoke(app, ["eval", "--model", MODEL, "--results", str(results), "--no-progress",
                              "--no-score", *args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


class CountingEngine:
    """Wraps a real engine and counts what it is asked to generate."""

    def __init__(self, inner, counts):
        self.inner, self.counts = inner, counts

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, reqs):
        self.counts["requests"] += len(reqs)
        out = self.inner.generate(reqs)
        self.counts["tokens"] += sum(len(c.token_ids) for cs in out for c in cs)
        return out


@pytest.fixture
def counting(monkeypatch):
    import evalharness.runner as r

    counts = {"requests": 0, "tokens": 0}
    real = r.load_engine
    monkeypatch.setattr(r, "load_engine", lambda *a, **k: CountingEngine(real(*a, **k), counts))
    return counts


def test_adding_budgets_and_problems_generates_only_the_missing_records(tmp_path, counting):
    a, fresh = tmp_path / "a", tmp_path / "fresh"
    ev(a, "--task", "add_sweep", "--limit", "20", "--budgets", "0,16")
    first = counting["requests"]
    assert first > 0
    res = ev(a, "--task", "add_sweep", "--limit", "40", "--budgets", "0,16,32,64")
    assert "resuming, 40 of 160 records" in res.output
    # the second command made 120 records: thinking traces + answers for those only
    counting.update(requests=0, tokens=0)
    ev(a, "--task", "add_sweep", "--limit", "40", "--budgets", "0,16,32,64")
    assert counting["requests"] == 0  # nothing left to make
    ev(fresh, "--task", "add_sweep", "--limit", "40", "--budgets", "0,16,32,64")
    assert_same_records(read_records(a), read_records(fresh), tol=1e-4)


def test_more_samples_with_the_same_seed_reuse_the_first_ones(tmp_path, counting):
    a, fresh = tmp_path / "a", tmp_path / "fresh"
    args = ["--task", "add_sweep", "--limit", "6", "--budgets", "8,32", "--temperature", "0.8"]
    ev(a, *args, "--n", "2")
    counting.update(requests=0, tokens=0)
    ev(a, *args, "--n", "4")
    # 6 problems x 2 new samples: one thinking request each, then <= 2 answers each
    assert 0 < counting["requests"] <= 6 * 2 * 3
    ev(fresh, *args, "--n", "4")
    assert_same_records(read_records(a), read_records(fresh), tol=1e-4)


def test_a_task_answer_regex_reaches_the_scorer(tmp_path):
    import yaml

    from evalharness.scoring import load_scores

    repo = Path(__file__).parents[1]
    spec = yaml.safe_load((repo / "tasks" / "add5.yaml").read_text())
    spec.update(name="add5_first_digit", answer_regex=r"^(\d)", aliases=[])
    spec["source"]["file"] = str(repo / "tasks" / "data" / "add5.jsonl")
    task_file = tmp_path / "add5_first_digit.yaml"
    task_file.write_text(yaml.safe_dump(spec))
    ev(tmp_path, "--task", str(task_file), "--limit", "20", "--budgets", "128")
    ev(tmp_path / "plain", "--task", "add5", "--limit", "20", "--budgets", "128")
    with_regex = load_scores(tmp_path)
    plain = load_scores(tmp_path / "plain")
    assert plain["exact_match"].mean() > 0.9
    assert with_regex["pred"].str.len().max() == 1  # only the first digit was extracted
    assert with_regex["exact_match"].mean() == 0.0


def test_a_task_regex_that_never_matches_gives_no_answer_unless_the_task_opts_into_fallback(
        tmp_path):
    """`answer_regex: "^(X)"` never matches an add5 answer: authoritative (the default, as in
    lm-eval), every record is no answer and exact match is 0 (it was 1.0: the default cascade
    read the last number). `answer_fallback: true` opts into that cascade, and is another run."""
    import re

    import yaml

    from evalharness.scoring import load_scores

    repo = Path(__file__).parents[1]
    spec = yaml.safe_load((repo / "tasks" / "add5.yaml").read_text())
    spec["source"]["file"] = str(repo / "tasks" / "data" / "add5.jsonl")
    ids = []
    for name, extra in (("add5_x", {}), ("add5_x_fallback", {"answer_fallback": True})):
        task_file = tmp_path / f"{name}.yaml"
        task_file.write_text(yaml.safe_dump({**spec, "name": name, "aliases": [],
                                             "answer_regex": "^(X)", **extra}))
        res = ev(tmp_path / name, "--task", str(task_file), "--limit", "20", "--budgets", "128",
                 "--dry-run")
        ids.append(re.findall(r"run id: \S+-(\w+)", res.output)[-1])
        ev(tmp_path / name, "--task", str(task_file), "--limit", "20", "--budgets", "128")
    assert ids[0] != ids[1]  # the opt-in changes scoring, so it is part of the run id
    strict, fallback = load_scores(tmp_path / "add5_x"), load_scores(tmp_path / "add5_x_fallback")
    assert strict["no_answer"].all() and strict["exact_match"].mean() == 0.0
    assert fallback["exact_match"].mean() > 0.9 and not fallback["no_answer"].any()


def test_two_specs_of_one_model_and_task_are_never_pooled(tmp_path):
    from evalharness.analysis import analyze
    from evalharness.scoring import load_scores

    ev(tmp_path, "--task", "add_sweep", "--limit", "20", "--budgets", "0,16")
    ev(tmp_path, "--task", "add_sweep", "--limit", "40", "--budgets", "0,16")  # extends: 1 run
    ev(tmp_path, "--task", "add_sweep", "--limit", "40", "--budgets", "0,16",
       "--max-answer-tokens", "6")  # another spec: its own run
    scores = load_scores(tmp_path)
    assert scores["run_id"].nunique() == 2
    assert scores["model"].nunique() == 2 and scores["model"].str.contains(r"\[max_answer_tokens=").all()
    an = analyze(scores, n_boot=50)
    assert an.budgets["model"].nunique() == 2
    assert (an.budgets["n_samples"] == 40).all()  # 40 problems x 1 sample per point, per spec


def test_a_budget_past_the_context_errors_alone(tmp_path):
    from evalharness.scoring import load_scores

    res = ev(tmp_path, "--task", "add_sweep", "--limit", "40", "--budgets", "0,8,16,32,600")
    assert "40 of 200 records are errors" in res.output
    ev(tmp_path / "ok", "--task", "add_sweep", "--limit", "40", "--budgets", "0,8,16,32")
    s, ok = load_scores(tmp_path), load_scores(tmp_path / "ok")
    for b in (0, 8, 16, 32):
        assert s[s.budget == b]["exact_match"].mean() == ok[ok.budget == b]["exact_match"].mean()
        assert not s[s.budget == b]["error"].any()
    assert s[s.budget == 600]["error"].all()
    res = ev(tmp_path / "huge", "--task", "add_sweep", "--limit", "4", "--budgets", "9000000",
             ok=False)
    assert res.exit_code == 2 and "every record this command made (4) is an error" in res.output
    # past what any context holds: refused before anything runs (10^20 once overflowed the store)
    res = ev(tmp_path / "huger", "--task", "add_sweep", "--limit", "4", "--budgets",
             "1000000000", ok=False)
    assert res.exit_code == 2 and "out of range" in res.output
    assert not (tmp_path / "huger" / "runs").exists()


def test_weights_identity_covers_bin_config_and_tokenizer_files(tmp_path):
    from evalharness.runner import weights_identity

    d = tmp_path / "m"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(b"A" * 100)
    (d / "config.json").write_text("{}")
    (d / "tokenizer.json").write_text("{}")
    first = weights_identity(d)
    (d / "pytorch_model.bin").write_bytes(b"B" * 100)
    second = weights_identity(d)
    (d / "tokenizer.json").write_text('{"x": 1}')
    third = weights_identity(d)
    assert len({first, second, third}) == 3


def _small_run(results) -> Path:
    ev(results, "--task", "add_sweep", "--limit", "10", "--budgets", "0,16")
    (run,) = (Path(results) / "runs").iterdir()
    return run


def _every_command_works(results):
    for cmd in ("score", "analyze", "summary", "plots", "report"):
        res = runner.invoke(app, [cmd, "--results", str(results)])
        assert res.exit_code == 0, (cmd, res.output)


def test_damaged_records_and_manifests_are_skipped_named_and_counted(tmp_path):
    from evalharness.scoring import load_scores, run_table

    run = _small_run(tmp_path)
    lines = (run / "samples.jsonl").read_text().splitlines()
    bad_budget = json.loads(lines[3])
    bad_budget["budget"] = "abc"
    damaged = ["{}", "123"] + lines[:3] + [json.dumps(bad_budget), "garbled{"] + lines[4:] + [lines[0]]
    (run / "samples.jsonl").write_text("\n".join(damaged) + "\n")
    other = tmp_path / "runs" / "broken-run"
    other.mkdir()
    (other / "samples.jsonl").write_text(lines[0] + "\n")
    (other / "manifest.json").write_text("{not json")
    _every_command_works(tmp_path)
    s = load_scores(tmp_path)
    assert s["run_id"].nunique() == 1 and len(s) == 19  # one record lost to the bad budget
    (row,) = run_table(tmp_path).to_dict("records")
    assert row["status"] == "incomplete" and row["missing"] == 1
    assert row["duplicates"] == 1 and row["bad_lines"] == 4
    # the next eval repairs the file and makes only the lost record
    res = ev(tmp_path, "--task", "add_sweep", "--limit", "10", "--budgets", "0,16")
    assert "resuming, 19 of 20 records" in res.output
    (row,) = run_table(tmp_path).to_dict("records")
    assert row["status"] == "complete" and row["bad_lines"] == 0 and row["duplicates"] == 0


def test_a_truncated_run_is_reported_incomplete_and_corrupt_scores_are_rebuilt(tmp_path):
    from evalharness.scoring import run_table

    run = _small_run(tmp_path)
    lines = (run / "samples.jsonl").read_text().splitlines()
    (run / "samples.jsonl").write_text("\n".join(lines[:7]) + "\n")
    (run / "scores.parquet").write_bytes(b"PAR1 this is not parquet")
    os.utime(run / "scores.parquet", (time.time() + 100, time.time() + 100))  # newer than samples
    _every_command_works(tmp_path)
    (row,) = run_table(tmp_path).to_dict("records")
    assert row["status"] == "incomplete" and (row["present"], row["expected"]) == (7, 20)


def test_concurrent_scorers_of_one_run_do_not_race(tmp_path):
    run = _small_run(tmp_path)
    code = ("import sys; from evalharness.scoring import score_run\n"
            "for _ in range(6): score_run(sys.argv[1])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(run)], stderr=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


def test_an_unwritable_results_folder_is_one_line_and_a_full_disk_resumes(tmp_path, monkeypatch):
    import errno

    from evalharness.store import RunStore

    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "runs").mkdir()
    real_mkdir = Path.mkdir

    def refuse(self, *a, **k):
        if str(self).startswith(str(ro)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    res = ev(ro, "--task", "add5", "--limit", "2", "--budgets", "0", ok=False)
    assert res.exit_code == 2 and "read-only" in res.output and "Traceback" not in res.output
    monkeypatch.setattr(Path, "mkdir", real_mkdir)

    real_append = RunStore.append
    calls = {"n": 0}

    def full_disk(self, recs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, recs)

    monkeypatch.setattr(RunStore, "append", full_disk)
    res = ev(tmp_path / "full", "--task", "add_sweep", "--limit", "6", "--budgets", "0,16", ok=False)
    assert res.exit_code == 2 and "disk is full" in res.output
    monkeypatch.setattr(RunStore, "append", real_append)
    ev(tmp_path / "full", "--task", "add_sweep", "--limit", "6", "--budgets", "0,16")
    ev(tmp_path / "clean", "--task", "add_sweep", "--limit", "6", "--budgets", "0,16")
    assert_same_records(read_records(tmp_path / "full"), read_records(tmp_path / "clean"), tol=1e-4)


@pytest.mark.slow
def test_kill_9_at_a_random_moment_then_rerun_gives_the_uninterrupted_records(tmp_path):
    args = [sys.executable, "-m", "evalharness.cli", "eval", "--model", MODEL, "--task",
            "add_sweep", "--limit", "60", "--budgets", "0,8,16,32,64", "--no-score",
            "--no-progress"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([*args, "--results", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # wait until records are being written, then kill at a random moment
    deadline = time.time() + 120
    while time.time() < deadline and not list(killed.glob("runs/*/samples.jsonl")):
        time.sleep(0.05)
    time.sleep(random.Random().uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run([*args, "--results", str(killed)], check=True, capture_output=True)
    subprocess.run([*args, "--results", str(clean)], check=True, capture_output=True)
    assert_same_records(read_records(killed), read_records(clean), tol=1e-4)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_specs_differing_in_many_settings_are_numbered_and_spelled_out_once():
    from evalharness.report import _run_notes
    from evalharness.scoring import _labelling
    from evalharness.store import Manifest

    def manifest(regex, source, top_p):
        return Manifest.from_dict({"family": "f", "task": "t", "model": "m",
                                   "spec": {"task": {"answer_regex": regex, "source": source},
                                            "generation": {"max_answer_tokens": top_p}}})

    labels, details = _labelling({
        "a": manifest(None, "/very/long/path/to/the/data/file.jsonl", 1.0),
        "b": manifest(r"\A\s*(\d+)\s*\Z", None, 0.9),
        "c": manifest(None, "/very/long/path/to/the/data/file.jsonl", 1.0),
    })
    assert labels == {"a": "spec 2", "b": "spec 1", "c": "spec 2"}  # short, and a == c
    assert "answer_regex=" in details["a"] and "max_answer_tokens=1.0" in details["a"]
    runs = pd.DataFrame({"model": "m", "task": "t", "spec_label": list(labels.values()),
                         "spec_detail": list(details.values()), "status": "complete",
                         "errors": 0, "no_answer": 0, "duplicates": 0, "bad_lines": 0})
    (note,) = [n for n in _run_notes(runs) if "different settings" in n]
    assert f"spec 1 = {details['b']}" in note and f"spec 2 = {details['a']}" in note
    # a short difference stays the label itself
    short, _ = _labelling({"a": manifest(None, "x", 1.0), "b": manifest(None, "x", 0.9)})
    assert short == {"a": "max_answer_tokens=1.0", "b": "max_answer_tokens=0.9"}
