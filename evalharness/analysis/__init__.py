"""Analysis: score rows in, tables and fits out (pure; no I/O except `Analysis.write`).

One file per topic: `records` (score rows -> per-problem rows, problem sets, model info),
`budget` (accuracy ~ a + b log2 T and its checks; `logt_tests` holds the statistics),
`sampling` (pass@k coverage fits), `curves` (the per-budget tables of both), `emergence`
(emergence across sizes and seeds; `emergence_tests` holds the statistics), `compute` (FLOPs
frontier and the buy decision's tables; `buy` holds the decision's surface, cheapest
configurations and crossovers; `threeway` the cheapest of (N, D, T, n) at a query volume with
the runner-up of each other kind), `efficiency` (per-problem budget needs, overthinking, allocation
of thinking across problems, sequential vs parallel at matched FLOPs). Every bootstrap and interval lives in `evalharness.stats`.

The unit of resampling everywhere is the *problem*: samples and budgets of one problem share a
prompt (and, in the one-pass sweep, a thinking prefix), so they are not independent. Every CI
here is a percentile bootstrap over problems, and one set of problem resamples is shared by all
budgets and all k of a curve, so a fit's replicate sees one consistent resample.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evalharness.analysis.budget import (
    SATURATION_RULE,
    LogBudgetFit,
    fit_log_budget,
    logt_tables,
    select_budgets,
    thinking_stats,
)
from evalharness.analysis.buy import CHEAPEST_RULE, CROSSOVER_RULE, SURFACE_RULE
from evalharness.analysis.compute import (
    FLOPS_RULE,
    buy_points,
    buy_tables,
    compute_table,
    pareto_frontier,
)
from evalharness.analysis.curves import curve_tables
from evalharness.analysis.efficiency import (
    ALLOCATION_RULE,
    EFFICIENCY_RULE,
    SEQPAR_RULE,
    efficiency_tables,
)
from evalharness.analysis.emergence import (
    SHARPNESS_RULE,
    SPAN_RULE,
    EmergenceSpan,
    emergence_records,
    emergence_rows,
    emergence_span,
    emergence_table,
    seed_tables,
    sharpness,
    sharpness_table,
    span_table,
    steepest_doubling,
)
from evalharness.analysis.emergence_tests import SCHAEFFER_RULE, SEED_CI_RULE, SHARPNESS_CI_BOOT
from evalharness.analysis.logt_tests import LACK_OF_FIT_RULE
from evalharness.analysis.records import (
    CURVE,
    POINT,
    difficulty_column,
    model_info,
    per_problem,
    per_problem_rows,
    prepare,
    with_flops,
)
from evalharness.analysis.sampling import COVERAGE_RULE, CoverageFit, fit_coverage
from evalharness.analysis.scaling import LOSS_LAW_RULE, loss_law_tables
from evalharness.analysis.surface import SURFACE3_RULE, surface_table
from evalharness.analysis.threeway import THREEWAY_RULE, threeway_tables
from evalharness.analysis.training import TRAINING_RULE, training_tables
from evalharness.diagnostics import BITE_RULE, budget_control

__all__ = [
    "Analysis", "CoverageFit", "EmergenceSpan", "LogBudgetFit", "analyze", "emergence_span",
    "emergence_table", "fit_coverage", "fit_log_budget", "pareto_frontier", "per_problem",
    "select_budgets", "sharpness", "sharpness_table", "span_table", "steepest_doubling",
]


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _jsonable(v):
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _provenance(table: pd.DataFrame, recs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`table` with ``runs`` (the run ids its row read, ';'-joined) and ``problems`` (how many
    problems) for each row, from the records `recs` grouped by the row's `keys`. A count the
    table computed itself (a paired block, a fit on common problems) is kept."""
    if table.empty:
        return table
    keys = [k for k in keys if k in table and k in recs]
    g = recs.groupby(keys, sort=False, observed=True, dropna=False)
    prov = pd.DataFrame({
        "runs": g["run_id"].agg(lambda r: ";".join(sorted(set(map(str, r))))),
        "_problems": g["problem_id"].nunique(),
    }).reset_index()
    out = table.merge(prov, on=keys, how="left")
    own = out["problems"] if "problems" in out else out.get("n_problems")
    out["problems"] = own.fillna(out["_problems"]) if own is not None else out["_problems"]
    return out.drop(columns="_problems")


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


