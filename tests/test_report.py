"""Report: self-contained HTML and summary.md from a small, realistic fake results folder."""

from __future__ import annotations

import base64
import json
import re
import shutil

import pytest

try:  # the fake results writer lives beside the plot tests
    from test_plots import FAKE_MODELS, INJECTED, write_fake_results
except ImportError:  # tests/ imported as a package
    from tests.test_plots import FAKE_MODELS, INJECTED, write_fake_results

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
    html_path, md_path = make_report(root, drill_problems=100)
    assert html_path == root / "report.html" and md_path == root / "summary.md"
    return root, html_path.read_text(), md_path.read_text(), analyze(load_scores(root))


def test_html_is_self_contained_with_every_figure(report):
    from evalharness.plots import build_figures

    _, page, _, an = report
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    specs = build_figures(an)
    assert len(imgs) == len(specs) == 7  # incl. the over-seeds emergence figure (issue #15)
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


def _md_table(md: str, caption_start: str) -> list[list[str]]:
    """Rows (cells) of the markdown table under the bold caption starting with `caption_start`."""
    lines = md.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith(f"**{caption_start}"))
    rows = []
    for ln in lines[i + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split(" | ")])
    assert rows[1][0].startswith(":---") or rows[1][0].startswith("---")
    return [rows[0]] + rows[2:]


def _value_ci(cell: str) -> tuple[float, float, float]:
    m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell)
    assert m, cell
    return tuple(float(x) for x in m.groups())


def test_fit_table_matches_analysis(report):
    _, page, md, an = report
    header, *rows = _md_table(md, "accuracy = a + b·log₂T")
    assert header[:6] == ["model", "params", "a [95% CI]", "b [95% CI]", "R²",
                          "gain per doubling (pts)"]  # fmt: skip
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


def test_summary_tables(report):
    _, _, md, an = report
    acc = _md_table(md, "Accuracy (%) [95% CI] by thinking budget")
    assert acc[0][2:] == [f"T={t}" for t in sorted(an.budgets["budget"].unique())]
    assert len(acc) - 1 == 2 * len(FAKE_MODELS)  # a greedy and a sampled curve per model
    b = an.budgets.set_index(["model", "budget"])
    cell = next(r for r in acc if r[0] == "arith-h128")[-1]  # largest model, largest budget
    assert cell.startswith(f"{100 * b.loc[('arith-h128', 128), 'accuracy']:.1f} [")

    em = _md_table(md, "Emergence — arith family")
    assert [r[0] for r in em[1:]] == list(FAKE_MODELS)
    em_an = an.emergence.set_index("model")
    for r in em[1:]:
        assert r[em[0].index("exact match")] == f"{100 * em_an.loc[r[0], 'em']:.1f}%"
    sharp = _md_table(md, "Monotone-fit sharpness — arith family")
    names = [r[0] for r in sharp[1:]]
    assert "exact match" in names and "per-token accuracy (answer)" in names
    # a share of the rise, never above 100% (the old piecewise rule could exceed it)
    shares = [float(r[1].rstrip("%")) for r in sharp[1:] if r[1].endswith("%")]
    assert shares and all(0 <= v <= 100 for v in shares)

    front = _md_table(md, "Compute frontier")
    assert len(front) - 1 == int(an.compute["on_frontier"].sum())

    runs = _md_table(md, "Runs")
    assert len(runs) - 1 == 2 * len(FAKE_MODELS)


def test_manifests_and_drill_down(report):
    root, page, _, _ = report
    run_ids = sorted(p.name for p in (root / "runs").iterdir())
    for rid in run_ids:
        assert page.count(f"<details class=run><summary>{rid} — ") == 1  # manifest
        assert f"— run {rid} (n=" in page  # drill-down
    # drill-down rows: raw answer, extracted answer, reference, correctness marks
    assert page.count("<details class=problem>") == 24 * len(run_ids)
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
