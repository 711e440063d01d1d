"""The report: ``results/report.html`` and ``results/summary.md``, pure functions of results/.

A package by topic: each topic module (budget, sampling, emergence, efficiency, compute,
diagnostics) registers its sections with `registry.section`; `page` lays report.html out from
the registry and `summary` writes summary.md; `runs` has the run list and the drill-down; `html` the blocks
and formatting; figures come from `evalharness.plots` (imported as `pl`).
"""

from __future__ import annotations

# the topic modules register their sections on import (page order is each section's `order`)
from evalharness.report import (  # noqa: F401
    budget,
    compute,
    diagnostics,
    efficiency,
    emergence,
    sampling,
    tradeoff,
)
from evalharness.report.budget import (
                                       accuracy_table,
                                       fit_headline,
                                       fit_table,
                                       logt_views,
                                       thinking_table,
)
from evalharness.report.compute import (
                                       buy_answer,
                                       cheapest_table,
                                       crossover_table,
                                       exchange_rate_table,
                                       frontier_headline,
                                       frontier_table,
)
from evalharness.report.diagnostics import control_table, control_warnings
from evalharness.report.emergence import (
                                       emergence_headline,
                                       emergence_views,
                                       seed_views,
                                       verdict_lines,
)
from evalharness.report.html import (
                                       Bullets,
                                       Paragraph,
                                       Table,
                                       esc,
                                       fmt_ci,
                                       fmt_flops,
                                       fmt_num,
                                       fmt_pct,
                                       fmt_pts,
)
from evalharness.report.page import CSS, headline, make_report, markdown_safe, render
from evalharness.report.registry import Section, section, sections
from evalharness.report.runs import _run_notes, list_runs, runs_table
from evalharness.report.sampling import sampling_table

__all__ = [
    "CSS", "Bullets", "Paragraph", "Section", "Table", "_run_notes", "accuracy_table",
    "buy_answer", "cheapest_table", "control_table", "control_warnings", "crossover_table",
    "emergence_headline", "emergence_views", "esc", "exchange_rate_table", "fit_headline",
    "fit_table", "fmt_ci", "fmt_flops", "fmt_num", "fmt_pct", "fmt_pts", "frontier_headline",
    "frontier_table", "headline", "list_runs", "logt_views", "make_report", "markdown_safe",
    "render", "runs_table", "sampling_table", "section", "sections", "seed_views",
    "thinking_table", "verdict_lines",
]