@dataclass(frozen=True)
class Analysis:
    """Every table the plots and the report read; `write` puts them under results/analysis."""

    budgets: pd.DataFrame  # accuracy (+CI) and thinking tokens used, per budget
    fits: pd.DataFrame  # accuracy = a + b log2 T, per (model, task, extensions)
    coverage: pd.DataFrame  # pass@k, maj@k, best-of-k (+CI) per budget and k
    coverage_fits: pd.DataFrame  # -log pass@k = c k^-beta per budget
    emergence: pd.DataFrame  # per model at its largest budget: EM beside continuous metrics
    sharpness: pd.DataFrame  # steepest-doubling share per (family, task, metric)
    spans: pd.DataFrame  # narrowest EM 0.2 -> 0.8 size range and metric shares in it
    compute: pd.DataFrame  # (model, budget, n) points: FLOPs, accuracy, on_frontier
    exchange: pd.DataFrame  # doublings of N one doubling of T (or n) is worth, per bucket
    cheapest: pd.DataFrame  # cheapest (model, T, n) per target accuracy, runner-up, margin
    crossover: pd.DataFrame  # query volume Q where the preferred model changes (train + Q*inf)
    buy_costs: pd.DataFrame  # per target and model: training FLOPs, inference FLOPs per query
    diagnostics: pd.DataFrame  # per run x budget: did budget forcing bite (diagnostics.py)
    seed_curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # per size: seed mean, CI
    seed_points: pd.DataFrame = field(default_factory=pd.DataFrame)  # per checkpoint values
    schaeffer: pd.DataFrame = field(default_factory=pd.DataFrame)  # observed vs p^L_eff per size
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)  # one sentence per family/task
    logt_buckets: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy per bucket x T
    logt_bucket_fits: pd.DataFrame = field(default_factory=pd.DataFrame)  # slope, step share
    logt_tests: pd.DataFrame = field(default_factory=pd.DataFrame)  # lack of fit, CIs, mix
    logt_models: pd.DataFrame = field(default_factory=pd.DataFrame)  # AIC/BIC per model form
    logt_residuals: pd.DataFrame = field(default_factory=pd.DataFrame)  # per budget, with CI
    needs: pd.DataFrame = field(default_factory=pd.DataFrame)  # per (config, problem, sample)
    efficiency: pd.DataFrame = field(default_factory=pd.DataFrame)  # metric (+CI) per bucket
    allocation: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy vs tokens
    allocation_headline: pd.DataFrame = field(default_factory=pd.DataFrame)  # predicted vs T
    seq_vs_par: pd.DataFrame = field(default_factory=pd.DataFrame)  # at matched FLOPs
    loss_law: pd.DataFrame = field(default_factory=pd.DataFrame)  # L(N, D) fit per family
    loss_points: pd.DataFrame = field(default_factory=pd.DataFrame)  # held-out loss per ckpt
    training_points: pd.DataFrame = field(default_factory=pd.DataFrame)  # EM per checkpoint
    training_curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # per (size, D level)
    training_sharpness: pd.DataFrame = field(default_factory=pd.DataFrame)  # along N, along C
    surface3: pd.DataFrame = field(default_factory=pd.DataFrame)  # (N, D, T) exchange rates
    threeway: pd.DataFrame = field(default_factory=pd.DataFrame)  # cheapest (N, D, T, n) at Q
    threeway_crossover: pd.DataFrame = field(default_factory=pd.DataFrame)  # Q where it changes
    threeway_costs: pd.DataFrame = field(default_factory=pd.DataFrame)  # per checkpoint line
    threeway_grid: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy per config
    rules: dict[str, str] = field(
        default_factory=lambda: {
            "log_budget_fit": SATURATION_RULE,
            "coverage_fit": COVERAGE_RULE,
            "sharpness": SHARPNESS_RULE,
            "span": SPAN_RULE,
            "flops": FLOPS_RULE,
            "exchange": SURFACE_RULE,
            "cheapest": CHEAPEST_RULE,
            "crossover": CROSSOVER_RULE,
            "budget_control": BITE_RULE,
            "seed_ci": SEED_CI_RULE,
            "schaeffer": SCHAEFFER_RULE,
            "lack_of_fit": LACK_OF_FIT_RULE,
            "efficiency": EFFICIENCY_RULE,
            "allocation": ALLOCATION_RULE,
            "seq_vs_par": SEQPAR_RULE,
            "loss_law": LOSS_LAW_RULE,
            "training": TRAINING_RULE,
            "surface3": SURFACE3_RULE,
            "threeway": THREEWAY_RULE,
        }
    )

    TABLES = ("budgets", "fits", "coverage", "coverage_fits", "emergence", "sharpness",
              "spans", "compute", "exchange", "cheapest", "crossover", "buy_costs",
              "diagnostics", "seed_curves", "seed_points", "schaeffer", "verdicts",
              "logt_buckets", "logt_bucket_fits", "logt_tests", "logt_models",
              "logt_residuals", "needs", "efficiency", "allocation", "allocation_headline",
              "seq_vs_par", "loss_law", "loss_points", "training_points", "training_curves",
              "training_sharpness", "surface3", "threeway", "threeway_crossover",
              "threeway_costs", "threeway_grid")

    def to_json(self) -> dict:
        """The fits and headline numbers as plain JSON-able data (NaN -> None)."""
        return {
            "rules": dict(self.rules),
            "log_budget_fits": _records(self.fits),
            "coverage_fits": _records(self.coverage_fits),
            "sharpness": _records(self.sharpness),
            "emergence_spans": _records(self.spans),
            "frontier": _records(self.compute[self.compute["on_frontier"]])
            if "on_frontier" in self.compute
            else [],
            "exchange": _records(self.exchange),
            "cheapest": _records(self.cheapest),
            "crossover": _records(self.crossover),
            "verdicts": _records(self.verdicts),
            "logt_tests": _records(self.logt_tests),
            "allocation_headline": _records(self.allocation_headline),
            "loss_law": _records(self.loss_law),
            "surface3": _records(self.surface3),
            "threeway": _records(self.threeway),
            "threeway_crossover": _records(self.threeway_crossover),
        }

    def write(self, out_dir: Path) -> list[Path]:
        """Write every table as ``<name>.csv`` and the fits as ``fits.json`` into `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.TABLES:
            path = out_dir / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            paths.append(path)
        path = out_dir / "fits.json"
        path.write_text(json.dumps(self.to_json(), indent=2))
        return paths + [path]


def analyze(
    scores: pd.DataFrame, n_boot: int = 1000, alpha: float = 0.05, seed: int | None = 0
) -> Analysis:
    """All tables and fits from score rows (`scoring.load_scores`)."""
    if scores.empty:
        empty = pd.DataFrame()
        return Analysis(*[empty] * len(Analysis.TABLES))
    df = prepare(scores)
    info = model_info(scores)
    df = with_flops(df, info)
    df["difficulty"] = difficulty_column(df)
    pp, ks = per_problem_rows(df)
    thinking = thinking_stats(df)
    budgets, coverage, fits, coverage_fits = curve_tables(pp, ks, n_boot, alpha, seed)
    if not budgets.empty:
        budgets = budgets.merge(thinking, on=POINT, how="left")
    emergence = emergence_rows(df)
    em_recs = emergence_records(df)
    tables = dict(
        budgets=budgets,
        fits=fits,
        coverage=coverage,
        coverage_fits=coverage_fits,
        emergence=emergence,
        sharpness=sharpness_table(emergence, em_recs, min(n_boot, SHARPNESS_CI_BOOT),
                                  alpha, seed),
        spans=span_table(emergence),
        compute=compute_table(pp, ks, thinking,
                              df.groupby(["task", "problem_id"])["difficulty"].first()),
        **dict(zip(("exchange", "cheapest", "crossover", "buy_costs"),
                   buy_tables(pp, df, ks, info, n_boot, alpha, seed), strict=True)),
        diagnostics=budget_control(scores),
        **dict(zip(("seed_curves", "seed_points", "schaeffer", "verdicts"),
                   seed_tables(df, n_boot, alpha, seed), strict=True)),
        **dict(zip(("logt_buckets", "logt_bucket_fits", "logt_tests", "logt_models",
                    "logt_residuals"), logt_tables(pp, df, n_boot, alpha, seed), strict=True)),
        **dict(zip(("needs", "efficiency", "allocation", "allocation_headline", "seq_vs_par"),
                   efficiency_tables(df, pp, ks, n_boot, alpha, seed), strict=True)),
        **dict(zip(("loss_law", "loss_points"), loss_law_tables(df, n_boot, alpha, seed),
                   strict=True)),
        surface3=surface_table(pp, df, n_boot, alpha, seed),
        **dict(zip(("threeway", "threeway_crossover", "threeway_costs", "threeway_grid"),
                   threeway_tables(buy_points(pp, df, ks), info, n_boot, alpha, seed),
                   strict=True)),
        **dict(zip(("training_points", "training_curves", "training_sharpness"),
                   training_tables(df, n_boot, alpha, seed), strict=True)),
    )
    # every row names the runs and the number of problems it read
    per_point = POINT + ["n"]
    for name in ("budgets", "coverage", "coverage_fits", "compute", "fits", "logt_buckets",
                 "logt_bucket_fits", "logt_tests", "logt_models", "logt_residuals"):
        tables[name] = _provenance(tables[name], df, per_point)
    tables["diagnostics"] = _provenance(tables["diagnostics"], df.assign(n=np.nan),
                                        ["run_id", "budget"])
    for name in ("emergence", "seed_points"):
        tables[name] = _provenance(tables[name], em_recs, ["family", "task", "model"])
    tables["seed_curves"] = _provenance(tables["seed_curves"], em_recs,
                                        ["family", "task", "size"])
    for name in ("sharpness", "spans", "schaeffer", "verdicts"):
        tables[name] = _provenance(tables[name], em_recs, ["family", "task"])
    # one configuration per row (seq_vs_par pairs two and names the runs of both itself)
    for name in ("needs", "efficiency", "allocation", "allocation_headline"):
        tables[name] = _provenance(tables[name], df, CURVE)
    exch = df.assign(axis=np.where(df["greedy"], "budget", "samples"))
    tables["exchange"] = _provenance(tables["exchange"], exch, ["family", "task", "axis"])
    return Analysis(**tables)

