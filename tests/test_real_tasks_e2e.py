"""A zoo model end to end on 20 real GSM8K problems, on each engine: every stage, every record.

The zoo only knows arithmetic, so accuracy is ~0 here; the point is that a real benchmark goes
through the real pipeline (`evalharness eval` -> samples.jsonl -> scores.parquet -> analyze ->
plots -> report) and that no problem is dropped on the way, including one whose prompt does not
fit the zoo's 512-token context (it must be recorded with an ``error: ...`` finish reason).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evalharness.cli import app

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K = SHARED_DATA / "gsm8k" / "test.jsonl"
LIMIT = 20
BUDGETS = (0, 32)
MAX_ANSWER = 16
runner = CliRunner()

needs_gsm8k = pytest.mark.skipif(
    not GSM8K.exists(), reason=f"GSM8K test split not found at {GSM8K} (the shared data folder)"
)


def invoke(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, f"`evalharness {' '.join(args)}` failed:\n{res.output}" + (
        "" if res.exception is None or isinstance(res.exception, SystemExit)
        else f"\n{type(res.exception).__name__}: {res.exception}"
    )
    return res


def run_e2e(model: str, engine: str, results: Path) -> None:
    res = invoke(
        "eval", "--model", model, "--task", "gsm8k", "--data-file", str(GSM8K),
        "--limit", str(LIMIT), "--budgets", ",".join(map(str, BUDGETS)), "--format", "zoo",
        "--max-answer-tokens", str(MAX_ANSWER), "--engine", engine, "--results", str(results),
    )
    assert "T=32" in res.output  # the summary table printed after scoring

    # -- raw records -------------------------------------------------------------------------
    (run,) = (results / "runs").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["finished"]
    assert manifest["engine"] == engine and manifest["task"] == "gsm8k"
    assert manifest["model"] == model and manifest["n_problems"] == LIMIT
    assert manifest["params"] and manifest["params"] > 0
    assert manifest["plan"]["budgets"] == list(BUDGETS)
    assert manifest["spec"]["format"]["name"] == "zoo"
    rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == LIMIT * len(BUDGETS)
    assert {(r["problem_id"], r["budget"]) for r in rows} == {
        (f"gsm8k-{i}", b) for i in range(LIMIT) for b in BUDGETS
    }
    for r in rows:
        assert r["reference"].lstrip("-").isdigit(), r["reference"]  # '#### 72' normalised
        assert r["ref_ids"], r
        assert r["thinking_tokens"] <= r["budget"]
        # each budget on its own: prompt + thinking[:T] + end + answer must fit the 512 context
        if r["prompt_tokens"] + r["budget"] + 1 + MAX_ANSWER <= 512:
            # a prompt that fits gets an answer and teacher-forced reference log-probs
            assert r["finish_reason"] in ("stop", "length"), r["finish_reason"]
            assert len(r["ref_logprobs"]) == len(r["ref_ids"]) == len(r["ref_hits"])
            assert all(lp <= 0 for lp in r["ref_logprobs"])
            assert len(r["answer_ids"]) <= MAX_ANSWER
        else:
            # one that does not is still recorded, with the reason, on its own records only
            assert r["finish_reason"].startswith("error:") and "exceed" in r["finish_reason"]
    assert sum(r["prompt_tokens"] + max(BUDGETS) > 512 for r in rows) < len(rows) // 2

    # -- scores ------------------------------------------------------------------------------
    scores = pd.read_parquet(run / "scores.parquet")
    assert len(scores) == len(rows)
    assert set(scores["budget"]) == set(BUDGETS)
    assert scores["exact_match"].notna().all()
    assert scores["exact_match"].mean() <= 0.2  # the arithmetic zoo does not solve GSM8K

    # -- analysis, figures, report, all from results/ alone ----------------------------------
    invoke("analyze", "--results", str(results))
    assert any((results / "analysis").glob("*.csv"))
    out = invoke("plots", "--results", str(results)).output
    pngs = sorted((results / "plots").glob("*.png"))
    assert pngs and all(p.stat().st_size > 0 for p in pngs), out
    invoke("report", "--results", str(results))
    html = results / "report.html"
    assert html.exists() and "gsm8k" in html.read_text()


@needs_gsm8k
def test_gsm8k_20_problems_end_to_end_on_transformers(largest, tmp_path):
    run_e2e(largest.name, "hf", tmp_path)


@needs_gsm8k
@pytest.mark.vllm
def test_gsm8k_20_problems_end_to_end_on_vllm(largest, tmp_path):
    run_e2e(largest.name, "vllm", tmp_path)
