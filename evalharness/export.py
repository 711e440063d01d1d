"""Results in other tools' formats: lm-eval 0.4 results JSON, a tidy long table, a tracker.

All of it is a pure function of ``results/`` (scores and manifests), like the report:

* `lm_eval_results`: one results JSON per (model, task, budget) in lm-eval 0.4's layout
  (``results`` with ``metric,filter`` keys and their ``_stderr``, ``configs``, ``versions``,
  ``n-shot``, ``higher_is_better``, ``n-samples``, ``config``), named ``results_<datetime>.json``
  under a folder per model as lm-eval's EvaluationTracker names them, so lm-eval's own readers
  (``make_table``, ``get_results_filenames``) and tools built on them read ours.
* `tidy_table`: one row per (run, budget, metric): model, params, seed, task, budget, n, metric,
  value, ci_lo, ci_hi (percentile bootstrap over problems), as CSV and Parquet.
* `track`: the tidy table logged to MLflow (a local file store or any tracking URI), one MLflow
  run per harness run; off unless asked for, and mlflow is needed only then.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evalharness import __version__

TIDY_COLUMNS = ["model", "params", "seed", "task", "budget", "n", "metric", "value", "ci_lo",
                "ci_hi", "extensions", "run_id"]
# lm-eval's names for ours: exact match is its `exact_match`; pass@k / maj@k keep their names
LM_EVAL_METRIC = {"acc": "exact_match"}
FILTER = "none"  # our answer extraction is the whole pipeline: lm-eval's "no filter" key


def _runs(results: Path) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(manifest, per-problem frame) for every scored run under `results`."""
    from evalharness.analysis import per_problem
    from evalharness.scoring import load_scores
    from evalharness.store import read_manifest, run_dirs

    scores = load_scores(results)
    out = []
    for d in run_dirs(results):
        df = scores[scores["run_id"] == d.name]
        if df.empty:
            continue
        pp, _ = per_problem(df)
        out.append((read_manifest(d), pp))
    return out


def _metrics(pp: pd.DataFrame, n: int) -> list[str]:
    """Exact match, and with n samples per problem pass@k / maj@k at k = n (and 1 < k < n
    where every problem has that many)."""
    names = ["acc"]
    ks = sorted(int(c.split("@")[1]) for c in pp.columns if c.startswith("pass@"))
    for k in ks:
        if 1 < k <= n and pp[f"pass@{k}"].notna().all():
            names += [f"pass@{k}", f"maj@{k}"]
    return names


