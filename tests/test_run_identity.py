"""Every eval option is either part of a run's identity (it changes prompts, generation or
scoring, so it changes the run id) or provably not (results folder, replicas, progress…).
A new option that is in neither list fails here until someone decides which it is."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from evalharness.cli import app

runner = CliRunner()
BASE = ["eval", "--model", "zoo/arith-h16-s0", "--task", "add5", "--limit", "2", "--budgets", "0",
        "--dry-run"]

# option -> extra args giving it a non-default value that must change the run id
IDENTITY = {
    "model": ["--model", "zoo/arith-h32-s0"],
    "task": ["--task", "add_sweep"],
    "temperature": ["--temperature", "0.5"],
    "top_p": ["--top-p", "0.9"],
    "seed": ["--seed", "3"],
    "mode": ["--mode", "extend", "--max-extensions", "1"],
    "max_extensions": ["--mode", "extend", "--max-extensions", "2"],  # vs 1, below
    "sweep": ["--sweep", "independent"],
    "max_answer_tokens": ["--max-answer-tokens", "7"],
    "fmt": ["--format", "cot-raw"],
    "think_end": ["--think-end", "</t>"],
    "answer_cue": ["--answer-cue", "="],
    "extension": ["--extension", "Hmm"],
    "answer_stop": ["--answer-stop", "\\n"],
    "system_prompt": ["--system-prompt", "Be brief."],
    "few_shot": None,  # add5 has no examples: see test_few_shot_count_is_part_of_the_identity
    "data_file": None,  # filled in by the test: a changed copy of the task's file
    "dtype": ["--dtype", "bfloat16"],
    "max_model_len": ["--max-model-len", "256"],
    "revision": ["--revision", "v2"],
    "engine": ["--engine", "vllm"],
}
# vLLM-on-GPU options: part of the identity through the engine's effective settings; they
# cannot be given a second value on this CPU machine (one core group, no GPU memory)
IDENTITY_GPU_ONLY = {"tensor_parallel_size"}
# vLLM only: in the engine's settings (see test_engine_args_reach_vllm_and_its_settings)
IDENTITY_VLLM_ONLY = {"engine_arg"}
NOT_IDENTITY = {
    "results": ["--results", "OTHER"],
    "replicas": ["--replicas", "2"],
    "progress": ["--no-progress"],
    "score": ["--no-score"],
    "family": ["--family", "other"],
    "train_tokens": ["--train-tokens", "1e9"],  # the cost model's input, not a result
    "tokens_per_step": ["--tokens-per-step", "1000"],  # the same
    "batch_size": ["--batch-size", "7"],
    "limit": ["--limit", "3"],  # the plan, not the spec: a larger limit extends the run
    "budgets": ["--budgets", "0,8"],  # the plan (truncate mode): extra budgets extend the run
    "n": ["--n", "2", "--temperature", "0.5"],  # vs temperature 0.5 alone, below
    "device": ["--device", "cpu"],  # the default here: the same effective setting
    "dry_run": [],
}
# the served engine (needs a server; tests/test_served.py checks both kinds): the served
# model's name is in the engine's settings; where and how fast it is asked is not
IDENTITY_SERVED = {"served_model_name"}
# (timeouts, retries and the reply cap: tests/test_served_replies.py checks they are not)
NOT_IDENTITY_SERVED = {"base_url", "max_concurrency", "api_key_env", "request_timeout",
                       "max_retries", "max_reply_mb"}
NOT_RUN_HERE = {"gpu_memory_utilization"}  # vLLM on a GPU only; a memory budget, not a result


def run_id(tmp_path, *extra) -> str:
    args = [*BASE, "--results", str(tmp_path), *extra]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return re.findall(r"run id: (\S+)", res.output)[-1]


def test_every_eval_option_is_classified():
    cmd = next(c for c in app.registered_commands if c.name == "eval")
    import inspect

    names = set(inspect.signature(cmd.callback).parameters)
    known = set(IDENTITY) | IDENTITY_GPU_ONLY | IDENTITY_VLLM_ONLY | set(NOT_IDENTITY) | NOT_RUN_HERE
    known |= IDENTITY_SERVED | NOT_IDENTITY_SERVED
    assert names == known, f"classify these options: {names ^ known}"


@pytest.mark.slow
def test_identity_options_change_the_run_id_and_the_others_do_not(tmp_path):
    from evalharness.tasks import load_task

    base = run_id(tmp_path)
    assert run_id(tmp_path) == base  # stable
    src = load_task("add5").source
    copy = tmp_path / "copy_of_add5.jsonl"
    shutil.copy(src, copy)
    assert run_id(tmp_path, "--data-file", str(copy)) == base  # same rows: same run
    rows = copy.read_text().splitlines()
    rows[-1] = rows[-1].replace('"answer": "', '"answer": "1')  # other rows: another run
    copy.write_text("\n".join(rows) + "\n")
    IDENTITY["data_file"] = ["--data-file", str(copy)]
    ids = {}
    for name, extra in IDENTITY.items():
        if extra is None:
            continue
        ids[name] = run_id(tmp_path, *extra)
        assert ids[name] != base, f"--{name} does not change the run id"
    assert ids["max_extensions"] != run_id(tmp_path, "--mode", "extend", "--max-extensions", "1")
    sampled = run_id(tmp_path, "--temperature", "0.5")
    for name, extra in NOT_IDENTITY.items():
        if name == "results":
            extra = ["--results", str(tmp_path / "elsewhere")]
        ref = sampled if name == "n" else base
        assert run_id(tmp_path, *extra) == ref, f"--{name} changes the run id"


def test_few_shot_count_is_part_of_the_identity_on_gsm8k(tmp_path, monkeypatch):
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(SHARED_DATA))
    args = ["--task", "gsm8k", "--model", "zoo/arith-h16-s0", "--format", "cot-raw"]
    one = run_id(tmp_path, *args, "--few-shot", "1")
    two = run_id(tmp_path, *args, "--few-shot", "2")
    assert one != two


def test_the_manifest_holds_the_whole_spec_and_the_scorer_reads_it(tmp_path):
    res = runner.invoke(app, ["eval", "--model", "zoo/arith-h16-s0", "--task", "add5", "--limit", "2",
                              "--budgets", "0", "--results", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "runs").iterdir()
    m = json.loads((run / "manifest.json").read_text())
    from evalharness.spec import RunSpec

    spec = RunSpec.from_json(m["spec"])
    assert spec.run_id() == run.name
    assert spec.task.answer_type == "integer" and spec.generation.max_answer_tokens > 0
    assert len(spec.model.weights) == 64


@pytest.mark.vllm
def test_engine_args_reach_vllm_are_checked_and_change_the_run_id(tmp_path):
    args = ["--engine", "vllm"]
    plain = run_id(tmp_path, *args)
    other = run_id(tmp_path, *args, "--engine-arg", "max_num_seqs=8")
    assert other != plain
    res = runner.invoke(app, [*BASE, "--results", str(tmp_path), *args,
                              "--engine-arg", "no_such_argument=1"])
    assert res.exit_code == 2 and "no_such_argument" in res.output
    res = runner.invoke(app, [*BASE, "--results", str(tmp_path), "--engine", "hf",
                              "--engine-arg", "max_num_seqs=8"])
    assert res.exit_code == 2 and "not used by the hf engine" in res.output


def test_the_cot_format_caps_the_tasks_answer_budget_at_its_measured_default(tmp_path,
                                                                              monkeypatch):
    """gsm8k asks for 512 answer tokens; `cot` was measured to need 256 after a forced end
    (formats.FORCED_ANSWER_TOKENS). The resolved number is the run's: a run without the flag
    is the run with `--max-answer-tokens 256`; other formats keep the task's 512; a number
    typed always wins."""
    from evalharness.formats import FORCED_ANSWER_TOKENS, default_answer_tokens, get_format
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(SHARED_DATA))
    assert FORCED_ANSWER_TOKENS["cot"] == 256
    assert default_answer_tokens(get_format("cot"), 512) == 256
    assert default_answer_tokens(get_format("cot"), 12) == 12  # never raises a task's
    assert default_answer_tokens(get_format("think"), 512) == 512
    args = ["--task", "gsm8k", "--model", "zoo/arith-h16-s0"]
    cot = run_id(tmp_path, *args, "--format", "cot")
    assert cot == run_id(tmp_path, *args, "--format", "cot", "--max-answer-tokens", "256")
    assert cot != run_id(tmp_path, *args, "--format", "cot", "--max-answer-tokens", "512")
    raw = run_id(tmp_path, *args, "--format", "cot-raw")
    assert raw == run_id(tmp_path, *args, "--format", "cot-raw", "--max-answer-tokens", "512")


def test_cot_answers_end_at_a_blank_line_unless_answer_stop_says_otherwise(tmp_path, monkeypatch):
    """`cot` ends answers at "\\n\\n" (formats.ANSWER_PARAGRAPH_END, measured); the stop is in
    the run's format, so the id says whether answers were cut there. `--answer-stop '\\n\\n'`
    (as typed in a shell) is the default; `--answer-stop ''` turns it off: another run."""
    from evalharness.cli import parse_answer_stop
    from evalharness.formats import get_format
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(SHARED_DATA))
    assert get_format("cot").answer_stop == ("\n\n",)
    assert get_format("zoo").answer_stop == get_format("think").answer_stop == ()
    assert parse_answer_stop(["\\n\\n"]) == ("\n\n",) and parse_answer_stop([""]) == ()
    assert parse_answer_stop(None) is None and parse_answer_stop(["a\\\\n"]) == ("a\\n",)
    # formats without stops keep the spec (and run ids) they had before the field existed
    from dataclasses import replace

    from evalharness.formats import ReasoningFormat
    from evalharness.runner import format_identity

    assert "answer_stop" not in format_identity(get_format("zoo"))
    assert format_identity(get_format("cot"))["answer_stop"] == ("\n\n",)
    for name in ("zoo", "cot"):  # what the spec holds rebuilds the format
        f = get_format(name)
        assert ReasoningFormat(**format_identity(f)) == replace(f, description="")
    args = ["--task", "gsm8k", "--model", "zoo/arith-h16-s0", "--format", "cot"]
    cot = run_id(tmp_path, *args)
    assert cot == run_id(tmp_path, *args, "--answer-stop", "\\n\\n")
    assert cot != run_id(tmp_path, *args, "--answer-stop", "")
    assert cot != run_id(tmp_path, *args, "--answer-stop", "\\n\\n", "--answer-stop", "Question:")
