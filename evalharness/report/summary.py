"""summary.md: the answer per task in a page or two, the details one link away.

It holds the verdict sentences every section puts on the task's first screen (its `lead`), the
few blocks a section marks for the summary (e.g. the budget-control warnings), and links by
relative path to the analysis CSVs behind each section; the tables themselves are in
report.html.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalharness.report.html import Bullets
from evalharness.report.registry import Section

MAX_LINES = 10  # warning lines / run notes shown before "… and k more" (the rest: report.html)


def _capped(lines: list[str], more: str) -> list[str]:
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[:MAX_LINES], f"… and {len(lines) - MAX_LINES} more: {more}"]


def _block_markdown(block, csvs: str) -> str:
    if isinstance(block, Bullets) and len(block) > MAX_LINES:
        more = f"see report.html{f' and {csvs}' if csvs else ''}"
        return "\n".join(f"- {s}" for s in _capped([block.prefix + x for x in block.lines], more))
    return block.markdown()


def _links(results_dir: Path, names: tuple[str, ...]) -> str:
    return ", ".join(f"[{n}.csv](analysis/{n}.csv)" for n in names
                     if (results_dir / "analysis" / f"{n}.csv").exists())


def render_summary(results_dir: Path, an, tasks: list[str], secs: list[Section], sub: str,
                   runs: pd.DataFrame, notes: list[str]) -> str:
    """The Markdown summary (escape it with `markdown_safe` before writing)."""
    results_dir = Path(results_dir)
    have_csvs = (results_dir / "analysis").is_dir()
    md = [
        "# evalharness report", "", sub, "",
        "Every table and figure is in [report.html](report.html); the numbers behind each "
        "section are in the CSV files linked under it"
        + ("." if have_csvs else " (none yet: run `evalharness analyze` to write them)."),
        "",
    ]
    for task in tasks:
        md += [f"## Task {task}", ""]
        lead = [s for sec in secs if sec.lead for s in sec.lead(an, task)]
        md += [f"- {s}" for s in lead] + ([""] if lead else [])
        details = []
        for sec in secs:
            links = _links(results_dir, sec.csvs)
            blocks = [b for b in sec.summary(an, task) if len(b)] if sec.summary else []
            if blocks:
                md += [f"### {sec.title}", ""]
                md += [x for b in blocks for x in (_block_markdown(b, links), "")]
            if links and any(len(b) for b in sec.build(an, task)):
                details.append(f"- {sec.title}: {links}")
        if details:
            md += ["Details by section:", "", *details, ""]
    md += ["## Runs", "",
           f"{len(runs)} runs: the run table and every manifest are in the appendix of "
           "[report.html](report.html#runs); each run's files are under runs/RUN_ID/.", ""]
    md += [x for n in _capped(notes, "see report.html#runs") for x in (n, "")]
    return "\n".join(md).rstrip() + "\n"
