"""Budget control: how thinking ended per run × budget, and where a control did not bite."""

from __future__ import annotations

import math

import pandas as pd

from evalharness.report.html import (
    Bullets,
    Paragraph,
    Table,
    _ext_tag,
    _num,
    _order,
    _params_map,
    _task,
)
from evalharness.report.registry import section


def _diagnostics(an, task: str) -> pd.DataFrame:
    diag = getattr(an, "diagnostics", None)
    if diag is None or diag.empty:
        return pd.DataFrame()
    return _task(diag, task)


def control_table(an, task: str) -> Table:
    """Per run × budget: how thinking ended (by itself at the marker, or forced at T) and,
    of the forced ends, how many did not bite (answer cut, thinking re-opened, no answer)."""
    from evalharness.diagnostics import BITE_RULE

    diag = _diagnostics(an, task)
    if diag.empty:
        return Table([], [])
    params = _params_map(an)
    order = {m: i for i, m in enumerate(_order(diag["model"], params))}
    diag = diag.assign(_o=diag["model"].map(order)).sort_values(
        ["_o", "run_id", "extensions", "budget"])

    def share(count, of) -> str:
        c, o = _num(count), _num(of)
        if not (math.isfinite(c) and math.isfinite(o)) or o <= 0:
            return "–"
        return f"{100 * c / o:.0f}% ({int(c)})"

    rows = []
    for _, r in diag.iterrows():
        rows.append([
            r["model"] + _ext_tag(r), f"{int(r['budget'])}", int(r["n"]),
            share(r["marker_found"], r["n"]), share(r["forced"], r["n"]),
            share(r["forced_answer_cut"], r["forced"]), share(r["reopened"], r["forced"]),
            share(r["forced_no_answer"], r["forced"]), share(r["errors"], r["n"]),
        ])
    return Table(
        ["model", "T", "records", "ended at marker", "forced at T", "answer cut",
         "re-opened thinking", "no answer", "errors"], rows, numeric=set(range(1, 9)),
        caption=f"Budget control per run × budget: how thinking ended, and of the forced ends "
                f"how many did not bite — task {task}",
        note="ended at marker / forced at T / errors: share of all records; answer cut "
             "(by --max-answer-tokens), re-opened thinking and no answer: share of the forced "
             f"ends. Warning rule: {BITE_RULE}.",
    )


def control_warnings(an, task: str) -> Bullets | Paragraph:
    """The run × budget pairs where a control did not bite (the summary's warning lines)."""
    from evalharness.diagnostics import WARN_SHARE, warning_lines

    diag = _diagnostics(an, task)
    if diag.empty:
        return Paragraph("")
    lines = warning_lines(diag)
    if not lines:
        pct = f"{100 * WARN_SHARE:.0f}%"
        return Paragraph(f"Every control bit: no run × budget had more than {pct} of its forced "
                         f"ends cut, re-opened or without an answer, or more than {pct} errors.")
    return Bullets(lines)




def _control_summary(an, task: str) -> list:
    return [control_warnings(an, task)]


@section("Budget control: did it bite?", order=90, figures=("budget_control",),
         summary=_control_summary, csvs=("diagnostics",))
def _control_section(an, task: str) -> list:
    return [control_warnings(an, task), control_table(an, task)]
