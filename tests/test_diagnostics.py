"""Budget-control diagnostics: per-record columns, per run × budget rates, the >5% warning
rule, the report section and figure, and the CLI summary on the real zoo."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from helpers import cli
from typer.testing import CliRunner

from evalharness.diagnostics import budget_control, warning_lines
from evalharness.scoring import score_records
from evalharness.types import SampleRecord

DIAG = ["marker_found", "natural_end", "reopened", "answer_extracted", "answer_cut", "error"]
ZOO_FORMAT = {"name": "zoo", "think_start": "<think>", "think_end": "</think>",
              "answer_cue": "", "chat_template": False, "extension": ""}
COT_FORMAT = {"name": "cot", "think_start": "", "think_end": "Therefore, the final answer is",
              "answer_cue": " ", "chat_template": True, "extension": "Wait"}


def rec(answer: str = "42", *, cut: bool = True, natural: int | None = None,
        finish: str = "stop", budget: int = 8, pid: str = "p0", run_id: str = "run-a",
        model: str = "toy", thinking_tokens: int | None = None) -> SampleRecord:
    used = budget if thinking_tokens is None else thinking_tokens
    return SampleRecord(
        run_id=run_id, model=model, task="add", problem_id=pid, sample=0, seed=1, budget=budget,
        extensions=0, thinking_tokens=used if not finish.startswith("error") else 0,
        natural_thinking_tokens=natural, cut=cut, thinking="1+1=2;" * 2, answer=answer,
        answer_ids=[ord(c) for c in answer], answer_logprobs=[-0.1] * len(answer),
        reference="42", ref_ids=[7, 5], ref_logprobs=[-0.2, -0.3], ref_hits=[True, True],
        prompt_tokens=5, generated_tokens=used + len(answer), finish_reason=finish, time_s=0.0,
    )


def score(records: list[SampleRecord], markers: dict | None = None) -> pd.DataFrame:
    df = pd.DataFrame([r.to_json() for r in records])
    return score_records(df, "integer", markers=markers)


# ----------------------------------------------------------------------------- per record

CASES = {
    # name: (record, marker_found, natural_end, reopened, answer_extracted, answer_cut, error)
    "natural end at the marker": (rec("42", cut=False, natural=5, thinking_tokens=5),
                                  True, True, False, True, False, False),
    "end of sequence before the budget": (rec("42", cut=False, natural=None, thinking_tokens=3),
                                          False, True, False, True, False, False),
    "forced end, clean answer": (rec("42"), False, False, False, True, False, False),
    "forced end, rambling answer cut by length": (
        rec("so first we should consider the", finish="length"),
        False, False, False, False, True, False),
    "forced end, re-opened with <think>": (rec("<think> carry the one 42"),
                                           False, False, True, True, False, False),
    "forced end, re-opened with Wait": (rec("Wait, 4+3=7 so 42"),
                                        False, False, True, True, False, False),
    "forced end, end marker again": (rec("4 </think> 42"), False, False, True, True, False, False),
    "'Waiting' is not the extension word": (rec("Waiting: 42"),
                                            False, False, False, True, False, False),
    "a natural answer with Wait is not a re-opened forced end": (
        rec("Wait 42", cut=False, natural=5, thinking_tokens=5),
        True, True, False, True, False, False),
    "forced end, no answer": (rec("no idea"), False, False, False, False, False, False),
    "engine error": (rec("", cut=False, finish="error: prompt (5) + budget (8) + answer (16) "
                         "tokens exceed the context (10)"),
                     False, False, False, False, False, True),
}


def test_each_record_gets_exact_diagnostic_columns():
    names = list(CASES)
    got = score([CASES[n][0] for n in names])
    for i, name in enumerate(names):
        want = dict(zip(DIAG, CASES[name][1:], strict=True))
        have = {c: bool(got.loc[i, c]) for c in DIAG}
        assert have == want, name
    # answer_extracted is exactly "neither no answer nor an error"
    assert (got["answer_extracted"] == ~(got["no_answer"] | got["error"])).all()


def test_reopened_uses_the_runs_format_markers():
    answers = ["Wait, 42", "<think> 42", "42. Therefore, the final answer is 42", "42"]
    recs = [rec(a, pid=f"p{i}") for i, a in enumerate(answers)]
    # the zoo format has no extension word: "Wait" is just text there
    assert score(recs, ZOO_FORMAT)["reopened"].tolist() == [False, True, False, False]
    # plain CoT: its cue is the end marker, "Wait" its extension; no think tags at all
    assert score(recs, COT_FORMAT)["reopened"].tolist() == [True, False, True, False]
    # no format given: the common markers
    assert score(recs)["reopened"].tolist() == [True, True, False, False]


# ----------------------------------------------------------------------------- aggregation


def _batch(n: int, bad: int, budget: int, **kw) -> list[SampleRecord]:
    """`n` forced records at `budget`, the first `bad` of them with an answer cut by length."""
    return [rec("123456" if i < bad else "42", finish="length" if i < bad else "stop",
                budget=budget, pid=f"q{i}", **kw) for i in range(n)]


def test_rates_per_run_and_budget_and_the_five_percent_rule():
    recs = (_batch(20, 1, 8)  # exactly 5%: no warning
            + _batch(50, 3, 16)  # 6%: warning
            + [rec("42", cut=False, natural=9, budget=64, pid=f"q{i}",  # natural ends only
                   thinking_tokens=9, finish="length" if i < 5 else "stop") for i in range(10)]
            + _batch(10, 0, 8, run_id="run-b", model="other"))
    diag = budget_control(score(recs)).set_index(["run_id", "budget"])
    a8, a16, a64 = (diag.loc[("run-a", t)] for t in (8, 16, 64))
    assert (a8["n"], a8["forced"], a8["forced_answer_cut"]) == (20, 20, 1)
    assert a8["forced_answer_cut_rate"] == pytest.approx(0.05)
    assert a16["forced_answer_cut_rate"] == pytest.approx(0.06)
    assert a8["forced_rate"] == 1.0 and a8["natural_rate"] == 0.0
    # natural ends: nothing forced, so forced-end rates are undefined; their own cut answers
    # are counted but are not a control failing
    assert (a64["forced"], a64["marker_found"], a64["natural_end"], a64["answer_cut"]) == (
        0, 10, 10, 5)
    assert pd.isna(a64["forced_answer_cut_rate"]) and a64["answer_cut_rate"] == 0.5
    assert diag.loc[("run-b", 8), "forced_answer_cut"] == 0
    lines = warning_lines(diag.reset_index())
    assert lines == ["toy add T=16: 6% (3/50) of forced answers were cut by "
                     "--max-answer-tokens (raise it)"]


def test_every_failure_kind_warns_in_one_line_per_run_and_budget():
    recs = ([rec("<think> 42", pid="r0"), rec("hmm", pid="r1"),
             rec("", cut=False, finish="error: boom", pid="r2")]
            + [rec("42", pid=f"ok{i}") for i in range(7)])
    diag = budget_control(score(recs))
    (row,) = diag.to_dict(orient="records")
    assert (row["n"], row["forced"], row["reopened"], row["forced_no_answer"], row["errors"]) == (
        10, 9, 1, 1, 1)
    assert row["reopened_rate"] == pytest.approx(1 / 9)
    (line,) = warning_lines(diag)
    assert line.startswith("toy add T=8: ")
    assert "11% (1/9) of forced ends re-opened thinking" in line
    assert "11% (1/9) of forced ends gave no extractable answer" in line
    assert "10% (1/10) of records are errors" in line
    assert "cut by --max-answer-tokens" not in line


def test_sampled_runs_are_labelled_like_analysis():
    scores = score([replace(rec("1", pid=f"q{i}", finish="length"), sample=s)
                    for i in range(2) for s in range(4)])
    scores["temperature"] = 0.7
    (line,) = warning_lines(budget_control(scores))
    assert line.startswith("toy (n=4, temp=0.7) add T=8: 100% (8/8) of forced answers")


def test_scores_without_the_new_columns_derive_them_or_say_unknown():
    """Scores files written before these columns: counts are derived from the record
    columns; re-opened thinking needs the answer text, so it is unknown (NaN), never 0."""
    recs = [rec("<think> 1", pid="a", finish="length"), rec("hmm", pid="b"), rec("42", pid="c")]
    full = budget_control(score(recs))
    old = budget_control(score(recs).drop(columns=DIAG[:-1]))
    same = ["n", "forced", "natural_end", "marker_found", "errors", "forced_answer_cut",
            "forced_no_answer", "answer_cut"]
    assert old[same].astype(float).equals(full[same].astype(float))
    assert full.loc[0, "reopened"] == 1 and pd.isna(old.loc[0, "reopened"])
    assert "re-opened" not in warning_lines(old)[0] and "re-opened" in warning_lines(full)[0]


def test_empty_scores_give_an_empty_table_and_no_warnings():
    diag = budget_control(score([]))
    assert diag.empty and "forced_answer_cut_rate" in diag and warning_lines(diag) == []


# ----------------------------------------------------------------------------- report, figure


def write_results(root: Path) -> Path:
    """One run, budgets 0/8/64, 20 problems: all forced at 0 and 8, natural ends at 64. At
    T=0 four forced answers (20%) ramble into the answer limit; at T=8 one (5%, no warning)
    re-opens thinking; T=64 is clean."""
    run_id = "add__toy-0000"
    run = root / "runs" / run_id
    run.mkdir(parents=True)
    manifest = {
        "run_id": run_id, "model": "toy", "params": 50_000, "family": "toy", "task": "add",
        "answer_type": "integer", "engine": "hf", "status": "complete",
        "spec": {"task": {"name": "add", "answer_type": "integer"}, "format": ZOO_FORMAT,
                 "generation": {"temperature": 0.0}},
        "plan": {"budgets": [0, 8, 64], "n": 1},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    lines = []
    for t in (0, 8, 64):
        for i in range(20):
            if t == 64:
                r = rec("42", cut=False, natural=12, thinking_tokens=12, budget=t)
            elif t == 0 and i < 4:
                r = rec("the sum of the two numbers", finish="length", budget=t)
            elif t == 8 and i == 0:
                r = rec("<think> 42", budget=t)
            else:
                r = rec("42", budget=t)
            lines.append(json.dumps(replace(r, run_id=run_id, problem_id=f"p{i}").to_json()))
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from evalharness.report import make_report

    root = write_results(tmp_path_factory.mktemp("results"))
    html_path, md_path = make_report(root)
    return root, html_path.read_text(), md_path.read_text()


WARN_T0 = ("warning: toy add T=0: 20% (4/20) of forced answers were cut by --max-answer-tokens "
           "(raise it); 20% (4/20) of forced ends gave no extractable answer")


def test_report_section_has_the_table_and_the_warnings(results):
    import html
    import re

    _, page, md = results
    section = md.split("### Budget control: did it bite?")[1].split("\n## ")[0]
    assert f"- {WARN_T0}" in section
    assert section.count("- warning: ") == 1  # T=8 is at exactly 5%: no line
    # the table itself is on the page (summary.md links analysis/diagnostics.csv instead)
    table = page.split("<h3>Budget control: did it bite?</h3>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    # model, T, records, ended at marker, forced, answer cut, re-opened, no answer, errors
    cells = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows]
    assert cells == [
        ["toy", "0", "20", "0% (0)", "100% (20)", "20% (4)", "0% (0)", "20% (4)", "0% (0)"],
        ["toy", "8", "20", "0% (0)", "100% (20)", "0% (0)", "5% (1)", "0% (0)", "0% (0)"],
        ["toy", "64", "20", "100% (20)", "0% (0)", "–", "–", "–", "0% (0)"],
    ]
    assert '<ul class="warn"><li>' + WARN_T0 in page
    assert 'id="fig-budget_control_add"' in page


def test_figure_draws_the_rates_per_budget(results):
    from evalharness.plots import build_figures, load_analysis

    root, _, _ = results
    _, an = load_analysis(root)
    assert {"budget", "forced_answer_cut_rate"} <= set(an.diagnostics.columns)
    (spec,) = [s for s in build_figures(an) if s.kind == "budget_control"]
    axes = [ax for ax in spec.figure.axes if ax.get_visible()]
    assert len(axes) == 4 and all("budget" in ax.get_xlabel() for ax in axes)
    want = {"thinking forced": [1.0, 1.0, 0.0], "answer cut": [0.2, 0.0, None],
            "thinking re-opened": [0.0, 0.05, None], "no extractable": [0.2, 0.0, None]}
    for ax, (title, ys) in zip(axes, want.items(), strict=True):
        assert ax.get_title().startswith(title)
        (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("toy")]
        got = [None if y != y else round(float(y), 6) for y in line.get_ydata()]
        assert got == ys, title


def test_no_figure_where_every_control_bit(tmp_path):
    from evalharness.plots import build_figures, load_analysis

    root = tmp_path / "r"
    write_results(root)
    path = root / "runs" / "add__toy-0000" / "samples.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for r in rows:
        r.update(answer="42", finish_reason="stop")
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _, an = load_analysis(root)
    assert not an.diagnostics.empty
    assert not [s for s in build_figures(an) if s.kind == "budget_control"]
    assert warning_lines(an.diagnostics) == []


# ----------------------------------------------------------------------------- CLI, real zoo


def test_cli_summary_warns_when_the_answer_budget_cuts_forced_answers(tmp_path):
    from evalharness.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "--model", "zoo/arith-h128-s0", "--task", "add_sweep",
                              "--limit", "8", "--budgets", "0,8,64", "--max-answer-tokens", "2",
                              "--results", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    res = cli(["summary", "--results", str(tmp_path)])
    warned = re.findall(r"warning: zoo/arith-h128-s0 add_sweep T=(\d+): (\d+)% \((\d+)/(\d+)\) of "
                        r"forced answers were cut by --max-answer-tokens \(raise it\)", res.output)
    assert warned, res.output
    # the lines agree with the records: two-token answers of multi-digit sums are cut
    from evalharness.scoring import load_scores

    scores = load_scores(tmp_path)
    forced = scores[scores["cut"]]
    for t, _, cut, of in warned:
        at = forced[forced["budget"] == int(t)]
        assert (int(cut), int(of)) == (int(at["answer_cut"].sum()), len(at))
        assert int(cut) * 20 > int(of)
    # T=64 ends thinking naturally: no forced end, nothing to warn about
    assert "T=64" not in " ".join(f"T={t}" for t, *_ in warned)
    assert not scores.loc[scores["budget"] == 64, "cut"].any()
