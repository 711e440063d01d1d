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

from evalharness.analysis import tables as _tables  # noqa: F401 - registers every table
from evalharness.analysis.budget import (
    LogBudgetFit,
    fit_log_budget,
    select_budgets,
    thinking_stats,
)
from evalharness.analysis.compute import pareto_frontier
from evalharness.analysis.emergence import (
    EmergenceSpan,
    emergence_records,
    emergence_span,
    emergence_table,
    sharpness,
    sharpness_table,
    span_table,
    steepest_doubling,
)
from evalharness.analysis.records import (
    difficulty_column,
    model_info,
    per_problem,
    per_problem_rows,
    prepare,
    with_flops,
)
from evalharness.analysis.registry import (
    Inputs,
    all_rules,
    compute_tables,
    register_tables,
    table_names,
    table_sets,
)
from evalharness.analysis.sampling import CoverageFit, fit_coverage

__all__ = [
    "Analysis", "CoverageFit", "EmergenceSpan", "LogBudgetFit", "analyze", "emergence_span",
    "emergence_table", "fit_coverage", "fit_log_budget", "pareto_frontier", "per_problem",
    "register_tables", "select_budgets", "sharpness", "sharpness_table", "span_table", "steepest_doubling",
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


class _TableNames:
    """`Analysis.TABLES`: every registered table's name, read when asked (a table registered
    later, by a test or a plugin, is included)."""

    def __get__(self, obj, owner) -> tuple[str, ...]:
        return table_names()


@dataclass(frozen=True)
class Analysis:
    """Every table the plots and the report read (as attributes: ``an.budgets``); `write` puts
    them under results/analysis. Which tables there are is the registry's
    (`analysis.tables`, `analysis.registry`)."""

    tables: dict[str, pd.DataFrame]
    rules: dict[str, str] = field(default_factory=all_rules)

    TABLES = _TableNames()

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name.startswith("__"):
            raise AttributeError(name)
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        if name in table_names():  # registered after this analysis was made
            return pd.DataFrame()
        raise AttributeError(f"no analysis table {name!r}")

    def to_json(self) -> dict:
        """The fits and headline numbers as plain JSON-able data (NaN -> None)."""
        out: dict = {"rules": dict(self.rules)}
        for s in table_sets():
            for name, spec in s.json.items():
                table = getattr(self, name)
                out[spec.key] = _records(spec.rows(table) if spec.rows else table)
        return out

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
    """All registered tables and fits from score rows (`scoring.load_scores`)."""
    if scores.empty:
        return Analysis({name: pd.DataFrame() for name in table_names()})
    df = prepare(scores)
    info = model_info(scores)
    df = with_flops(df, info)
    df["difficulty"] = difficulty_column(df)
    pp, ks = per_problem_rows(df)
    inputs = Inputs(scores=scores, df=df, pp=pp, ks=ks, info=info, thinking=thinking_stats(df),
                    em_recs=emergence_records(df), n_boot=n_boot, alpha=alpha, seed=seed)
    tables = compute_tables(inputs)
    # every row names the runs and the number of problems it read (after every table is made:
    # a table computed from another reads it as it was made)
    for s in table_sets():
        for name, source in s.provenance.items():
            recs, keys = source(inputs)
            tables[name] = _provenance(tables[name], recs, keys)
    return Analysis(tables)
