"""Thinking efficiency without a judge: what each problem needs, overthinking, allocating
thinking across problems, and a longer think against more samples at matched FLOPs."""

from __future__ import annotations

import math

import pandas as pd

from evalharness import plots as pl
from evalharness.report.html import (
    Bullets,
    Paragraph,
    Table,
    _ext_tag,
    _num,
    _task,
    fmt_ci,
    fmt_num,
    fmt_pct,
    fmt_pts,
)
from evalharness.report.registry import section

_COLUMNS = (  # metric, header, formatter
    ("natural_length", "L_nat", fmt_num),
    ("t_first", "T*_first", fmt_num),
    ("t_stable", "T*_stable", fmt_num),
    ("natural_correct", "right at natural end", fmt_pct),
    ("overthinking_tokens", "overthinking (tokens)", fmt_num),
    ("token_efficiency", "token efficiency", fmt_num),
    ("falls_with_budget", "falls with budget", fmt_pct),
    ("underthinking", "underthinking", fmt_pct),
    ("censored", "did not end", fmt_pct),
)


def _cell(r, f) -> str:
    if r is None:
        return "–"
    if r["status"] != "ok":
        return "not identifiable"
    return fmt_ci(r["value"], r["lo"], r["hi"], f)


def _by_metric(rows: pd.DataFrame) -> dict[str, pd.Series]:
    return {r["metric"]: r for _, r in rows.iterrows()}


def _config_label(r) -> str:
    return f"{r['model']}{_ext_tag(r)}"


def efficiency_table(an, task: str) -> Table:
    """Per configuration (all its problems on one grid): every metric with its 95% CI."""
    eff = _task(getattr(an, "efficiency", pd.DataFrame()), task)
    if eff.empty:
        return Table([], [])
    eff = eff[eff["bucket"] == "all"]
    rows = []
    for _, g in eff.groupby(["model", "extensions", "budget_grid"], sort=False):
        by = _by_metric(g)
        first = g.iloc[0]
        rows.append([_config_label(first), first["decoding"], first["budget_grid"],
                     first["problem_set"],
                     *[_cell(by.get(m), f) for m, _, f in _COLUMNS]])
    return Table(["configuration", "decoding", "budgets", "problems", *[h for _, h, _ in _COLUMNS]],
                 rows, numeric=set(range(4, 4 + len(_COLUMNS))),
                 caption=f"Thinking efficiency per configuration [95% CI] — task {task}",
                 note="T* and L_nat in tokens; T* are budgets of the grid (the need lies "
                      "between the previous budget and T*). Rule: " + _rule(an, "efficiency"))


def bucket_table(an, task: str, pick: pd.Series) -> Table:
    """The headline configuration's metrics per difficulty bucket."""
    eff = _task(getattr(an, "efficiency", pd.DataFrame()), task)
    if eff.empty or pick is None:
        return Table([], [])
    g = eff[(eff["model"] == pick["model"]) & (eff["extensions"] == pick["extensions"])
            & (eff["budget_grid"] == pick["budget_grid"]) & (eff["bucket"] != "all")]
    if g.empty:
        return Table([], [])
    shown = [c for c in _COLUMNS if c[0] in ("t_stable", "natural_length", "overthinking_tokens",
                                             "token_efficiency", "falls_with_budget")]
    rows = []
    for bucket, b in g.groupby("bucket", sort=True):
        by = _by_metric(b)
        rows.append([bucket, by["t_stable"]["problem_set"], *[_cell(by.get(m), f)
                                                              for m, _, f in shown]])
    return Table(["bucket", "problems", *[h for _, h, _ in shown]], rows,
                 numeric=set(range(2, 2 + len(shown))),
                 caption=f"{_config_label(pick)}: efficiency per {g['bucket_source'].iloc[0]} "
                         f"bucket [95% CI] — task {task}")


def allocation_table(an, task: str) -> Table:
    """Per configuration and predictor: the uniform budget's best accuracy and its tokens
    against the cross-fitted predicted allocation."""
    head = _task(getattr(an, "allocation_headline", pd.DataFrame()), task)
    if head.empty:
        return Table([], [])
    rows = []
    for _, r in head.iterrows():
        if r["status"] != "ok":
            rows.append([_config_label(r), r["decoding"], r.get("predictor") or "–",
                         *["–"] * 5, r["status"]])
            continue
        rows.append([
            _config_label(r), r["decoding"], r["predictor"],
            f"T={r['uniform_budget']:g}: {fmt_pct(r['uniform_exact_match'])}, "
            f"{fmt_num(r['uniform_tokens'])} tok",
            f"{fmt_pct(r['predicted_exact_match'])}, {fmt_num(r['predicted_tokens'])} tok",
            fmt_ci(r["exact_match_diff"], r["exact_match_diff_lo"], r["exact_match_diff_hi"], fmt_pts),
            fmt_ci(r["token_ratio"], r["ratio_lo"], r["ratio_hi"], _times),
            int(_num(r["problems"])), r["verdict"],
        ])
    return Table(["configuration", "decoding", "difficulty from", "uniform best",
                  "predicted (cross-fitted)", "accuracy diff (pts)", "fewer tokens (×)",
                  "problems", "verdict"], rows, numeric={5, 6, 7},
                 caption=f"Allocating thinking per difficulty bucket vs one budget — task {task}",
                 note="Rule: " + _rule(an, "allocation"))


