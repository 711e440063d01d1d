"""Emergence across model size: exact match beside continuous metrics, sharpness, where the
jump is, seed spread, the Schaeffer test and its verdict sentence."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from evalharness import plots as pl
from evalharness.report.html import Paragraph, Table, _num, _task, fmt_ci, fmt_num, fmt_pct
from evalharness.report.registry import section
from evalharness.scoring.columns import COLUMNS, Emergence, emergence_columns

# analysis-derived metrics; labels of score columns come from the scoring registry
_DERIVED_NAMES = {
    "exact_match": "exact match",
    "ref_exact": "all reference tokens argmax",
    "pred_exact_match_ref": "predicted EM, (per-token acc)^L",
    "pred_exact_match_gold": "predicted EM over gold trace",
}


def _metric_name(metric: str) -> str:
    """A metric's label: the registry's (read now: columns may be registered after import)."""
    if metric in _DERIVED_NAMES:
        return _DERIVED_NAMES[metric]
    col = COLUMNS.get(metric)
    return col.label if col is not None else metric


def _report_columns(g: pd.DataFrame) -> list[tuple[str, Emergence]]:
    """The registry's columns with a header in the report's emergence table, by report rank;
    an optional one only where the family has a value."""
    views = [(view.report_rank, i, name, view)
             for i, (name, view) in enumerate(emergence_columns().items())
             if view.report is not None and name in g
             and not (view.report_optional and not g[name].notna().any())]
    return [(name, view) for *_, name, view in sorted(views, key=lambda t: t[:2])]


def emergence_views(an, task: str) -> list[Table]:
    """Per family: EM beside the continuous metrics on the same samples, and sharpness."""
    em = _task(an.emergence, task)
    out = []
    for family, g in em.groupby("family", sort=True) if not em.empty else []:
        g = g.sort_values("params")
        gold = "gold_token_acc" in g and g["gold_token_acc"].notna().any()
        shown = _report_columns(g)
        cols = ["model", "params", "T", "samples", "exact match", "predicted (p^L)",
                *[view.report for _, view in shown]]
        if gold:
            cols += ["predicted EM (gold trace)"]
        rows = []
        for _, r in g.iterrows():
            row = [r["model"], pl.format_params(r["params"]), f"{r['budget']:g}",
                   int(r["n_samples"]), fmt_pct(r["exact_match"]), fmt_pct(r["pred_exact_match_ref"])]
            row += [(fmt_pct if view.report_fmt == "pct" else fmt_num)(r[name])
                    for name, view in shown]
            if gold:
                row += [fmt_pct(r["pred_exact_match_gold"])]
            rows.append(row)
        out.append(Table(
            cols, rows, numeric=set(range(1, len(cols))),
            caption=f"Emergence — {family} family, task {task} (each model at its largest "
                    f"budget)",
        ))
        sh = an.sharpness
        sh = sh[(sh["task"] == task) & (sh["family"] == family)] if not sh.empty else sh
        if not sh.empty:
            srows = []
            for _, r in sh.iterrows():
                ok = r.get("status", "ok") == "ok"
                srows.append([
                    _metric_name(r["metric"]),
                    fmt_pct(r["sharpness"], 0) if ok else r["status"], r.get("fit", "") or "",
                    fmt_pct(r.get("sharpness_sigmoid"), 0), fmt_pct(r.get("sharpness_isotonic"), 0),
                    (f"{pl.format_params(r['steepest_from_params'])} → "
                     f"{pl.format_params(r['steepest_to_params'])}") if ok else "–",
                    fmt_num(r["total_rise"]), int(r.get("n_sizes", r["n_models"])),
                ])
                lo_, hi_ = _num(r.get("sharpness_lo")), _num(r.get("sharpness_hi"))
                srows[-1].insert(2, f"[{fmt_pct(lo_, 0)}, {fmt_pct(hi_, 0)}]"
                                 if ok and math.isfinite(lo_) and math.isfinite(hi_) else "–")
            rule = an.rules.get("sharpness", "") if hasattr(an, "rules") else ""
            how = sh["sharpness_ci_resamples"].dropna() if "sharpness_ci_resamples" in sh \
                else pd.Series(dtype=object)
            ci_note = f" CI resamples {how.iloc[0]}." if len(how) else ""
            out.append(Table(
                ["metric", "sharpness (≤ 100%)", "95% CI", "fit", "sigmoid", "isotonic",
                 "steepest doubling", "total change", "sizes"],
                srows, numeric={1, 2, 4, 5, 7, 8},
                caption=f"Monotone-fit sharpness — {family} family, task {task}",
                note=(f"Sharpness: {rule}." if rule else "") + ci_note,
            ))
        sp = getattr(an, "spans", pd.DataFrame())
        sp = sp[(sp["task"] == task) & (sp["family"] == family)] if not sp.empty else sp
        if not sp.empty:
            prow = [[_metric_name(r["metric"]),
                     f"{pl.format_params(r['lo_params'])} → "
                     f"{pl.format_params(r['hi_params'])}",
                     f"{r['doublings']:.2f}", fmt_pct(r["em_share"], 0),
                     fmt_pct(r["metric_share"], 0), str(r.get("seeds", "") or ""),
                     "yes" if r.get("monotone", True) else "no: EM falls inside the span"]
                    for _, r in sp.iterrows()]
            lo, hi = sp["em_from"].iloc[0], sp["em_to"].iloc[0]
            out.append(Table(
                ["metric", f"EM {fmt_pct(lo, 0)} → {fmt_pct(hi, 0)} between (per-size means)",
                 "doublings", "EM's rise in span", "metric's rise in span", "seeds per size",
                 "EM rises throughout"],
                prow, numeric={2, 3, 4},
                caption=f"Where exact match jumps — {family} family, task {task}: on per-size "
                        f"means over seeds; from the last size below {fmt_pct(lo, 0)} with every "
                        f"smaller size below too, to the first size above {fmt_pct(hi, 0)} with "
                        "every larger size above too",
            ))
    return out


def _fam(df: pd.DataFrame, task: str, family) -> pd.DataFrame:
    if df is None or df.empty:
        return pd.DataFrame()
    return df[(df["task"] == task) & (df["family"] == family)]


def _mean_sd_ci(r) -> str:
    s = fmt_num(r["mean"])
    if math.isfinite(_num(r.get("sd"))):
        s += f" ± {fmt_num(r['sd'])}"
    if math.isfinite(_num(r.get("ci_lo"))):
        s += f" [{fmt_num(r['ci_lo'])}, {fmt_num(r['ci_hi'])}]"
    return s


def seed_views(an, task: str) -> list:
    """Per family: the verdict, EM and per-token accuracy over seeds, the Schaeffer test."""
    sc = _task(getattr(an, "seed_curves", pd.DataFrame()), task)
    out: list = []
    for family, g in sc.groupby("family", sort=True) if not sc.empty else []:
        v = _fam(getattr(an, "verdicts", pd.DataFrame()), task, family)
        if not v.empty:
            out.append(Paragraph(f"Verdict: {v['sentence'].iloc[0]}",
                                 an.rules.get("schaeffer", "") if hasattr(an, "rules") else ""))
        metrics = list(dict.fromkeys(g["metric"]))
        wide = {m: g[g["metric"] == m].set_index("size") for m in metrics}
        em = wide["exact_match"].sort_values("params")
        rows = []
        for size, r in em.iterrows():
            row = [size, pl.format_params(r["params"]), int(r["n_seeds"]), _mean_sd_ci(r),
                   f"{fmt_num(r['seed_min'])} – {fmt_num(r['seed_max'])}"]
            for m in metrics[1:]:
                row.append(_mean_sd_ci(wide[m].loc[size]) if size in wide[m].index else "–")
            rows.append(row)
        cols = ["size", "params", "seeds", "exact match mean ± sd [95% CI]", "EM seed range",
                *[f"{_metric_name(m)} mean ± sd [95% CI]" for m in metrics[1:]]]
        out.append(Table(
            cols, rows, numeric=set(range(1, len(cols))),
            caption=f"Exact match and per-token accuracy over seeds — {family} family, "
                    f"task {task}",
            note=("Per size: mean over seeds ± their SD, 95% CI "
                  + (an.rules.get("seed_ci", "") if hasattr(an, "rules") else "")
                  + ". Per-token accuracy is token-pooled over the informative gold tokens "
                  "where the scores have them (gold_info_acc)."),
        ))
        t = _fam(getattr(an, "schaeffer", pd.DataFrame()), task, family)
        if t.empty or "em_pred" not in t:
            continue
        t = t.sort_values("params")
        r0 = t.iloc[0]
        srows = [[r["size"], pl.format_params(r["params"]),
                  fmt_ci(r["exact_match"], r["exact_match_lo"], r["exact_match_hi"]), fmt_num(r["token_error"]),
                  fmt_num(r["p_fit"]), fmt_ci(r["em_pred"], r["em_pred_lo"], r["em_pred_hi"]),
                  fmt_ci(r["em_minus_pred"], r["em_minus_pred_lo"], r["em_minus_pred_hi"]),
                  fmt_ci(r["resid"], r["resid_lo"], r["resid_hi"])]
                 for _, r in t.iterrows()]
        out.append(Table(
            ["size", "params", "observed EM [95% CI]", "per-token error", "p (smooth fit)",
             "predicted EM p^L_eff [CI]", "observed − predicted [CI]",
             "logit-error residual [CI]"], srows, numeric=set(range(1, 8)),
            caption=f"Schaeffer test — {family} family, task {task}",
            note=(f"Per-token metric: {r0['token_metric'] or 'none'}; "
                  f"L_eff = {fmt_ci(r0['l_eff'], r0['l_eff_lo'], r0['l_eff_hi'])}; "
                  f"logit(error) per doubling of N = "
                  f"{fmt_ci(r0['token_slope'], r0['token_slope_lo'], r0['token_slope_hi'])}. "
                  "CIs of predicted EM, differences and residuals are Bonferroni-corrected "
                  "over sizes."),
        ))
    return out


def verdict_lines(results_dir: Path) -> list[str]:
    """The emergence verdict sentence per (family, task), from ``analysis/verdicts.csv`` (written
    by `evalharness analyze`); a hint when it is missing or older than the scores."""
    path = Path(results_dir) / "analysis" / "verdicts.csv"
    if not path.exists():
        return ["no emergence verdicts yet: run `evalharness analyze`"]
    try:
        v = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return ["no emergence verdicts: no family with >= 2 sizes on one task"]
    out = [str(s) for s in v.get("sentence", pd.Series(dtype=str))]
    newest = max((p.stat().st_mtime for p in Path(results_dir).glob("runs/*/scores.parquet")),
                 default=0.0)
    if newest > path.stat().st_mtime:
        out.append("(verdicts are older than the scores: rerun `evalharness analyze`)")
    return out or ["no emergence verdicts: no family with >= 2 sizes on one task"]




def emergence_headline(an, task: str) -> list[str]:
    """The emergence verdict per family: computed from the numbers
    (analysis.emergence_tests.verdict_sentence), not a story."""
    out: list[str] = []
    # emergence: the verdict computed from the numbers (analysis.emergence_tests.verdict_sentence), not a story
    v = _task(getattr(an, "verdicts", pd.DataFrame()), task)
    out += [f"Emergence: {t}" for t in v["sentence"]] if not v.empty else []
    return out


@section("Emergence across model size", order=50, figures=("emergence_seeds", "emergence"),
         lead=emergence_headline, lead_figure=True,
         csvs=("verdicts", "seed_curves", "schaeffer", "emergence", "sharpness", "spans"))
def _emergence_section(an, task: str) -> list:
    return seed_views(an, task) + emergence_views(an, task)
