"""`evalharness export`: lm-eval 0.4 results JSON, the tidy long table, MLflow tracking."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from evalharness.cli import app

runner = CliRunner()
BUDGETS = (0, 16)


@pytest.fixture(scope="module")
def results(zoo, tmp_path_factory):
    """A greedy run over two budgets and a sampled run (n=3) of the smallest zoo model."""
    from evalharness.runner import EvalOptions, run_eval
    from evalharness.scoring import score_run

    d = tmp_path_factory.mktemp("results")
    for kw in ({}, {"n": 3, "temperature": 0.8, "budgets": (16,)}):
        opts = EvalOptions(**{"models": zoo[0].name, "task": "add_sweep", "budgets": BUDGETS,
                              "limit": 12, "engine": "hf", "results": d, "progress": False, **kw})
        for r in run_eval(opts, log=lambda *_: None):
            score_run(r.dir)
    return d


def _export(results, *extra):
    res = runner.invoke(app, ["export", "--results", str(results), *extra])
    assert res.exit_code == 0, res.output
    return res


def _scores(results):
    from evalharness.scoring import load_scores

    return load_scores(results)


def test_lm_eval_results_json_reads_with_lm_evals_own_code(results, zoo):
    from lm_eval.utils import get_latest_filename, get_results_filenames, make_table

    _export(results, "--format", "lm-eval")
    files = sorted(str(p) for p in (results / "export" / "lm-eval").rglob("*.json"))
    assert len(get_results_filenames(files)) == len(files) == len(BUDGETS) + 1
    df = _scores(results)
    greedy = df[df["temperature"] == 0]
    for b in BUDGETS:
        key = f"add_sweep_T{b}"
        (path,) = [f for f in files if f"/{key}/" in f]
        assert get_latest_filename([path]) == path
        d = json.loads(open(path).read())
        assert {"results", "configs", "versions", "n-shot", "higher_is_better", "n-samples",
                "config", "group_subtasks", "date"} <= set(d)
        em = greedy.loc[greedy["budget"] == b, "correct"].to_numpy(dtype=float)
        got = d["results"][key]
        assert got["exact_match,none"] == pytest.approx(em.mean())
        assert got["exact_match_stderr,none"] == pytest.approx(em.std(ddof=1) / np.sqrt(em.size))
        assert d["n-samples"][key] == {"original": 12, "effective": 12}
        assert d["configs"][key]["metadata"]["thinking_budget"] == b
        assert d["model_name"] == zoo[0].name and "/" not in d["model_name_sanitized"]
        table = make_table(d)  # lm-eval's own results table over our file
        row = next(line for line in table.splitlines() if key in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "exact_match" in cells  # value and stderr follow the metric (0 prints as "0")
        value, stderr = float(cells[cells.index("↑") + 1]), float(cells[cells.index("±") + 1])
        assert value == pytest.approx(em.mean(), abs=5e-5)
        assert stderr == pytest.approx(em.std(ddof=1) / np.sqrt(em.size), abs=5e-5)
    (sampled,) = [f for f in files if "/add_sweep_T16_n3/" in f]
    d = json.loads(open(sampled).read())
    assert {"exact_match,none", "pass@3,none", "maj@3,none"} <= set(d["results"]["add_sweep_T16_n3"])
    assert "pass@3" in make_table(d)


def test_tidy_table_csv_and_parquet_hold_one_row_per_metric_with_its_ci(results, zoo):
    from evalharness.export import TIDY_COLUMNS

    _export(results, "--format", "tidy")
    csv = pd.read_csv(results / "export" / "tidy.csv")
    pq = pd.read_parquet(results / "export" / "tidy.parquet")
    assert list(csv.columns) == list(pq.columns) == TIDY_COLUMNS
    assert len(csv) == len(pq) and (csv["value"].to_numpy() == pytest.approx(pq["value"].to_numpy()))
    assert set(pq["model"]) == {zoo[0].name} and (pq["params"] == zoo[0].params).all()
    assert (pq["ci_lo"] <= pq["value"]).all() and (pq["value"] <= pq["ci_hi"]).all()
    greedy = pq[pq["n"] == 1]
    assert sorted(greedy["budget"]) == list(BUDGETS) and set(greedy["metric"]) == {"exact_match"}
    df = _scores(results)
    for b in BUDGETS:
        want = df[(df["temperature"] == 0) & (df["budget"] == b)]["correct"].mean()
        assert greedy.loc[greedy["budget"] == b, "value"].item() == pytest.approx(want)
    sampled = pq[pq["n"] == 3]
    assert set(sampled["metric"]) == {"exact_match", "pass@2", "maj@2", "pass@3", "maj@3"}
    # pass@k can only grow with k, and pass@k >= the mean accuracy
    v = sampled.set_index("metric")["value"]
    assert v["exact_match"] <= v["pass@2"] <= v["pass@3"]


def test_mlflow_tracking_writes_an_offline_file_store_readable_by_mlflow(results, tmp_path):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    res = _export(results, "--format", "tidy", "--track", "mlflow", "--tracking-uri",
                  store.as_uri())
    assert "logged 2 runs to mlflow" in res.output
    client = MlflowClient(tracking_uri=store.as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == "evalharness"]
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2
    tidy = pd.read_parquet(results / "export" / "tidy.parquet")
    for r in runs:
        rows = tidy[tidy["run_id"] == r.info.run_name]
        hist = client.get_metric_history(r.info.run_id, "exact_match")
        assert sorted((m.step, m.value) for m in hist) == sorted(
            zip(rows.loc[rows["metric"] == "exact_match", "budget"],
                rows.loc[rows["metric"] == "exact_match", "value"], strict=True))
        assert r.data.params["task"] == "add_sweep"


def test_export_refuses_unknown_formats_and_trackers_in_one_line(results):
    res = runner.invoke(app, ["export", "--results", str(results), "--track", "neptune"])
    assert res.exit_code == 2 and re.fullmatch(r"error: unknown tracker 'neptune'[^\n]*\n",
                                               res.output)
    res = runner.invoke(app, ["export", "--results", str(results), "--format", "xlsx"])
    assert res.exit_code != 0 and "lm-eval, tidy or all" in res.output
