"""`evalharness export`: lm-eval 0.4 results JSON, the tidy long table, MLflow tracking."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from helpers import cli
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
    res = cli(["export", "--results", str(results), *extra])
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
        em = greedy.loc[greedy["budget"] == b, "exact_match"].to_numpy(dtype=float)
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
        want = df[(df["temperature"] == 0) & (df["budget"] == b)]["exact_match"].mean()
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


# -- what the export must not hide ---------------------------------------------------------


def _copy(results, tmp_path):
    import shutil

    dst = tmp_path / "results"
    shutil.copytree(results, dst, ignore=shutil.ignore_patterns("export"))
    return dst


def _greedy_run(results):
    return next(d for d in (results / "runs").iterdir()
                if json.loads((d / "manifest.json").read_text())["plan"]["n"] == 1)


def _rewrite(path, fn):
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    rows = [r for r in (fn(r) for r in rows) if r is not None]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_an_incomplete_run_is_refused_unless_allowed_and_then_carries_its_fraction(results,
                                                                                  tmp_path):
    res_dir = _copy(results, tmp_path)
    run = _greedy_run(res_dir)
    dropped = iter(range(5))
    _rewrite(run / "samples.jsonl",  # 5 of the 12 records at T=0 never made
             lambda r: None if r["budget"] == 0 and next(dropped, None) is not None else r)
    res = runner.invoke(app, ["export", "--results", str(res_dir), "--format", "lm-eval"])
    assert res.exit_code == 2, res.output
    assert re.fullmatch(r"error: [^\n]*7 of 12 records[^\n]*--allow-incomplete[^\n]*\n", res.output)
    assert run.name in res.output
    assert not (res_dir / "export" / "lm-eval").exists() or not any(
        (res_dir / "export" / "lm-eval").rglob("*.json"))  # nothing written
    _export(res_dir, "--format", "lm-eval", "--allow-incomplete")
    files = sorted((res_dir / "export" / "lm-eval").rglob("*.json"))
    marked = {f.parent.name: json.loads(f.read_text()) for f in files}
    inc = marked["add_sweep_T0"]
    assert inc["evalharness_incomplete"]["records"] == 7
    assert inc["evalharness_incomplete"]["expected"] == 12
    assert inc["evalharness_incomplete"]["fraction"] == pytest.approx(7 / 12, abs=1e-6)
    assert inc["n-samples"]["add_sweep_T0"] == {"original": 12, "effective": 7}
    assert "evalharness_incomplete" not in marked["add_sweep_T16"]  # complete budgets: clean


def test_two_specs_of_one_model_and_task_get_their_own_labelled_files(zoo, tmp_path):
    from lm_eval.utils import get_latest_filename

    from evalharness.runner import EvalOptions, run_eval

    d = tmp_path / "results"
    for kw in ({}, {"max_answer_tokens": 6}, {"temperature": 0.7}):
        opts = EvalOptions(**{"models": zoo[0].name, "task": "add_sweep", "budgets": (0,),
                              "limit": 4, "engine": "hf", "results": d, "progress": False, **kw})
        run_eval(opts, log=lambda *_: None)
    _export(d, "--format", "lm-eval")
    files = sorted((d / "export" / "lm-eval").rglob("*.json"))
    assert len(files) == 3 and len({f.parent for f in files}) == 3  # one folder each
    labels = [json.loads(f.read_text())["evalharness_spec_label"] for f in files]
    assert all(labels) and len(set(labels)) == 3
    assert any("max_answer_tokens=6" in x for x in labels)
    assert any("temperature=0.7" in x for x in labels)  # greedy vs sampled at n=1, told apart
    for f, label in zip(files, labels, strict=True):
        d_ = json.loads(f.read_text())
        (key,) = d_["results"]
        assert key == f.parent.name and "__" in key  # the label is in the task key
        assert f.name.startswith("results_") and f.name != f"results_{f.name.rsplit('_', 1)[1]}"
        assert d_["configs"][key]["metadata"]["spec_label"] == label
        assert get_latest_filename([str(f)]) == str(f)  # lm-eval still reads the date


def test_export_writes_only_inside_its_folder_whatever_the_names(results, tmp_path):
    res_dir = _copy(results, tmp_path / "a" / "b" / "c")
    for run in (res_dir / "runs").iterdir():
        m = json.loads((run / "manifest.json").read_text())
        m.update(task="../../../../x", model="../../../../y")
        (run / "manifest.json").write_text(json.dumps(m))
    out = res_dir / "export"
    before = {p for p in tmp_path.rglob("*")}
    _export(res_dir, "--format", "lm-eval")
    new = {p for p in tmp_path.rglob("*")} - before
    assert new and all(out.resolve() in p.resolve().parents for p in new if p != out), new
    outside = [p for p in tmp_path.rglob("*") if p.name.startswith(("x", "y"))
               and out.resolve() not in p.resolve().parents]
    assert not outside, outside
    from evalharness.export import slug

    assert slug("..") == "_" and slug("../../x") == "x" and slug("a/b") == "a-b"


def test_summary_md_escapes_html_from_task_and_model_names(results, tmp_path):
    from evalharness.report import make_report

    res_dir = _copy(results, tmp_path)
    evil_task, evil_model = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    for run in (res_dir / "runs").iterdir():
        m = json.loads((run / "manifest.json").read_text())
        m.update(task=evil_task, model=evil_model)
        (run / "manifest.json").write_text(json.dumps(m))
        _rewrite(run / "samples.jsonl", lambda r: {**r, "task": evil_task, "model": evil_model})
        (run / "scores.parquet").unlink(missing_ok=True)
    _, md = make_report(res_dir)
    text = md.read_text()
    assert "<script" not in text and "<img" not in text and "<" not in text
    assert "&lt;script&gt;" in text or "&lt;script>" in text
