"""The page: report.html laid out from the section registry, answer first.

Per task the first screen holds the verdict sentences the sections compute (their `lead`) and
the figure each of those sections carries; then every section in registry order, its long
tables folded in ``<details>``; then an appendix with the runs and manifests, and the
per-problem drill-down last. Figures are rendered in memory and embedded as base64 PNG, the
CSS is inline, there is no JavaScript and nothing is fetched, so the file can be mailed or
archived alone. Every piece of text taken from the records is HTML-escaped.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import pandas as pd

from evalharness import plots as pl
from evalharness.report.html import Paragraph, Table, _params_map, esc
from evalharness.report.registry import Section, sections
from evalharness.report.runs import (
    DRILL_PROBLEMS,
    DRILL_SAMPLES,
    _drill_run,
    _load_prompts,
    _pick_problems,
    _run_notes,
    list_runs,
    runs_table,
)
from evalharness.report.summary import render_summary

# a table longer than this is folded: open, it would push the next section off the screen
OPEN_ROWS = 8

CSS = """
:root { --fg:#1d2430; --muted:#6a7383; --line:#dde2ea; --bg:#ffffff; --soft:#f5f7fa;
        --accent:#35507a; --ok:#1c7c3a; --bad:#b42318; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
       Arial,sans-serif; color:var(--fg); background:var(--bg); }
main { max-width:1240px; margin:0 auto; padding:28px 32px 80px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:21px; margin:44px 0 10px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:17px; margin:28px 0 8px; color:var(--accent); }
p.sub { color:var(--muted); margin:0 0 18px; }
nav.toc { background:var(--soft); border:1px solid var(--line); border-radius:8px;
          padding:10px 18px; margin:16px 0 8px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:16px; }
ul.headline { background:#f0f5fb; border-left:4px solid var(--accent); padding:12px 16px 12px 34px;
              border-radius:4px; }
ul.headline li { margin:4px 0; }
figure { margin:18px 0 26px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
figcaption { color:var(--muted); font-size:13px; margin-top:4px; }
.tablewrap { overflow-x:auto; margin:10px 0 4px; }
table { border-collapse:collapse; font-size:13px; min-width:40%; }
caption { text-align:left; font-weight:600; padding:4px 0 6px; }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left;
         vertical-align:top; }