def seq_par_table(an, task: str) -> Table:
    sv = _task(getattr(an, "seq_vs_par", pd.DataFrame()), task)
    if sv.empty:
        return Table([], [])
    if "status" in sv and not (sv["status"] == "ok").any():
        return Paragraph("Sequential vs parallel at matched FLOPs: " + "; ".join(
            f"{r['model']}: {r['status']}" for _, r in sv.iterrows()) + ".")
    sv = sv[sv["status"] == "ok"] if "status" in sv else sv
    rows = [[r["model"], r["bucket"], f"T={r['seq_budget']:g}",
             f"maj@{int(r['k'])} at T={r['par_budget']:g}", fmt_num(r["flops_ratio"]),
             fmt_ci(r["seq_accuracy"], r["seq_lo"], r["seq_hi"], fmt_pct),
             fmt_ci(r["par_accuracy"], r["par_lo"], r["par_hi"], fmt_pct),
             fmt_ci(r["diff"], r["diff_lo"], r["diff_hi"], fmt_pts), int(r["problems"]),
             r["winner"]] for _, r in sv.iterrows()]
    return Table(["model", "bucket", "sequential", "parallel", "FLOPs seq/par", "sequential acc",
                  "parallel acc", "seq − par (pts)", "problems", "wins"], rows,
                 numeric={4, 5, 6, 7, 8},
                 caption=f"Sequential vs parallel at matched inference FLOPs — task {task}",
                 note="Rule: " + _rule(an, "seq_vs_par"))


def definitions(eff: pd.DataFrame) -> Bullets:
    """One line per metric, in the wording the analysis table carries."""
    first = eff.drop_duplicates("metric")
    return Bullets([f"{m}: {d}" for m, d in zip(first["metric"], first["definition"], strict=True)],
                   prefix="")


def _rule(an, name: str) -> str:
    return str(getattr(an, "rules", {}).get(name, ""))


def _times(v) -> str:
    v = _num(v)
    return f"{v:.2f}×" if math.isfinite(v) else "–"


def efficiency_headline(an, task: str) -> list[str]:
    """The efficiency answer in two sentences, for the task's first screen and summary.md."""
    pick = pl.headline_config(an, task)
    eff = _task(getattr(an, "efficiency", pd.DataFrame()), task)
    if pick is None or eff.empty:
        return []
    g = eff[(eff["model"] == pick["model"]) & (eff["extensions"] == pick["extensions"])
            & (eff["budget_grid"] == pick["budget_grid"]) & (eff["bucket"] == "all")]
    by = _by_metric(g)

    def say(metric: str, f) -> str:
        r = by.get(metric)
        return _cell(r, f) if r is not None else "–"

    def over(metric: str) -> str:  # how many problems a metric rests on (a subset, often)
        r = by.get(metric)
        if r is None or not math.isfinite(_num(r.get("measured"))):
            return ""
        return f", {int(_num(r['measured']))} of {int(_num(r['problems']))} problems"

    who = f"{_config_label(pick)} ({pick['decoding']}, {by['t_stable']['problem_set']})" \
        if "t_stable" in by else _config_label(pick)
    out = [
        f"Thinking efficiency, {who}: on problems it solves at its natural end it thinks "
        f"{say('overthinking_tokens', fmt_num)} tokens past the budget it needs"
        f"{over('overthinking_tokens')} (token efficiency {say('token_efficiency', fmt_num)}"
        f"{over('token_efficiency')}; natural length {say('natural_length', fmt_num)}"
        f"{over('natural_length')}); more budget turns a right answer wrong on "
        f"{say('falls_with_budget', fmt_pct)} of problems."
    ]
    acc = f"{fmt_pct(pick['uniform_exact_match'])} at T={pick['uniform_budget']:g}"
    diff = fmt_ci(pick["exact_match_diff"], pick["exact_match_diff_lo"], pick["exact_match_diff_hi"], fmt_pts)
    ratio = fmt_ci(pick["token_ratio"], pick["ratio_lo"], pick["ratio_hi"], _times)
    if pick["verdict"] == "does not reach":
        out.append(f"A budget per difficulty bucket ({pick['predictor']}), chosen on the other "
                   f"half of the problems, does not reach the uniform budget's best accuracy "
                   f"({acc}): {diff} points, with {ratio} fewer thinking tokens.")
    else:
        how = ("reaches" if pick["verdict"] == "reaches" else
               "falls short of, but is not shown worse than,")
        out.append(f"A budget per difficulty bucket ({pick['predictor']}), chosen on the other "
                   f"half of the problems, {how} the uniform budget's best accuracy ({acc}; "
                   f"difference {diff} points) with {ratio} fewer thinking tokens.")
    return out


@section("Thinking efficiency", order=45,
         figures=("efficiency_needs", "efficiency_allocation", "seq_vs_par"),
         lead=efficiency_headline,
         csvs=("efficiency", "needs", "allocation", "allocation_headline", "seq_vs_par"))
def _efficiency_section(an, task: str) -> list:
    eff = _task(getattr(an, "efficiency", pd.DataFrame()), task)
    if eff.empty:
        return []
    pick = pl.headline_config(an, task)
    return [
        Paragraph("Measured from the sweep itself, with no judge: every budget's forced "
                  "answer and the natural thinking length give each problem the budget it "
                  "needs. Definitions:"),
        definitions(eff),
        efficiency_table(an, task), bucket_table(an, task, pick), allocation_table(an, task),
        seq_par_table(an, task),
    ]
