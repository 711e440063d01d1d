"""Report: self-contained HTML and summary.md from a small, realistic fake results folder."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil

import pytest

try:  # the fake results writer lives beside the plot tests
    from test_plots import FAKE_MODELS, FAKE_TASK, INJECTED, write_fake_results
except ImportError:  # tests/ imported as a package
    from tests.test_plots import FAKE_MODELS, FAKE_TASK, INJECTED, write_fake_results

MANIFEST_INJECTION = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(results dir, html text, summary text, analysis) for the fake zoo results."""
    from evalharness.analysis import analyze
    from evalharness.report import make_report
    from evalharness.scoring import load_scores

    root = write_fake_results(tmp_path_factory.mktemp("results"))
    man_path = next((root / "runs").iterdir()) / "manifest.json"
    man = json.loads(man_path.read_text())
    man["notes"] = MANIFEST_INJECTION
    man_path.write_text(json.dumps(man))
    # every problem in the drill-down, so the injected answer is certainly shown
    scores = load_scores(root)
    an = analyze(scores)
    html_path, md_path = make_report(root, scores=scores, analysis=an, drill_problems=100)
    assert html_path == root / "report.html" and md_path == root / "summary.md"
    return root, html_path.read_text(), md_path.read_text(), an


def test_html_is_self_contained_with_every_figure(report):
    from evalharness.plots import build_figures

    _, page, _, an = report
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    specs = build_figures(an)
    # every figure once: a lead figure on the task's first screen is only linked from its section
    assert specs and len(imgs) == len(specs)
    for data in imgs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for spec in specs:
        assert f'id="fig-{spec.name}"' in page
    # nothing is loaded from elsewhere and no script runs
    assert not re.search(r"<(script|link|iframe)\b", page, re.IGNORECASE)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<style>" in page


def test_records_text_is_escaped(report):
    _, page, _, _ = report
    assert INJECTED not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert MANIFEST_INJECTION not in page
    assert "&lt;img src=x onerror=\\&quot;alert(1)\\&quot;&gt;" in page  # in the JSON


def _html_table(page: str, caption_start: str) -> list[list[str]]:
    """Header and body rows (unescaped cell text) of the HTML table whose caption starts with
    `caption_start` (folded or not)."""
    m = re.search(r"<caption>" + re.escape(html.escape(caption_start, quote=True))
                  + r".*?</caption>(.*?)</table>", page, re.S)
    assert m, caption_start
    rows = re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)
    return [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
            for r in rows]


def _value_ci(cell: str) -> tuple[float, float, float]:
    m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell)
    assert m, cell
    return tuple(float(x) for x in m.groups())


def test_fit_table_matches_analysis(report):
    _, page, _, an = report
    header, *rows = _html_table(page, "accuracy = a + b·log₂T")
    assert header[:6] == ["model", "params", "a [95% CI]", "b [95% CI]", "R²",
                          "gain per doubling (pts)"]
    # greedy sweeps ordered by size; each best-of-N run is its own (labelled) curve, never pooled
    assert [r[0] for r in rows if "(n=" not in r[0]] == list(FAKE_MODELS)
    assert [r[0] for r in rows if "(n=" in r[0]] == [f"{m} (n=6, temp=0.8)" for m in FAKE_MODELS]
    fits = an.fits.set_index("model")
    n_ok = 0
    for r in rows:
        f = fits.loc[r[0]]
        if f["status"] != "ok":
            assert r[3] == "–" and r[-1] == f["status"]
            continue
        n_ok += 1
        for cell, key in ((r[2], "a"), (r[3], "b")):
            got = _value_ci(cell)
            want = (f[key], f[f"{key}_lo"], f[f"{key}_hi"])
            assert got == pytest.approx(want, abs=6e-4)
        assert float(r[4]) == pytest.approx(f["r2"], abs=6e-4)
        assert float(r[5]) == pytest.approx(100 * f["gain_per_doubling"], abs=0.051)
        assert r[6] == f["budgets"].replace(" ", ", ")
        # the same row is in the HTML table
        assert f'<td>{r[0]}</td><td class="num">{r[1]}</td><td class="num">{r[2]}</td>' in page
    assert n_ok >= 2
    assert "Fit rule: fit over budgets T &gt; 0" in page  # the saturation rule is stated