th { background:var(--soft); font-weight:600; white-space:nowrap; }
td:first-child { white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tbody tr:nth-child(even) { background:#fafbfc; }
p.note { color:var(--muted); font-size:12.5px; margin:2px 0 14px; max-width:1000px; }
details { border:1px solid var(--line); border-radius:6px; margin:6px 0; background:#fff; }
details > summary { cursor:pointer; padding:6px 10px; }
details[open] > summary { border-bottom:1px solid var(--line); background:var(--soft); }
details > *:not(summary) { margin-left:12px; margin-right:12px; }
details.run > summary { font-weight:600; }
details.problem { margin:4px 10px; }
pre { background:#f6f8fa; border:1px solid var(--line); border-radius:4px; padding:8px 10px;
      font-size:12.5px; white-space:pre-wrap; word-break:break-word; max-height:420px;
      overflow:auto; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px;
       background:#f2f4f7; padding:0 3px; border-radius:3px; word-break:break-all; }
.kv { margin:8px 0; } .kv > b { display:inline-block; min-width:90px; color:var(--muted); }
.ok { color:var(--ok); font-weight:700; } .bad { color:var(--bad); font-weight:700; }
.muted { color:var(--muted); }
ul.warn { background:#fff6f5; border-left:4px solid var(--bad); padding:10px 16px 10px 34px;
          border-radius:4px; }
footer { color:var(--muted); font-size:12px; margin-top:50px; }
/* the answer first: verdicts on the left, the figures that carry them beside, so a laptop's
   first screen shows both even when the buy answer runs long */
.lead { display:grid; grid-template-columns:minmax(0, 5fr) minmax(0, 6fr); gap:18px;
        align-items:start; }
.lead > ul.headline { margin:0; }
.leadfigs figure { margin:0 0 14px; }
@media (max-width: 900px) { .lead { grid-template-columns:minmax(0, 1fr); } }
details.table > summary { font-weight:600; font-size:13.5px; }
details.table > summary .muted { font-weight:400; }
h2.appendix { color:var(--muted); }
"""


def _figure_html(spec: pl.FigureSpec) -> str:
    buf = io.BytesIO()
    spec.figure.savefig(buf, format="png", dpi=pl.DPI, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    alt = f"{spec.kind.replace('_', ' ')} — task {spec.task}"
    return (
        f'<figure id="fig-{esc(spec.name)}"><img alt="{esc(alt)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{esc(spec.caption)}</figcaption>'
        f"</figure>"
    )


def _block_html(block, lead: set[str]) -> str:
    """A section's block; a long table folded under its caption, and a sentence already on the
    task's first screen replaced by its note (the reader has just read it)."""
    if isinstance(block, Paragraph) and block.text and any(block.text in s for s in lead):
        return Paragraph("(Stated at the top of this task.)", block.note).html()
    if isinstance(block, Table) and len(block) > OPEN_ROWS:
        return (f'<details class="table"><summary>{esc(block.caption or "table")} '
                f'<span class="muted">({len(block)} rows)</span></summary>{block.html()}'
                "</details>")
    return block.html()


def _task_figures(specs: list, task: str, sec: Section) -> list:
    return [s for k in sec.figures for s in specs if s.task == task and s.kind == k]


def headline(an, task: str) -> list[str]:
    """Plain sentences with the numbers a reader looks for first: the log-T fit and its
    scrutiny, the emergence verdicts, the compute frontier (the buy answer is its own lead)."""
    from evalharness.report.budget import fit_headline
    from evalharness.report.compute import frontier_headline
    from evalharness.report.emergence import emergence_headline

    return fit_headline(an, task) + emergence_headline(an, task) + frontier_headline(an, task)


def _task_html(an, task: str, specs: list, secs: list[Section]) -> list[str]:
    lead = [s for sec in secs if sec.lead for s in sec.lead(an, task)]
    lead_figs = [figs[0] for sec in secs if sec.lead_figure
                 for figs in [_task_figures(specs, task, sec)] if figs]
    h = [f'<h2 id="task-{esc(pl.slug(task))}">Task {esc(task)}</h2>']
    top = []
    if lead:
        top.append('<ul class="headline">' + "".join(f"<li>{esc(s)}</li>" for s in lead) + "</ul>")
    if lead_figs:
        top.append('<div class="leadfigs">' + "".join(_figure_html(s) for s in lead_figs)
                   + "</div>")
    if len(top) == 2:
        h.append('<div class="lead">' + "".join(top) + "</div>")
    else:
        h.extend(top)
    lead_set, on_top = set(lead), {s.name for s in lead_figs}
    for sec in secs:
        figs = _task_figures(specs, task, sec)
        blocks = [b for b in sec.build(an, task) if len(b)]
        if not figs and not blocks:
            continue
        h.append(f"<h3>{esc(sec.title)}</h3>")
        for s in figs:
            if s.name in on_top:
                h.append(f'<p class="note">Figure: <a href="#fig-{esc(s.name)}">'
                         f"{esc(s.caption)}</a> (top of this task).</p>")
            else:
                h.append(_figure_html(s))
        h.extend(_block_html(b, lead_set) for b in blocks)
    return h


def render(results_dir: Path, scores: pd.DataFrame, analysis, runs: pd.DataFrame,
           drill_problems: int = DRILL_PROBLEMS,
           x_axes: tuple[str, ...] = ("params", "train_flops")) -> tuple[str, str]:
    """(HTML page, Markdown summary) from loaded scores, their analysis and the run list;
    `x_axes`: those of the emergence-over-training figure."""
    an = analysis
    tasks = sorted(set(an.budgets["task"]) if not an.budgets.empty else set(runs["task"]))
    specs = pl.build_figures(an, x_axes)
    secs = sections()
    params = _params_map(an)
    title = "evalharness report"
    sub = (f"{len(runs)} runs · {runs['model'].nunique()} models · {len(tasks)} task(s) · "
           f"{len(scores):,} scored records")
    toc = [f'<a href="#task-{esc(pl.slug(t))}">{esc(t)}</a>' for t in tasks]
    toc += ['<a href="#runs">appendix: runs &amp; manifests</a>',
            '<a href="#drill">per-problem drill-down</a>']
    notes = _run_notes(runs)
    h = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1><p class=sub>{esc(sub)}"
        + (' · <a href="#runs">notes on the runs</a>' if notes else "") + "</p>",
        f'<nav class="toc">{" ".join(toc)}</nav>',
    ]
    for task in tasks:
        h.extend(_task_html(an, task, specs, secs))
    # appendix: runs and manifests
    rt = runs_table(runs, scores)
    h.append('<h2 id="runs" class="appendix">Appendix: runs and manifests</h2>')
    h.extend(f"<p class=note>{esc(note)}</p>" for note in notes)
    h.append(_block_html(rt, set()))
    for _, r in runs.sort_values(["task", "params", "model"]).iterrows():
        man = json.dumps(r["manifest"], indent=2, sort_keys=True, default=str)
        h.append(
            f"<details class=run><summary>{esc(r['run_id'])} — {esc(r['model'])} on "
            f"{esc(r['task'])}</summary><pre>{esc(man)}</pre></details>"
        )
    # drill-down
    h.append('<h2 id="drill" class="appendix">Per-problem drill-down</h2>')
    h.append(
        f"<p class=note>A reproducible sample of up to {drill_problems} problems per task (the "
        f"same problems for every run of a task), first {DRILL_SAMPLES} samples each. "
        "✓/✗ in a problem's line: correctness of its first sample at each budget, smallest "
        "budget first.</p>"
    )
    prompts = _load_prompts(results_dir, runs) if len(runs) else {}
    for task in sorted(set(runs["task"])):
        tr = runs[runs["task"] == task].copy()
        ids = scores.loc[scores["task"] == task, "problem_id"] if not scores.empty else []
        picks = _pick_problems(ids, drill_problems)
        h.append(f"<h3>Task {esc(task)}</h3>")
        tr["_p"] = tr["model"].map(lambda m: pl.finite_or(params.get(m), math.inf))
        tr["_n"] = pd.to_numeric(tr["n"], errors="coerce").fillna(1)  # greedy sweep first
        for _, r in tr.sort_values(["_p", "model", "_n", "run_id"]).iterrows():
            n = r["n"] if r["n"] is not None else "?"
            h.append(
                f"<details class=run><summary>{esc(r['model'])} — run {esc(r['run_id'])} "
                f"(n={esc(n)})</summary>{_drill_run(r, picks, scores, prompts)}</details>"
            )
    h.append(
        "<footer>Generated by evalharness from the records under results/ "
        "(figures embedded; no external resources).</footer></main></body></html>"
    )
    md = render_summary(results_dir, an, tasks, secs, sub, runs, notes)
    return "\n".join(h), md


def make_report(results_dir: Path, *, scores: pd.DataFrame | None = None, analysis=None,
                drill_problems: int = DRILL_PROBLEMS,
                x_axes: tuple[str, ...] = ("params", "train_flops")) -> tuple[Path, Path]:
    """Write ``results_dir/report.html`` (self-contained) and ``results_dir/summary.md``;
    return their paths. `scores`/`analysis` skip recomputation when the caller has them."""
    results_dir = Path(results_dir)
    if scores is None:
        from evalharness.scoring import load_scores

        scores = load_scores(results_dir)
    if analysis is None:
        from evalharness.analysis import analyze

        analysis = analyze(scores)
    runs = list_runs(results_dir, scores)
    page, summary = render(results_dir, scores, analysis, runs, drill_problems, x_axes)
    html_path, md_path = results_dir / "report.html", results_dir / "summary.md"
    html_path.write_text(page, encoding="utf-8")
    md_path.write_text(markdown_safe(summary), encoding="utf-8")
    return html_path, md_path


def markdown_safe(text: str) -> str:
    """Markdown with no raw HTML: names from tasks, models and records may hold tags, which a
    Markdown viewer would render (``<script>``). summary.md writes none of its own, so every
    ``<`` is escaped; ``&`` first, so an entity in a name is shown as typed, not decoded."""
    return text.replace("&", "&amp;").replace("<", "&lt;")
