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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evalharness import __version__

if TYPE_CHECKING:
    from evalharness.store import Manifest

TIDY_COLUMNS = ["model", "params", "seed", "task", "budget", "n", "metric", "value", "ci_lo",
                "ci_hi", "extensions", "run_id"]
FILTER = "none"  # our answer extraction is the whole pipeline: lm-eval's "no filter" key


def _runs(results: Path) -> list[tuple[Manifest, pd.DataFrame]]:
    """(manifest, per-problem frame) for every scored run under `results`."""
    return [(m, pp) for m, pp, _ in _scored_runs(results)]


@dataclass(frozen=True)
class _Run:
    dir: Path
    label: str  # what tells its spec apart from other runs of its model and task ("" if none)
    scores: pd.DataFrame  # its score rows (one per record)


def _scored_runs(results: Path) -> list[tuple[Manifest, pd.DataFrame, _Run]]:
    from evalharness.analysis import per_problem
    from evalharness.scoring import load_scores, spec_labels
    from evalharness.store import Manifest, run_dirs

    scores = load_scores(results)
    dirs = run_dirs(results)
    manifests = {d.name: Manifest.read(d) for d in dirs}
    labels = spec_labels(manifests)
    out = []
    for d in dirs:
        df = scores[scores["run_id"] == d.name]
        if df.empty:
            continue
        pp, _ = per_problem(df)
        out.append((manifests[d.name], pp, _Run(d, labels.get(d.name, ""), df)))
    return out


def slug(name: str) -> str:
    """A name as one safe path component: letters, digits, '.', '_', '-' (runs of anything
    else become '-'), never empty, '.' or '..' (a task or model name like '../../x' must not
    lead out of the output folder)."""
    parts = re.split(r"[^A-Za-z0-9._-]+", str(name))
    s = "-".join(p for p in parts if p.strip("."))  # no part that is only dots ("..")
    return s.lstrip(".-") or "_"


def _inside(out: Path, path: Path) -> Path:
    """`path`, after checking that it lies inside `out` (the export writes nowhere else)."""
    root = out.resolve()
    p = path.resolve()
    if p != root and root not in p.parents:
        raise ValueError(f"refusing to write {path}: outside the export folder {out}")
    return path


def _metrics(pp: pd.DataFrame, n: int) -> list[str]:
    """Exact match, and with n samples per problem pass@k / maj@k at k = n (and 1 < k < n
    where every problem has that many)."""
    names = ["exact_match"]
    ks = sorted(int(c.split("@")[1]) for c in pp.columns if c.startswith("pass@"))
    for k in ks:
        if 1 < k <= n and pp[f"pass@{k}"].notna().all():
            names += [f"pass@{k}", f"maj@{k}"]
    return names