def test_headline_names_largest_model_fit(report):
    _, _, md, an = report
    f = an.fits.set_index("model").loc["arith-h128"]
    line = next(ln for ln in md.splitlines() if ln.startswith("- Largest model"))
    assert "arith-h128" in line
    assert f"{100 * f['b']:+.1f} points per doubling" in line
    assert f"R² = {f['r2']:.3f}" in line


def test_report_tables_match_the_analysis(report):
    _, page, _, an = report
    acc = _html_table(page, "Accuracy (%) [95% CI] by thinking budget")
    assert acc[0][2:] == [f"T={t}" for t in sorted(an.budgets["budget"].unique())]
    assert len(acc) - 1 == 2 * len(FAKE_MODELS)  # a greedy and a sampled curve per model
    b = an.budgets.set_index(["model", "budget"])
    cell = next(r for r in acc if r[0] == "arith-h128")[-1]  # largest model, largest budget
    assert cell.startswith(f"{100 * b.loc[('arith-h128', 128), 'exact_match']:.1f} [")

    em = _html_table(page, "Emergence — arith family")
    assert [r[0] for r in em[1:]] == list(FAKE_MODELS)
    em_an = an.emergence.set_index("model")
    for r in em[1:]:
        assert r[em[0].index("exact match")] == f"{100 * em_an.loc[r[0], 'exact_match']:.1f}%"
    sharp = _html_table(page, "Monotone-fit sharpness — arith family")
    names = [r[0] for r in sharp[1:]]
    assert "exact match" in names and "per-token accuracy (answer)" in names
    # a share of the rise, never above 100% (the old piecewise rule could exceed it)
    shares = [float(r[1].rstrip("%")) for r in sharp[1:] if r[1].endswith("%")]
    assert shares and all(0 <= v <= 100 for v in shares)

    front = _html_table(page, "Compute frontier")
    assert len(front) - 1 == int(an.compute["on_frontier"].sum())

    runs = _html_table(page, "Runs")
    assert len(runs) - 1 == 2 * len(FAKE_MODELS)


def test_manifests_and_drill_down(report):
    root, page, _, _ = report
    run_ids = sorted(p.name for p in (root / "runs").iterdir())
    problems = {json.loads(ln)["problem_id"]
                for p in (root / "runs").iterdir() for ln in (p / "samples.jsonl").open()}
    for rid in run_ids:
        assert page.count(f"<details class=run><summary>{rid} — ") == 1  # manifest
        assert f"— run {rid} (n=" in page  # drill-down
    # drill-down rows: raw answer, extracted answer, reference, correctness marks
    # drill_problems=100 is more than there are: every problem under every run
    assert page.count("<details class=problem>") == len(problems) * len(run_ids)
    assert "thinking, sample 0 at T=128" in page
    assert 'class="ok"' in page and 'class="bad"' in page


def test_report_from_a_copy_of_results(report, tmp_path):
    """Only results/ is needed: a copy elsewhere gives the same summary."""
    from evalharness.report import make_report

    root, _, md, _ = report
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("report.html", "summary.md"))
    _, md2 = make_report(copy, drill_problems=100)
    assert md2.read_text() == md


def _built(an, task: str) -> list:
    """The registered sections with something to show for `task`, in page order."""
    from evalharness.plots import build_figures
    from evalharness.report import sections

    kinds = {s.kind for s in build_figures(an) if s.task == task}
    return [sec for sec in sections()
            if kinds & set(sec.figures) or any(len(b) for b in sec.build(an, task))]


def test_every_registered_section_is_on_the_page_in_registry_order(report):
    _, page, _, an = report
    titles = [sec.title for sec in _built(an, FAKE_TASK)]
    assert titles  # the fake results have budgets, samples, sizes and compute
    where = [page.find(f"<h3>{html.escape(t, quote=False)}</h3>") for t in titles]
    assert -1 not in where and where == sorted(where)


