"""The CLI end to end on the real zoo: eval -> records -> resume -> scores; bad input."""

import json

import pytest
from typer.testing import CliRunner

from evalharness.cli import app

runner = CliRunner()


def eval_args(tmp_path, *extra):
    return ["eval", "--model", "zoo/arith-h128-s0", "--task", "add_sweep", "--limit", "12",
            "--budgets", "0,16,128", "--results", str(tmp_path), *extra]


def test_eval_writes_manifest_records_and_scores_then_resumes(tmp_path):
    res = runner.invoke(app, eval_args(tmp_path))
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["params"] > 0
    assert manifest["plan"]["budgets"] == [0, 16, 128]
    assert manifest["spec"]["task"]["name"] == "add_sweep"
    assert {"torch", "transformers"} <= set(manifest["packages"])
    rows = (run / "samples.jsonl").read_text().splitlines()
    assert len(rows) == 12 * 3
    assert (run / "scores.parquet").exists()
    problems = [json.loads(x) for x in (run / "problems.jsonl").read_text().splitlines()]
    assert len(problems) == 12 and problems[0]["prompt"].endswith("<think>")
    assert "T=128" in res.output
    # same command again: nothing to do, nothing duplicated
    res2 = runner.invoke(app, eval_args(tmp_path))
    assert res2.exit_code == 0 and "resuming, 36 of 36 records" in res2.output
    assert (run / "samples.jsonl").read_text().splitlines() == rows
    # an interrupted run (7 whole records, a torn line) makes only what is missing:
    (run / "samples.jsonl").write_text("\n".join(rows[:7]) + "\n" + rows[7][:30])
    res3 = runner.invoke(app, eval_args(tmp_path))
    assert res3.exit_code == 0
    again = (run / "samples.jsonl").read_text().splitlines()

    def content(lines):  # everything but wall-clock timing
        return sorted(json.dumps({k: v for k, v in json.loads(x).items() if k != "time_s"})
                      for x in lines)

    assert len(again) == len(rows) and content(again) == content(rows)
    assert "resuming, 7 of 36 records" in res3.output


@pytest.mark.parametrize("args,message", [
    (["--budgets", "8,x"], "comma-separated integers"),
    (["--n", "4"], "needs sampling"),
    (["--mode", "sideways"], "unknown mode"),
    (["--format", "klingon"], "unknown reasoning format"),
    # values that used to be accepted silently
    (["--temperature", "-1", "--n", "2"], "--temperature"),
    (["--top-p", "2"], "--top-p"),
    (["--budgets", ""], "--budgets is empty"),
    (["--max-answer-tokens", "-1"], "--max-answer-tokens"),
    (["--max-answer-tokens", "0"], "--max-answer-tokens"),
    (["--batch-size", "0"], "--batch-size"),
    (["--n", "0"], "--n"),
    (["--limit", "0"], "--limit"),
])
def test_bad_input_gets_a_clear_error(tmp_path, args, message):
    res = runner.invoke(app, eval_args(tmp_path, *args))
    assert res.exit_code != 0
    assert message in res.output


def test_unknown_model_and_task_are_named(tmp_path):
    res = runner.invoke(app, ["eval", "--model", "zoo/arith-h7", "--task", "add5", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "the zoo has" in res.output
    res = runner.invoke(app, ["eval", "--model", "zoo/arith-h16-s0", "--task", "nonesuch", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "nonesuch" in res.output


@pytest.mark.parametrize("command", ["summary", "score", "analyze", "plots", "report"])
def test_reading_commands_on_a_folder_without_runs_say_so_and_write_nothing(tmp_path, command):
    from typer.testing import CliRunner

    from evalharness.cli import app

    folder = tmp_path / "typo"
    res = CliRunner().invoke(app, [command, "--results", str(folder)])
    assert res.exit_code == 2 and "no runs in" in res.output
    assert not folder.exists()
