"""Repeated sampling: pass@1, pass@n, majority@n, best-of-n and the coverage fit."""

from __future__ import annotations

import math

from evalharness import plots as pl
from evalharness.report.html import Table, _ok, _params_map, _task, fmt_ci, fmt_num, fmt_pct
from evalharness.report.registry import section


def sampling_table(an, task: str) -> Table:
    """Per (model, budget) with n > 1: pass@1, pass@n, maj@n, best-of-n, coverage fit."""
    params = _params_map(an)
    cov = pl.base_level(_task(an.coverage, task))
    if cov.empty:
        return Table([], [])
    cf = _task(an.coverage_fits, task)
    rows = []
    for (m, t), g in cov.groupby(["model", "budget"]):
        n = int(g["k"].max())
        if n < 2:
            continue
        one, top = g[g["k"] == 1].iloc[0], g[g["k"] == n].iloc[0]
        fit = cf[(cf["model"] == m) & (cf["budget"] == t)] if not cf.empty else cf
        why = "" if fit.empty or _ok(fit).shape[0] else str(fit["status"].iloc[0])
        fit = _ok(fit)
        if fit.empty:
            c, beta, r2 = why or "–", "–", "–"  # 'no fit: <reason>', never beta = 0
        else:
            f = fit.iloc[0]
            c = fmt_ci(f["c"], f["c_lo"], f["c_hi"])
            beta = fmt_ci(f["beta"], f["beta_lo"], f["beta_hi"])
            r2 = fmt_num(f["r2"])
        rows.append((pl.finite_or(params.get(m), math.inf), m, t, [
            m, pl.format_params(params.get(m)), f"{t:g}", n, fmt_pct(one["pass_at_k"]),
            fmt_pct(top["pass_at_k"]), fmt_pct(top["maj_at_k"]), fmt_pct(top["bok_at_k"]),
            c, beta, r2,
        ]))
    rows.sort(key=lambda r: r[:3])
    rule = str(cf["rule"].iloc[0]) if not cf.empty and "rule" in cf else ""
    return Table(
        ["model", "params", "T", "n", "pass@1", "pass@n", "maj@n", "best-of-n",
         "coverage c [CI]", "β [CI]", "R²"],
        [r[3] for r in rows], numeric=set(range(1, 11)),
        caption=f"Repeated sampling — task {task}",
        note=("Coverage fit −log pass@k = c·k^(−β): " + rule) if rule else "",
    )




@section("Repeated sampling (best-of-N)", order=30, figures=("pass_maj_at_k",),
         csvs=("coverage", "coverage_fits"))
def _sampling_section(an, task: str) -> list:
    return [sampling_table(an, task)]