def tidy_table(results: Path, n_boot: int = 1000, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (run, extension level, budget, metric); CI: percentile bootstrap over
    problems (the unit of resampling, as in the analysis)."""
    from evalharness.stats import bootstrap_ci

    rows = []
    for m, pp in _runs(results):
        n = int(m.n or pp["n"].max())
        for (lv, budget), g in pp.groupby(["extensions", "budget"], sort=True):
            for metric in _metrics(g, n):
                ci = bootstrap_ci(g[metric].to_numpy(dtype=float), n_boot=n_boot, alpha=alpha)
                rows.append({
                    "model": m.model, "params": m.params,
                    "seed": m.generation.get("seed"), "task": m.task, "budget": int(budget),
                    "n": int(g["n"].min()), "metric": metric,
                    "value": ci.estimate, "ci_lo": ci.lo, "ci_hi": ci.hi,
                    "extensions": int(lv), "run_id": m.run_id,
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


def _stamp(m: Manifest) -> datetime:
    """The run's finish (else start) time: re-exporting an unchanged run gives the same file."""
    for when in (m.finished, m.started):
        try:
            return datetime.fromisoformat(str(when))
        except ValueError:  # absent (None) or not an ISO time
            pass
    return datetime.now(UTC)


def lm_eval_results(m: Manifest, pp: pd.DataFrame, budget: int,
                    level: int = 0, label: str = "",
                    completeness: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(task key, lm-eval 0.4 results dict) for one run at one budget. `label`: the run's spec
    label where another spec of its model and task exists (in the key and the JSON);
    `completeness`: records present / expected, written into an incomplete run's file."""
    gen, task, fmt = m.generation, m.task_spec, m.format or {}
    g = pp[(pp["budget"] == budget) & (pp["extensions"] == level)]
    n_plan = m.n or 1
    key = (f"{slug(str(m.task))}_T{budget}" + (f"_n{n_plan}" if n_plan > 1 else "")
           + (f"_ext{level}" if level else "") + (f"__{slug(label)}" if label else ""))
    res: dict[str, Any] = {"alias": key}
    hib = {}
    for metric in _metrics(g, n_plan):
        v = g[metric].to_numpy(dtype=float)
        res[f"{metric},{FILTER}"] = float(np.nanmean(v))
        res[f"{metric}_stderr,{FILTER}"] = _stderr(v)
        hib[metric] = True
    n_problems = int(g["problem_id"].nunique())
    n_planned = int((completeness or {}).get("problems") or n_problems)
    few_shot = task.get("few_shot") or 0
    stamp = _stamp(m)
    config = {
        "task": key, "tag": [m.task],
        "dataset_path": m.data_source or task.get("source"),
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
            "evalharness_run_id": m.run_id, "answer_type": task.get("answer_type"),
            "spec_label": label, "data_sha256": task.get("data"),
        },
    }
    model = m.model or ""
    out = {
        "results": {key: res},
        "group_subtasks": {key: []},
        "configs": {key: config},
        "versions": {key: 1.0},
        "n-shot": {key: few_shot},
        "higher_is_better": {key: hib},
        # lm-eval's own meaning: documents in the set vs documents evaluated
        "n-samples": {key: {"original": n_planned, "effective": n_problems}},
        "config": {
            "model": f"evalharness-{m.engine}",
            "model_args": f"pretrained={model}",
            "model_num_parameters": m.params,
            "model_dtype": m.engine_settings.get("dtype"),
            "batch_size": None, "batch_sizes": [], "device": m.engine_settings.get("device"),
            "use_cache": None, "limit": None, "bootstrap_iters": 1000,
            "gen_kwargs": config["generation_kwargs"],
            "random_seed": gen.get("seed"), "numpy_seed": gen.get("seed"),
            "torch_seed": gen.get("seed"), "fewshot_seed": gen.get("seed"),
        },
        "git_hash": (m.git_commit or "")[:7] or None,
        "date": stamp.timestamp(),
        "model_source": m.engine,
        "model_name": model,
        "model_name_sanitized": sanitize_model_name(model),
        "evalharness_version": __version__,
        "evalharness_spec_label": label,
        "packages": m.packages,
    }
    if completeness is not None:
        out["evalharness_incomplete"] = completeness
    return key, out


def _completeness(run: _Run, m: Manifest, budget: int, level: int) -> dict[str, Any]:
    """Records present vs asked for at one budget and extension level of a run."""
    from evalharness.store import expected_keys

    expected = {k for k in expected_keys(run.dir, m) if k[2] == budget and k[3] == level}
    at = run.scores[(run.scores["budget"] == budget) & (run.scores["extensions"] == level)]
    present = {(str(p), int(j)) for p, j in zip(at["problem_id"], at["sample"], strict=True)}
    want = {(p, j) for p, j, _, _ in expected}
    have = len(present & want) if want else len(present)
    total = len(want) or len(present)
    return {"records": have, "expected": total,
            "fraction": round(have / total, 6) if total else 0.0,
            "problems": len({p for p, _ in want}) or len({p for p, _ in present}),
            "status": m.status}


def write_lm_eval(results: Path, out: Path, allow_incomplete: bool = False) -> list[Path]:
    """One lm-eval results JSON per (run, budget, extension level) under
    ``out/<model_name_sanitized>/<task key>/results_[<spec label>_]<datetime>.json``.

    A run missing records at a budget is refused (ValueError naming it, nothing written):
    lm-eval's format has no place for "700 of 1,500", and its readers would take the mean of
    what is there as the result. `allow_incomplete` writes it anyway, with the counts and the
    fraction under ``evalharness_incomplete``. Two specs of one model and task get their own
    key, folder and file name (the spec label), so lm-eval's reader never picks one silently.
    Every path is built from slugged names and checked to lie inside `out`."""
    todo = []
    short = []
    for m, pp, run in _scored_runs(results):
        for (lv, budget), _ in pp.groupby(["extensions", "budget"], sort=True):
            c = _completeness(run, m, int(budget), int(lv))
            if c["records"] < c["expected"]:
                short.append(f"{run.dir.name} T={int(budget)}: {c['records']} of {c['expected']} "
                             f"records ({c['status']})")
                todo.append((m, pp, run, int(budget), int(lv), c))
            else:
                todo.append((m, pp, run, int(budget), int(lv), None))
    if short and not allow_incomplete:
        raise ValueError(
            f"{len(short)} incomplete run budget(s), e.g. {short[0]}; finish them (rerun the "
            "same eval: it resumes) or pass --allow-incomplete to export them marked with the "
            "fraction of records present")
    # runs whose files would share a folder (same model, task, budget, n; specs that differ
    # only where the spec label does not look, e.g. greedy vs sampled at n=1) get the setting
    # that tells them apart, else their run id's hash, in their label
    labels = {run.dir.name: run.label for _, _, run, _, _, _ in todo}
    groups: dict[tuple[str, str], set[str]] = {}
    for m, pp, run, budget, lv, c in todo:
        key, d = lm_eval_results(m, pp, budget, lv, run.label, c)
        groups.setdefault((slug(d["model_name_sanitized"]), key), set()).add(run.dir.name)
    by_name = {run.dir.name: m for m, _, run, _, _, _ in todo}
    for names in groups.values():
        if len(names) < 2:
            continue
        temps = {n: by_name[n].generation.get("temperature") for n in names}
        for n in names:
            extra = (f"temperature={temps[n]}" if len(set(temps.values())) == len(names)
                     else f"run={n.rsplit('-', 1)[-1]}")
            labels[n] = ", ".join(x for x in (labels[n], extra) if x)
    paths: list[Path] = []
    for m, pp, run, budget, lv, c in todo:
        label = labels[run.dir.name]
        key, d = lm_eval_results(m, pp, budget, lv, label, c)
        when = datetime.fromtimestamp(d["date"], UTC).replace(tzinfo=None)
        folder = _inside(out, out / slug(d["model_name_sanitized"]) / key)
        folder.mkdir(parents=True, exist_ok=True)
        # lm-eval's file name: results_ + isoformat with ':' replaced (the date after the last
        # '_', where lm-eval's reader looks for it); the spec label before it
        tag = f"{slug(label)}_" if label else ""
        p = _inside(out, folder / f"results_{tag}{when.isoformat().replace(':', '-')}.json")
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