def test_each_task_leads_with_its_verdicts_and_figures_before_any_table(report):
    from evalharness.plots import build_figures
    from evalharness.report import sections
    from evalharness.report.page import headline

    _, page, md, an = report
    task = page[page.index(f'<h2 id="task-{FAKE_TASK}">'):page.index('<h2 id="runs"')]
    lead = task[:task.index("<h3>")]
    lines = [s for sec in sections() if sec.lead for s in sec.lead(an, FAKE_TASK)]
    assert lines and headline(an, FAKE_TASK)[0] == lines[0]  # the fit sentence comes first
    for s in lines:
        assert html.escape(s) in lead and f"- {s}" in md
    # one figure per section that carries a verdict, the first of its kinds that exists
    specs = [s for s in build_figures(an) if s.task == FAKE_TASK]
    want = [next(s.name for k in sec.figures for s in specs if s.kind == k)
            for sec in sections() if sec.lead_figure and {s.kind for s in specs} & set(sec.figures)]
    assert re.findall(r'<figure id="fig-([^"]+)"', lead) == want and 1 <= len(want) <= 4
    assert "<table" not in lead


def test_long_tables_are_folded_and_the_drill_down_comes_last(report):
    from evalharness.report.page import OPEN_ROWS

    _, page, _, _ = report
    folded = re.findall(r'<details class="table">.*?</details>', page, re.S)
    assert folded  # the fake results have long tables (accuracy by model x budget, runs)
    for d in folded:
        assert d.count("<tr>") - 1 > OPEN_ROWS  # the header row is a <tr> too
    rest = re.sub(r'<details class="table">.*?</details>', "", page, flags=re.S)
    assert all(t.count("<tr>") - 1 <= OPEN_ROWS for t in re.findall(r"<table>.*?</table>", rest, re.S))
    assert page.index('<h2 id="runs"') < page.index('<h2 id="drill"')
    assert "<h2" not in page[page.index('<h2 id="drill"') + 1 :]


def test_summary_holds_the_answer_and_links_the_tables_it_leaves_out(tmp_path):
    """summary.md carries no tables: the details are the analysis CSVs, linked by relative
    path, each of which exists."""
    from evalharness.analysis import analyze
    from evalharness.report import make_report
    from evalharness.scoring import load_scores

    root = write_fake_results(tmp_path / "results", problems=12)
    an = analyze(load_scores(root), n_boot=50)
    an.write(root / "analysis")
    _, md_path = make_report(root, analysis=an, drill_problems=2)
    md = md_path.read_text()
    assert not [ln for ln in md.splitlines() if ln.startswith("|")]
    links = re.findall(r"\]\((analysis/[^)]+\.csv)\)", md)
    assert "analysis/fits.csv" in links and "analysis/verdicts.csv" in links
    assert all((root / p).is_file() for p in links)
    assert "[report.html](report.html)" in md


def test_a_section_registered_only_through_the_registry_is_rendered(report):
    from evalharness.report import list_runs, render, section
    from evalharness.report.html import Table
    from evalharness.report.registry import unregister
    from evalharness.scoring import load_scores

    root, _, _, an = report
    title, sentence = "Toy section <3", "Toy verdict: every answer is 42."

    def toy(an, task):
        return [Table(["model", "toy value"], [["arith-h16", "0.042"]], caption="toy caption")]

    section(title, order=45, lead=lambda an, task: [sentence], csvs=("fits",))(toy)
    try:
        scores = load_scores(root)
        page, md = render(root, scores, an, list_runs(root, scores), drill_problems=1)
    finally:
        unregister(title)
    assert f"<h3>{html.escape(title)}</h3>" in page
    assert "<caption>toy caption</caption>" in page
    assert "<td>arith-h16</td><td>0.042</td>" in page
    lead = page[page.index('<ul class="headline">'):page.index("</ul>")]
    assert html.escape(sentence) in lead and f"- {sentence}" in md
    # order=45 puts it between the log-T section (40) and emergence (50)
    assert (page.index("<h3>Is accuracy linear in log T?</h3>") < page.index(html.escape(title))
            < page.index("<h3>Emergence across model size</h3>"))
    from evalharness.report import sections

    assert title not in [s.title for s in sections()]  # unregistered again