def tidy_table(results: Path, n_boot: int = 1000, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (run, extension level, budget, metric); CI: percentile bootstrap over
    problems (the unit of resampling, as in the analysis)."""
    from evalharness.metrics import bootstrap_ci

    rows = []
    for m, pp in _runs(results):
        gen = (m.get("spec") or {}).get("generation") or {}
        n = int((m.get("plan") or {}).get("n") or pp["n"].max())
        for (lv, budget), g in pp.groupby(["extensions", "budget"], sort=True):
            for metric in _metrics(g, n):
                ci = bootstrap_ci(g[metric].to_numpy(dtype=float), n_boot=n_boot, alpha=alpha)
                rows.append({
                    "model": m.get("model"), "params": m.get("params"),
                    "seed": gen.get("seed"), "task": m.get("task"), "budget": int(budget),
                    "n": int(g["n"].min()), "metric": LM_EVAL_METRIC.get(metric, metric),
                    "value": ci.estimate, "ci_lo": ci.lo, "ci_hi": ci.hi,
                    "extensions": int(lv), "run_id": m.get("run_id"),
                })
    df = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    return df.astype({"params": "Int64", "seed": "Int64", "budget": "int64", "n": "int64",
                      "extensions": "int64"})


def write_tidy(results: Path, out: Path) -> list[Path]:
    """`tidy.csv` and `tidy.parquet` in `out`."""
    df = tidy_table(results)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "tidy.csv", out / "tidy.parquet"]
    df.to_csv(paths[0], index=False)
    df.to_parquet(paths[1], index=False)
    return paths


def sanitize_model_name(name: str) -> str:
    """lm-eval's own folder name for a model (lm_eval.utils.sanitize_model_name)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def _stderr(v: np.ndarray) -> float:
    """lm-eval's stderr of a mean: sample standard deviation / sqrt(n)."""
    v = v[~np.isnan(v)]
    return float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")


def _stamp(m: dict[str, Any]) -> datetime:
    """The run's finish (else start) time: re-exporting an unchanged run gives the same file."""
    for key in ("finished", "started"):
        try:
            return datetime.fromisoformat(m[key])
        except (KeyError, TypeError, ValueError):
            pass
    return datetime.now(UTC)


def lm_eval_results(m: dict[str, Any], pp: pd.DataFrame, budget: int,
                    level: int = 0) -> tuple[str, dict[str, Any]]:
    """(task key, lm-eval 0.4 results dict) for one run at one budget."""
    spec = m.get("spec") or {}
    gen, task, fmt = spec.get("generation") or {}, spec.get("task") or {}, spec.get("format") or {}
    engine = spec.get("engine") or {}
    g = pp[(pp["budget"] == budget) & (pp["extensions"] == level)]
    n_plan = int((m.get("plan") or {}).get("n") or 1)
    key = (f"{m['task']}_T{budget}" + (f"_n{n_plan}" if n_plan > 1 else "")
           + (f"_ext{level}" if level else ""))
    res: dict[str, Any] = {"alias": key}
    hib = {}
    for metric in _metrics(g, n_plan):
        v = g[metric].to_numpy(dtype=float)
        name = LM_EVAL_METRIC.get(metric, metric)
        res[f"{name},{FILTER}"] = float(np.nanmean(v))
        res[f"{name}_stderr,{FILTER}"] = _stderr(v)
        hib[name] = True
    n_problems = int(g["problem_id"].nunique())
    few_shot = task.get("few_shot") or 0
    stamp = _stamp(m)
    config = {
        "task": key, "tag": [m["task"]], "dataset_path": task.get("source"),
        "output_type": "generate_until", "num_fewshot": few_shot,
        "repeats": n_plan, "description": task.get("system_prompt") or "",
        "metric_list": [{"metric": name, "aggregation": "mean", "higher_is_better": True}
                        for name in hib],
        "generation_kwargs": {
            "temperature": gen.get("temperature"), "top_p": gen.get("top_p"),
            "do_sample": bool(gen.get("temperature")),
            "max_gen_toks": budget + int(gen.get("max_answer_tokens") or 0),
            "until": [fmt.get("think_end")] if fmt.get("think_end") else [],
        },
        "metadata": {
            "version": 1.0, "thinking_budget": budget, "extensions": level,
            "budget_mode": gen.get("mode"), "sweep": gen.get("sweep"),
            "evalharness_run_id": m.get("run_id"), "answer_type": task.get("answer_type"),
        },
    }
    model = m.get("model") or ""
    out = {
        "results": {key: res},
        "group_subtasks": {key: []},
        "configs": {key: config},
        "versions": {key: 1.0},
        "n-shot": {key: few_shot},
        "higher_is_better": {key: hib},
        "n-samples": {key: {"original": n_problems, "effective": n_problems}},
        "config": {
            "model": f"evalharness-{m.get('engine')}",
            "model_args": f"pretrained={model}",
            "model_num_parameters": m.get("params"),
            "model_dtype": (engine.get("settings") or {}).get("dtype"),
            "batch_size": None, "batch_sizes": [], "device": (engine.get("settings") or {}).get("device"),
            "use_cache": None, "limit": None, "bootstrap_iters": 1000,
            "gen_kwargs": config["generation_kwargs"],
            "random_seed": gen.get("seed"), "numpy_seed": gen.get("seed"),
            "torch_seed": gen.get("seed"), "fewshot_seed": gen.get("seed"),
        },
        "git_hash": (m.get("git_commit") or "")[:7] or None,
        "date": stamp.timestamp(),
        "model_source": m.get("engine"),
        "model_name": model,
        "model_name_sanitized": sanitize_model_name(model),
        "evalharness_version": __version__,
        "packages": m.get("packages"),
    }
    return key, out


def write_lm_eval(results: Path, out: Path) -> list[Path]:
    """One lm-eval results JSON per (run, budget, extension level) under
    ``out/<model_name_sanitized>/<task key>/results_<datetime>.json``."""
    paths = []
    for m, pp in _runs(results):
        for (lv, budget), _ in pp.groupby(["extensions", "budget"], sort=True):
            key, d = lm_eval_results(m, pp, int(budget), int(lv))
            when = datetime.fromtimestamp(d["date"], UTC).replace(tzinfo=None)
            folder = out / d["model_name_sanitized"] / key
            folder.mkdir(parents=True, exist_ok=True)
            # lm-eval's file name: results_ + isoformat with ':' replaced
            p = folder / f"results_{when.isoformat().replace(':', '-')}.json"
            p.write_text(json.dumps(d, indent=2, default=_json_default, ensure_ascii=False))
            paths.append(p)
    return paths


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


# -- experiment tracking -------------------------------------------------------------------
TRACKERS = ("mlflow",)


def track(results: Path, tracker: str, uri: str | None = None,
          experiment: str = "evalharness") -> int:
    """Log every run's tidy rows to `tracker` (one tracker run per harness run: parameters
    from the spec, metrics `<metric>@T<budget>` with the budget as the step of `<metric>`).
    Returns the number of runs logged. MLflow: `uri` is a tracking URI; a folder or file: URI
    is a local file store, written offline (nothing reaches a network unless the URI says so)."""
    if tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {tracker!r}; choose {', '.join(TRACKERS)}")
    try:
        import mlflow
    except ImportError:
        raise ValueError("--track mlflow needs mlflow: `pip install mlflow-skinny`") from None
    df = tidy_table(results)
    if uri is None or "://" not in uri or uri.startswith("file:"):
        # MLflow 3 refuses its file store unless asked: the offline, server-less backend
        # (sqlite needs SQLAlchemy, which mlflow-skinny does not bring)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = uri if uri and uri.startswith("file:") else Path(uri or "mlruns").resolve().as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    logged = 0
    for run_id, g in df.groupby("run_id", sort=True):
        first = g.iloc[0]
        with mlflow.start_run(run_name=str(run_id)):
            mlflow.log_params({"model": first["model"], "task": first["task"],
                               "seed": first["seed"], "params": first["params"],
                               "evalharness_run_id": run_id})
            for _, r in g.sort_values("budget").iterrows():
                name = re.sub(r"[^\w./ -]", "_", str(r["metric"]))
                suffix = f"_ext{r['extensions']}" if r["extensions"] else ""
                mlflow.log_metric(name + suffix, float(r["value"]), step=int(r["budget"]))
        logged += 1
    return logged
