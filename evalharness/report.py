"""The report: one self-contained ``results/report.html`` and ``results/summary.md``.

Both are pure functions of ``results/`` (runs' manifests, samples and scores): figures are
rendered in memory and embedded as base64 PNG, the CSS is inline, there is no JavaScript and
nothing is fetched, so the HTML file can be mailed or archived alone. Every piece of text taken
from the records (prompts, thinking, answers, manifests) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from evalharness import plots
from evalharness.scoring.columns import COLUMNS

DRILL_PROBLEMS = 20  # problems per run in the drill-down
DRILL_SAMPLES = 4  # samples per problem shown (n > 1 runs)
MAX_TEXT = 6000  # characters of thinking shown per sample (head and tail kept)

# ----------------------------------------------------------------------------- formatting


def _num(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def fmt_num(v, digits: int = 3) -> str:
    v = _num(v)
    if not math.isfinite(v):
        return "–"
    if v == 0:
        return f"{0:.{digits}f}"  # also -0.0
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}"


def fmt_pct(v, digits: int = 1) -> str:
    v = _num(v)
    return f"{100 * v:.{digits}f}%" if math.isfinite(v) else "–"


def fmt_ci(v, lo, hi, f: Callable = fmt_num) -> str:
    """``v [lo, hi]`` (the CI part only where both bounds are finite)."""
    s = f(v)
    if math.isfinite(_num(lo)) and math.isfinite(_num(hi)):
        s += f" [{f(lo)}, {f(hi)}]"
    return s


def fmt_pts(v) -> str:
    """A share difference in percentage points: ``0.143`` -> ``+14.3``."""
    v = _num(v)
    return f"{100 * v:+.1f}" if math.isfinite(v) else "–"


def fmt_flops(v) -> str:
    v = _num(v)
    return f"{v:.3g}" if math.isfinite(v) else "–"


def esc(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


# ----------------------------------------------------------------------------- tables


class Table:
    """A small table rendered to both HTML and Markdown (cells are already-formatted text)."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[object]],
                 numeric: Iterable[int] = (), caption: str = "", note: str = ""):  # fmt: skip
        self.columns = list(columns)
        self.rows = [[("" if c is None else str(c)) for c in r] for r in rows]
        self.numeric = set(numeric)
        self.caption = caption
        self.note = note

    def __len__(self) -> int:
        return len(self.rows)

    def html(self) -> str:
        def cls(i: int) -> str:
            return ' class="num"' if i in self.numeric else ""

        head = "".join(f"<th{cls(i)}>{esc(c)}</th>" for i, c in enumerate(self.columns))
        body = "\n".join(
            "<tr>" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>"
            for r in self.rows
        )
        cap = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        note = f'<p class="note">{esc(self.note)}</p>' if self.note else ""
        return (
            f'<div class="tablewrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>{note}"
        )

    def markdown(self) -> str:
        def cell(c: str) -> str:
            return c.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

        align = ["---:" if i in self.numeric else ":---" for i in range(len(self.columns))]
        lines = [
            "| " + " | ".join(cell(c) for c in self.columns) + " |",
            "| " + " | ".join(align) + " |",
        ]
        lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in self.rows]
        out = "\n".join(lines)
        if self.caption:
            out = f"**{self.caption}**\n\n" + out
        if self.note:
            out += f"\n\n_{self.note}_"
        return out


def _params_map(an) -> dict[str, float]:
    return plots.analysis_params(an)


def _order(models: Iterable[str], params: dict[str, float]) -> list[str]:
    return sorted(set(models), key=lambda m: (plots.finite_or(params.get(m), math.inf), m))


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df else df


def _task(df: pd.DataFrame, task: str) -> pd.DataFrame:
    return df[df["task"] == task] if not df.empty and "task" in df else df.iloc[0:0]


def _ext_tag(row) -> str:
    e = row.get("extensions", 0) if hasattr(row, "get") else 0
    return f" (+{int(e)} Wait)" if _num(e) > 0 else ""


def fit_table(an, task: str) -> Table:
    """The a + b·log₂T fits of one task: a, b with CI, R², gain per doubling, budgets."""
    params = _params_map(an)
    fits = _task(an.fits, task)
    bud = _task(an.budgets, task)
    most = bud[bud["budget"] > 0].groupby("model")["budget"].nunique().max() if len(bud) else 0
    if not (fits.get("status", pd.Series(dtype=str)) == "ok").any() and not most >= 3:
        return Table([], [])  # too few budgets for any fit (e.g. a single-budget task)
    curves = set(plots.curves_with_budgets(bud)["model"]) if len(bud) else set()
    fits = fits[fits["model"].isin(curves)] if not fits.empty else fits  # not 1-budget runs
    rows = []
    for m in _order(fits["model"], params) if not fits.empty else []:
        for _, f in fits[fits["model"] == m].iterrows():
            ok = f.get("status") == "ok"
            rows.append([
                m + _ext_tag(f), plots.format_params(params.get(m)),
                fmt_ci(f["a"], f["a_lo"], f["a_hi"]) if ok else "–",
                fmt_ci(f["b"], f["b_lo"], f["b_hi"]) if ok else "–",
                fmt_num(f["r2"]) if ok else "–",
                fmt_pts(f["gain_per_doubling"]) if ok else "–",
                str(f.get("budgets", "")).replace(" ", ", "),
                int(_num(f.get("n_problems")) or 0), f.get("status", ""),
            ])  # fmt: skip
    rule = ""
    if not fits.empty and "rule" in fits:
        rule = "Fit rule: " + str(fits["rule"].iloc[0])
    return Table(
        ["model", "params", "a [95% CI]", "b [95% CI]", "R²", "gain per doubling (pts)",
         "budgets fitted", "problems", "status"],
        rows, numeric={1, 2, 3, 4, 5, 7},
        caption=f"accuracy = a + b·log₂T — task {task}", note=rule,
    )  # fmt: skip


def accuracy_table(an, task: str) -> Table:
    """Accuracy (%) per model and budget with the 95% CI."""
    params = _params_map(an)
    b = plots.base_level(_task(an.budgets, task))
    if b.empty:
        return Table([], [])
    budgets = sorted(b["budget"].unique())
    rows = []
    for m in _order(b["model"], params):
        g = b[b["model"] == m].set_index("budget")
        cells = []
        for t in budgets:
            if t in g.index:
                r = g.loc[t]
                cells.append(f"{100 * r['accuracy']:.1f} [{100 * r['acc_lo']:.0f}–"
                             f"{100 * r['acc_hi']:.0f}]")  # fmt: skip
            else:
                cells.append("")
        rows.append([m, plots.format_params(params.get(m)), *cells])
    return Table(
        ["model", "params", *[f"T={t:g}" for t in budgets]], rows,
        numeric=set(range(1, len(budgets) + 2)),
        caption=f"Accuracy (%) [95% CI] by thinking budget T — task {task}",
    )  # fmt: skip


def thinking_table(an, task: str) -> Table:
    """Mean thinking tokens used and share of samples cut at the budget."""
    params = _params_map(an)
    b = plots.base_level(_task(an.budgets, task))
    if b.empty or "think_mean" not in b:
        return Table([], [])
    b = plots.curves_with_budgets(b)  # a 1-budget best-of-N run repeats a column of its greedy sweep
    budgets = sorted(b["budget"].unique())
    rows = []
    for m in _order(b["model"], params):
        g = b[b["model"] == m].set_index("budget")
        cells = []
        for t in budgets:
            if t in g.index:
                r = g.loc[t]
                cells.append(f"{r['think_mean']:.1f} ({100 * _num(r.get('cut_rate')):.0f}% cut)")
            else:
                cells.append("")
        rows.append([m, *cells])
    return Table(
        ["model", *[f"T={t:g}" for t in budgets]], rows, numeric=set(range(1, len(budgets) + 1)),
        caption=f"Thinking tokens used (mean) and share of samples cut at T — task {task}",
    )  # fmt: skip


def sampling_table(an, task: str) -> Table:
    """Per (model, budget) with n > 1: pass@1, pass@n, maj@n, best-of-n, coverage fit."""
    params = _params_map(an)
    cov = plots.base_level(_task(an.coverage, task))
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
        rows.append((plots.finite_or(params.get(m), math.inf), m, t, [
            m, plots.format_params(params.get(m)), f"{t:g}", n, fmt_pct(one["pass_at_k"]),
            fmt_pct(top["pass_at_k"]), fmt_pct(top["maj_at_k"]), fmt_pct(top["bok_at_k"]),
            c, beta, r2,
        ]))  # fmt: skip
    rows.sort(key=lambda r: r[:3])
    rule = str(cf["rule"].iloc[0]) if not cf.empty and "rule" in cf else ""
    return Table(
        ["model", "params", "T", "n", "pass@1", "pass@n", "maj@n", "best-of-n",
         "coverage c [CI]", "β [CI]", "R²"],
        [r[3] for r in rows], numeric=set(range(1, 11)),
        caption=f"Repeated sampling — task {task}",
        note=("Coverage fit −log pass@k = c·k^(−β): " + rule) if rule else "",
    )  # fmt: skip


def emergence_table(an, task: str) -> list[Table]:
    """Per family: EM beside the continuous metrics on the same samples, and sharpness."""
    em = _task(an.emergence, task)
    out = []
    for family, g in em.groupby("family", sort=True) if not em.empty else []:
        g = g.sort_values("params")
        gold = "gold_token_acc" in g and g["gold_token_acc"].notna().any()
        cols = [
            "model",
            "params",
            "T",
            "samples",
            "exact match",
            "predicted (p^L)",
            "per-token acc",
            "log p(answer)",
            "mean log p/token",
            "edit distance",
        ]
        if gold:
            cols += ["gold-trace token acc", "predicted EM (gold trace)"]
        rows = []
        for _, r in g.iterrows():
            row = [r["model"], plots.format_params(r["params"]), f"{r['budget']:g}",
                   int(r["n_samples"]), fmt_pct(r["em"]), fmt_pct(r["pred_em_ref"]),
                   fmt_pct(r["ref_token_acc"]), fmt_num(r["ref_logprob_sum"]),
                   fmt_num(r["ref_logprob_mean"]), fmt_num(r["edit_distance"])]  # fmt: skip
            if gold:
                row += [fmt_pct(r["gold_token_acc"]), fmt_pct(r["pred_em_gold"])]
            rows.append(row)
        out.append(Table(
            cols, rows, numeric=set(range(1, len(cols))),
            caption=f"Emergence — {family} family, task {task} (each model at its largest "
                    f"budget)",
        ))  # fmt: skip
        sh = an.sharpness
        sh = sh[(sh["task"] == task) & (sh["family"] == family)] if not sh.empty else sh
        if not sh.empty:
            srows = []
            for _, r in sh.iterrows():
                ok = r.get("status", "ok") == "ok"
                srows.append([
                    _METRIC_NAMES.get(r["metric"], r["metric"]),
                    fmt_pct(r["sharpness"], 0) if ok else r["status"], r.get("fit", "") or "",
                    fmt_pct(r.get("sharpness_sigmoid"), 0), fmt_pct(r.get("sharpness_isotonic"), 0),
                    (f"{plots.format_params(r['steepest_from_params'])} → "
                     f"{plots.format_params(r['steepest_to_params'])}") if ok else "–",
                    fmt_num(r["total_rise"]), int(r.get("n_sizes", r["n_models"])),
                ])  # fmt: skip
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
            ))  # fmt: skip
        sp = getattr(an, "spans", pd.DataFrame())
        sp = sp[(sp["task"] == task) & (sp["family"] == family)] if not sp.empty else sp
        if not sp.empty:
            prow = [[_METRIC_NAMES.get(r["metric"], r["metric"]),
                     f"{plots.format_params(r['lo_params'])} → "
                     f"{plots.format_params(r['hi_params'])}",
                     f"{r['doublings']:.2f}", fmt_pct(r["em_share"], 0),
                     fmt_pct(r["metric_share"], 0), str(r.get("seeds", "") or ""),
                     "yes" if r.get("monotone", True) else "no: EM falls inside the span"]
                    for _, r in sp.iterrows()]  # fmt: skip
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
            ))  # fmt: skip
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


def seed_tables(an, task: str) -> list:
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
        em = wide["em"].sort_values("params")
        rows = []
        for size, r in em.iterrows():
            row = [size, plots.format_params(r["params"]), int(r["n_seeds"]), _mean_sd_ci(r),
                   f"{fmt_num(r['seed_min'])} – {fmt_num(r['seed_max'])}"]
            for m in metrics[1:]:
                row.append(_mean_sd_ci(wide[m].loc[size]) if size in wide[m].index else "–")
            rows.append(row)
        cols = ["size", "params", "seeds", "exact match mean ± sd [95% CI]", "EM seed range",
                *[f"{_METRIC_NAMES.get(m, m)} mean ± sd [95% CI]" for m in metrics[1:]]]
        out.append(Table(
            cols, rows, numeric=set(range(1, len(cols))),
            caption=f"Exact match and per-token accuracy over seeds — {family} family, "
                    f"task {task}",
            note=("Per size: mean over seeds ± their SD, 95% CI "
                  + (an.rules.get("seed_ci", "") if hasattr(an, "rules") else "")
                  + ". Per-token accuracy is token-pooled over the informative gold tokens "
                  "where the scores have them (gold_info_acc)."),
        ))  # fmt: skip
        t = _fam(getattr(an, "schaeffer", pd.DataFrame()), task, family)
        if t.empty or "em_pred" not in t:
            continue
        t = t.sort_values("params")
        r0 = t.iloc[0]
        srows = [[r["size"], plots.format_params(r["params"]),
                  fmt_ci(r["em"], r["em_lo"], r["em_hi"]), fmt_num(r["token_error"]),
                  fmt_num(r["p_fit"]), fmt_ci(r["em_pred"], r["em_pred_lo"], r["em_pred_hi"]),
                  fmt_ci(r["em_minus_pred"], r["em_minus_pred_lo"], r["em_minus_pred_hi"]),
                  fmt_ci(r["resid"], r["resid_lo"], r["resid_hi"])]
                 for _, r in t.iterrows()]  # fmt: skip
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
        ))  # fmt: skip
    return out


def _logt_model(an, task: str):
    """The curve the log-T breakdown shows: the largest greedy model with a fit, else the
    largest one (the CSVs have every curve)."""
    lt = _task(getattr(an, "logt_tests", pd.DataFrame()), task)
    if lt.empty:
        return None
    params = _params_map(an)
    lt = lt.assign(_ok=lt["fit_status"] == "ok",
                   _p=lt["model"].map(lambda m: plots.finite_or(params.get(m), -1)))
    return lt.sort_values(["_ok", "_p", "extensions"], ascending=[True, True, False]).iloc[-1]


def logt_tables(an, task: str) -> list:
    """The log-T law under scrutiny: difficulty breakdown, lack of fit, window-reselecting
    CIs, linear vs logistic, and the difficulty-mix sentence."""
    lt = _task(getattr(an, "logt_tests", pd.DataFrame()), task)
    if lt.empty:
        return []
    out: list = []
    params = _params_map(an)
    pick = _logt_model(an, task)
    key = (pick["model"], pick["extensions"])
    out.append(Paragraph(f"{pick['model']}{_ext_tag(pick)}: {pick['mix_sentence']}"))
    bk = _task(getattr(an, "logt_buckets", pd.DataFrame()), task)
    bf = _task(getattr(an, "logt_bucket_fits", pd.DataFrame()), task)
    if not bk.empty:
        bk = bk[(bk["model"] == key[0]) & (bk["extensions"] == key[1])]
        bf = bf[(bf["model"] == key[0]) & (bf["extensions"] == key[1])].set_index("bucket")
        budgets = sorted(bk["budget"].unique())
        rows = []
        for b, g in bk.groupby("bucket", sort=True):
            acc = g.set_index("budget")["accuracy"]
            f = bf.loc[b] if b in bf.index else None
            rows.append([b, int(g["n_problems"].iloc[0]),
                         *[fmt_pct(acc.get(t), 0) for t in budgets],
                         fmt_ci(100 * f["b"], 100 * f["b_lo"], 100 * f["b_hi"], fmt_pts_raw)
                         if f is not None and f["status"] == "ok" else
                         (f["status"] if f is not None else "–"),
                         fmt_pct(f["step_share"], 0) if f is not None else "–"])  # fmt: skip
        src = bk["bucket_source"].iloc[0] if not bk.empty else ""
        out.append(Table(
            ["bucket", "problems", *[f"T={t:g}" for t in budgets],
             "slope (pts/doubling, pooled window) [CI]", "rise in steepest doubling"], rows,
            numeric=set(range(1, len(budgets) + 4)),
            caption=f"Accuracy by difficulty ({src}) — {pick['model']}{_ext_tag(pick)}, "
                    f"task {task}",
        ))  # fmt: skip
    res = _task(getattr(an, "logt_residuals", pd.DataFrame()), task)
    rows = []
    n_all = len(lt)
    lt = lt[lt["fit_status"] == "ok"]
    for m in _order(lt["model"], params):
        for _, r in lt[lt["model"] == m].iterrows():
            ok = r["fit_status"] == "ok"
            rr = res[(res["model"] == m) & (res["extensions"] == r["extensions"])] \
                if not res.empty else res
            resid = "; ".join(f"{t:g}: {fmt_ci(100 * x['resid'], 100 * x['resid_lo'], 100 * x['resid_hi'], fmt_pts_raw)}"  # noqa: E501
                              for t, x in rr.set_index("budget").iterrows()) if len(rr) else "–"
            lof = (f"χ²={fmt_num(r['lof_chi2'])} (df {int(r['lof_df'])}), "
                   f"p={fmt_num(r['lof_p'])}" if r["lof_status"] == "ok" else r["lof_status"])
            rows.append([
                m + _ext_tag(r),
                fmt_ci(100 * r["b"], 100 * r["b_lo_fixed"], 100 * r["b_hi_fixed"], fmt_pts_raw)
                if ok else r["fit_status"],
                fmt_ci(math.nan, 100 * r["b_lo_reselect"], 100 * r["b_hi_reselect"],
                       fmt_pts_raw).lstrip("– ") if ok else "–",
                fmt_pct(r["reselect_valid_share"], 0), lof, resid,
                f"{r['preferred_aic_window'] or '–'} / {r['preferred_aic_all'] or '–'}",
                f"{r['preferred_bic_window'] or '–'} / {r['preferred_bic_all'] or '–'}",
                r["mix_verdict"],
            ])  # fmt: skip
    rules = an.rules if hasattr(an, "rules") else {}
    out.append(Table(
        ["model", "slope, fixed window [CI]", "slope CI, window re-chosen per resample",
         "resamples with a window", "lack of fit vs per-budget means",
         "residual per T (pts) [CI]", "AIC prefers (window / all T>0)",
         "BIC prefers (window / all T>0)", "difficulty mix"], rows, numeric={1, 2, 3},
        caption=f"Is accuracy linear in log₂T? — task {task}",
        note=f"Curves with a log-T fit ({len(lt)} of {n_all}; the others: no fit, reason in the "
             f"fit table). Lack of fit: {rules.get('lack_of_fit', '')}.",
    ))  # fmt: skip
    lm = _task(getattr(an, "logt_models", pd.DataFrame()), task)
    if not lm.empty:
        lm = lm[(lm["model"] == key[0]) & (lm["extensions"] == key[1])]
    if not lm.empty:
        mrows = [[r["scope"], r["form"], int(r["k"]), fmt_num(r["loglik"]), fmt_num(r["aic"]),
                  fmt_num(r["bic"]), "✓" if r["preferred_aic"] else "",
                  "✓" if r["preferred_bic"] else ""] for _, r in lm.iterrows()]  # fmt: skip
        out.append(Table(
            ["budgets", "model", "parameters", "log-likelihood", "AIC", "BIC", "AIC best",
             "BIC best"], mrows, numeric={2, 3, 4, 5},
            caption=f"Linear vs logistic in log₂T — {pick['model']}{_ext_tag(pick)}, task {task}",
            note="Bernoulli likelihood of every (problem, sample) outcome, each form fitted by "
                 "maximum likelihood; outcomes of one problem at different T are treated as "
                 "independent here (the lack-of-fit test above accounts for the pairing).",
        ))  # fmt: skip
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
                 default=0.0)  # fmt: skip
    if newest > path.stat().st_mtime:
        out.append("(verdicts are older than the scores: rerun `evalharness analyze`)")
    return out or ["no emergence verdicts: no family with >= 2 sizes on one task"]


def fmt_pts_raw(v) -> str:
    v = _num(v)
    return f"{v:+.1f}" if math.isfinite(v) else "–"


# labels of score columns come from the scoring registry; the rest are analysis-derived
_METRIC_NAMES = {
    **{name: c.label for name, c in COLUMNS.items()},
    "em": "exact match",
    "ref_exact": "all reference tokens argmax",
    "pred_em_ref": "predicted EM, (per-token acc)^L",
    "pred_em_gold": "predicted EM over gold trace",
}


def frontier_table(an, task: str) -> Table:
    """The accuracy-vs-FLOPs Pareto frontier of one task, cheapest first."""
    c = _task(an.compute, task)
    if c.empty or "on_frontier" not in c:
        return Table([], [])
    sets = c["problem_set"] if "problem_set" in c else pd.Series("", index=c.index)
    f = c.assign(_set=sets.fillna(""))[c["on_frontier"].astype(bool)]
    f = f.sort_values(["_set", "flops"])
    # one frontier per problem set: points are compared only on the problems they share
    rows = [[r["_set"], fmt_flops(r["flops"]), r["model"] + _ext_tag(r),
             plots.format_params(r["params"]), f"{r['budget']:g}", int(r["n"]),
             fmt_pct(r["accuracy"]), fmt_pct(r.get("pass_at_n"))]
            for _, r in f.iterrows()]  # fmt: skip
    rule = an.rules.get("flops", "") if hasattr(an, "rules") else ""
    return Table(
        ["problems", "FLOPs / problem", "model", "params", "T", "n", "accuracy", "pass@n"], rows,
        numeric={1, 3, 4, 5, 6, 7}, caption=f"Compute frontier per problem set — task {task}",
        note=f"{rule}." if rule else "",
    )  # fmt: skip


def headline(an, task: str) -> list[str]:
    """Plain sentences with the numbers a reader looks for first."""
    out = []
    params = _params_map(an)
    fits = _ok(_task(an.fits, task))
    if not fits.empty:
        fits = fits.assign(
            _p=fits["model"].map(lambda m: plots.finite_or(params.get(m), -1)),
            _greedy=fits["model"].map(lambda m: not plots.split_model(m)[1]),
        )  # the largest model's greedy curve when it has one
        f = fits.sort_values(["_p", "_greedy"]).iloc[-1]
        if "extensions" in fits:
            same = fits[fits["model"] == f["model"]]
            f = same.sort_values("extensions").iloc[0]
        out.append(
            f"Largest model with a fit, {f['model']} ({plots.format_params(params.get(f['model']))}"
            f"): accuracy = {fmt_num(f['a'])} + {fmt_num(f['b'])}·log₂T, "
            f"{fmt_pts(f['b'])} points per doubling of the thinking budget "
            f"(95% CI {fmt_pts(f['b_lo'])} to {fmt_pts(f['b_hi'])}), R² = {fmt_num(f['r2'])}, "
            f"over T ∈ {{{str(f['budgets']).replace(' ', ', ')}}}."
        )
        lt = _task(getattr(an, "logt_tests", pd.DataFrame()), task)
        lt = lt[(lt["model"] == f["model"]) & (lt["extensions"] == f.get("extensions", 0))] \
            if not lt.empty else lt
        if not lt.empty:
            r = lt.iloc[0]
            lof = (f"lack of fit against per-budget means p = {fmt_num(r['lof_p'])}"
                   if r["lof_status"] == "ok" else f"lack of fit: {r['lof_status']}")
            out.append(
                f"Scrutiny of that fit: with the budget window re-chosen in every resample the "
                f"95% CI is {fmt_pts(r['b_lo_reselect'])} to {fmt_pts(r['b_hi_reselect'])} "
                f"points per doubling; {lof}; AIC prefers {r['preferred_aic_all'] or '–'} over "
                f"all T > 0; {r['mix_sentence']}"
            )  # fmt: skip
    # emergence: the verdict computed from the numbers (science.verdict_sentence), not a story
    v = _task(getattr(an, "verdicts", pd.DataFrame()), task)
    out += [f"Emergence: {t}" for t in v["sentence"]] if not v.empty else []
    c = _task(an.compute, task)
    if not c.empty and "on_frontier" in c and c["on_frontier"].any():
        sets = c["problem_set"].fillna("") if "problem_set" in c else pd.Series("", c.index)
        for where, cc in c.groupby(sets, sort=True):
            f = cc[cc["on_frontier"].astype(bool)].sort_values("flops")
            if f.empty:
                continue
            models = list(dict.fromkeys(f["model"]))
            on = f" on {where}" if where else ""
            out.append(
                f"Compute frontier{on}: {len(f)} of {len(cc)} (model, budget, n) points; from "
                f"cheapest to most expensive it passes through {', '.join(models)}."
            )
    return out


class Paragraph:
    """Plain text that sits among a section's tables (same interface as `Table`)."""

    def __init__(self, text: str, note: str = ""):
        self.text, self.note = text, note

    def __len__(self) -> int:
        return 1 if self.text else 0

    def html(self) -> str:
        note = f'<p class="note">{esc(self.note)}</p>' if self.note else ""
        return f"<p>{esc(self.text)}</p>{note}"

    def markdown(self) -> str:
        return self.text + (f"\n\n_{self.note}_" if self.note else "")


def buy_answer(an, task: str) -> Paragraph:
    """The plain-words answer to "bigger model or longer think?" from the computed tables."""
    from evalharness.analysis.buy import answer

    ex, ch, cr = (getattr(an, n, pd.DataFrame()) for n in ("exchange", "cheapest", "crossover"))
    text = answer(task, ex, ch, cr)
    rules = an.rules if hasattr(an, "rules") else {}
    note = " ".join(f"{k}: {rules[k]}." for k in ("flops", "exchange") if k in rules)
    return Paragraph(text, note)


def exchange_rate_table(an, task: str) -> Table:
    ex = _task(getattr(an, "exchange", pd.DataFrame()), task)
    rows = []
    for _, r in ex.iterrows():
        lo, hi = r.get("rate_min", math.nan), r.get("rate_max", math.nan)
        local = (f"{fmt_num(lo)}–{fmt_num(hi)}" if r["status"] == "ok"
                 and math.isfinite(float(r.get("d", math.nan))) else "–")
        smin, smax = int(r.get("seeds_min", 0) or 0), int(r.get("seeds_max", 0) or 0)
        seeds = str(smin) if smin == smax else f"{smin}–{smax}"
        rows.append([r["family"], r["axis"] + (f" ({r['setting']})" if r["setting"] else ""),
                     r["bucket"], fmt_ci(r["rate"], r["rate_lo"], r["rate_hi"]), local,
                     fmt_ci(r["b"], r["b_lo"], r["b_hi"]), fmt_ci(r["c"], r["c_lo"], r["c_hi"]),
                     fmt_num(r["d"]), fmt_num(r.get("max_residual")), seeds,
                     int(r["n_problems"]), r["status"]])  # fmt: skip
    return Table(
        ["family", "axis", "difficulty", "doublings of N per doubling",
         "local rate over measured cells", "b (logit / 2×N)", "c (logit / 2×axis)",
         "interaction d", "largest miss of a measured cell", "seeds per size", "problems",
         "status"], rows,
        numeric={3, 5, 6, 7, 8, 9, 10}, caption=f"Exchange rates — task {task}",
        note="95% bootstrap CIs over problems and seed replicates of one size (one seed per "
             "size: seed-to-seed variation is not in the CI). The largest miss is the fitted "
             "surface's worst error on a measured (size, level) cell's accuracy.",
    )  # fmt: skip


def cheapest_table(an, task: str) -> Table:
    ch = _task(getattr(an, "cheapest", pd.DataFrame()), task)
    rows = []
    for _, r in ch.iterrows():
        where = f"{r.get('problem_set') or ''}"
        if r["status"] != "ok":
            rows.append([where, fmt_pct(r["target"], 0), r["status"], "", "", "", "", "", ""])
            continue
        run = r.get("runner_up_config") if isinstance(r.get("runner_up"), str) else "–"
        seeds = int(r.get("seeds", 0) or 0)
        spread = f"{seeds}: {r['seed_accuracies']}" if seeds > 1 else "1 (no seed spread)"
        rows.append([where, fmt_pct(r["target"], 0), str(r["config"]), spread,
                     fmt_flops(r["flops"]), fmt_pct(r["accuracy"]), run or "–",
                     fmt_ci(r.get("margin"), r.get("margin_lo"), r.get("margin_hi")),
                     fmt_pct(r["flip_rate"], 0)])  # fmt: skip
    rule = an.rules.get("cheapest", "") if hasattr(an, "rules") else ""
    return Table(
        ["problems compared on", "target", "cheapest configuration", "seeds: accuracy each",
         "FLOPs / problem", "accuracy (seed mean)", "runner-up (another size)",
         "FLOPs ratio runner-up / winner", "size flips"], rows, numeric={4, 5, 7, 8},
        caption=f"Cheapest configuration per target accuracy — task {task}",
        note=f"{rule}." if rule else "",
    )  # fmt: skip


def crossover_table(an, task: str) -> Table:
    cr = _task(getattr(an, "crossover", pd.DataFrame()), task)
    costs = _task(getattr(an, "buy_costs", pd.DataFrame()), task)
    rows = []
    for _, r in cr.iterrows():
        if r["status"] == "ok":
            rows.append([fmt_pct(r["target"], 0), r["from_model"], r["to_model"],
                         fmt_ci(r["q_star"], r["q_lo"], r["q_hi"], fmt_flops),
                         fmt_pct(r["crossing_share"], 0)])  # fmt: skip
        else:
            rows.append([fmt_pct(r["target"], 0), r.get("from_model") or "–", "–", r["status"], ""])
    rule = an.rules.get("crossover", "") if hasattr(an, "rules") else ""
    lines = "; ".join(f"{r['model']}: train {fmt_flops(r['train_flops'])}, "
                      f"{fmt_flops(r['inference_flops'])}/query at {fmt_pct(r['target'], 0)}"
                      for _, r in costs.iterrows())  # fmt: skip
    return Table(
        ["target", "preferred at low Q", "preferred at high Q", "crossover Q [95% CI]",
         "resamples that cross"], rows, numeric={3, 4},
        caption=f"Training + inference cost vs query volume — task {task}",
        note=" ".join(x for x in (f"{rule}." if rule else "", f"Lines: {lines}." if lines else "")
                      if x),
    )  # fmt: skip


class Bullets:
    """Warning lines among a section's tables (same interface as `Table`)."""

    def __init__(self, lines: Sequence[str], prefix: str = "warning: "):
        self.lines, self.prefix = list(lines), prefix

    def __len__(self) -> int:
        return len(self.lines)

    def html(self) -> str:
        items = "".join(f"<li>{esc(self.prefix + s)}</li>" for s in self.lines)
        return f'<ul class="warn">{items}</ul>'

    def markdown(self) -> str:
        return "\n".join(f"- {self.prefix}{s}" for s in self.lines)


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
        ])  # fmt: skip
    return Table(
        ["model", "T", "records", "ended at marker", "forced at T", "answer cut",
         "re-opened thinking", "no answer", "errors"], rows, numeric=set(range(1, 9)),
        caption=f"Budget control per run × budget: how thinking ended, and of the forced ends "
                f"how many did not bite — task {task}",
        note="ended at marker / forced at T / errors: share of all records; answer cut "
             "(by --max-answer-tokens), re-opened thinking and no answer: share of the forced "
             f"ends. Warning rule: {BITE_RULE}.",
    )  # fmt: skip


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


# ----------------------------------------------------------------------------- drill-down


def _load_prompts(results_dir: Path, runs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(task, problem_id) -> the rendered prompt, from each run's ``problems.jsonl``."""
    from evalharness.store import read_problems

    out: dict[tuple[str, str], str] = {}
    for _, r in runs.iterrows():
        for row in read_problems(Path(r["dir"])):
            out.setdefault((r["task"], row["id"]), str(row.get("prompt", "")))
    return out


def _pick_problems(ids: Iterable[str], k: int, seed: int = 0) -> list[str]:
    """A reproducible sample of `k` problem ids (same ids for every run of a task)."""
    ids = sorted(set(map(str, ids)))
    if len(ids) <= k:
        return ids
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=k, replace=False).tolist())


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n\n[… {len(text) - limit} characters not shown …]\n\n{text[-half:]}"


def _drill_run(run: pd.Series, picks: list[str], scores: pd.DataFrame,
               prompts: dict[tuple[str, str], str]) -> str:  # fmt: skip
    from evalharness.store import read_samples

    samples = read_samples(Path(run["dir"]) / "samples.jsonl")
    if samples.empty:
        return "<p>No samples.</p>"
    samples = samples[samples["problem_id"].astype(str).isin(picks)]
    samples = samples[samples["sample"] < DRILL_SAMPLES]
    keys = ["problem_id", "sample", "budget", "extensions"]
    sc = scores[scores["run_id"] == run["run_id"]][
        keys + ["pred", "correct", "ref_token_acc", "ref_logprob_sum"]
    ]
    samples = samples.assign(problem_id=samples["problem_id"].astype(str))
    sc = sc.assign(problem_id=sc["problem_id"].astype(str))
    df = samples.merge(sc, on=keys, how="left")
    parts = []
    for pid in picks:
        g = df[df["problem_id"] == pid].sort_values(["sample", "extensions", "budget"])
        if g.empty:
            continue
        ref = str(g["reference"].iloc[0])
        s0 = g[g["sample"] == g["sample"].min()]
        marks = " ".join(
            f'<span class="{"ok" if c is True or c == 1 else "bad"}" title="T={t:g}">'
            f"{'✓' if c is True or c == 1 else '✗'}</span>"
            for t, c in zip(s0["budget"], s0["correct"], strict=True)
        )
        prompt = prompts.get((run["task"], pid))
        body = [
            '<div class="kv"><b>prompt</b>'
            + (f"<pre>{esc(_clip(prompt))}</pre>" if prompt is not None
               else f'<span class="muted">not stored in results ({esc(g["prompt_tokens"].iloc[0])}'
                    " tokens)</span>")
            + "</div>",
            f'<div class="kv"><b>reference</b><code>{esc(ref)}</code></div>',
        ]  # fmt: skip
        rows = []
        for _, r in g.iterrows():
            ok = r["correct"] is True or r["correct"] == 1
            rows.append(
                f"<tr><td class=num>{esc(r['sample'])}</td><td class=num>{esc(f'{r.budget:g}')}"
                f"{esc(_ext_tag(r))}</td><td class=num>{esc(r['thinking_tokens'])}</td>"
                f"<td>{'cut' if r['cut'] else 'natural'}</td>"
                f"<td><code>{esc(_clip(str(r['answer']), 500))}</code></td>"
                f"<td><code>{esc(r['pred'])}</code></td>"
                f'<td class="{"ok" if ok else "bad"}">{"✓" if ok else "✗"}</td>'
                f"<td class=num>{esc(fmt_pct(r['ref_token_acc'], 0))}</td>"
                f"<td class=num>{esc(fmt_num(r['ref_logprob_sum']))}</td></tr>"
            )
        body.append(
            '<div class="tablewrap"><table class="drill"><thead><tr><th class=num>sample</th>'
            "<th class=num>T</th><th class=num>thinking tokens</th><th>thinking ended</th>"
            "<th>answer (raw)</th><th>extracted</th><th>correct</th>"
            "<th class=num>ref token acc</th><th class=num>log p(ref)</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
        for s, gs in g.groupby("sample", sort=True):
            last = gs.sort_values(["extensions", "budget"]).iloc[-1]
            body.append(
                f"<details class=think><summary>thinking, sample {esc(s)} at "
                f"T={esc(f'{last.budget:g}')}{esc(_ext_tag(last))} "
                f"({esc(last['thinking_tokens'])} tokens; smaller budgets see its first T "
                f"tokens)</summary><pre>{esc(_clip(str(last['thinking'])))}</pre></details>"
            )
        parts.append(
            f"<details class=problem><summary><code>{esc(pid)}</code> · reference "
            f"<code>{esc(_clip(ref, 80))}</code> · sample {esc(s0['sample'].iloc[0])} by "
            f"budget: {marks}</summary>{''.join(body)}</details>"
        )
    return "\n".join(parts)


# ----------------------------------------------------------------------------- runs


def list_runs(results_dir: Path, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run (the store's walk): identity, plan, state, and the error / no-answer
    counts that belong next to accuracy (`scores`: the loaded scores, where at hand)."""
    from evalharness import store
    from evalharness.scoring import run_table

    cols = ["run_id", "dir", "manifest", "model", "task", "params", "budgets", "n",
            "temperature", "mode", "engine", "status", "records", "errors", "no_answer",
            "exact_match", "present", "expected", "duplicates", "bad_lines", "spec_label",
            "spec_detail"]
    state = run_table(results_dir, scores)
    if state.empty:
        return pd.DataFrame(columns=cols)
    state = state.set_index("run_id")
    rows = []
    for d in store.run_dirs(results_dir):
        man = store.read_manifest(d)
        gen = (man.get("spec") or {}).get("generation") or {}
        plan = man.get("plan") or {}
        st = state.loc[d.name]
        rows.append({
            "run_id": d.name, "dir": str(d), "manifest": man,
            "model": str(man.get("model", "?")), "task": str(man.get("task", "?")),
            "params": plots.finite_or(man.get("params"), math.nan),
            "budgets": plan.get("budgets"), "n": plan.get("n"),
            "temperature": gen.get("temperature"), "mode": gen.get("mode"),
            "engine": man.get("engine"),
            **{k: st[k] for k in cols[11:] if k in st.index},
        })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _run_notes(runs: pd.DataFrame) -> list[str]:
    """Sentences about the runs a reader must know before trusting a number."""
    notes = []
    labelled = runs[runs["spec_label"].astype(bool)] if "spec_label" in runs else runs.iloc[:0]
    for (model, task), g in labelled.groupby(["model", "task"]):
        detail = g["spec_detail"] if "spec_detail" in g else g["spec_label"]
        specs = dict(zip(g["spec_label"], detail.fillna(""), strict=True))
        words = "; ".join(label if not d or d == label else f"{label} = {d}"
                          for label, d in sorted(specs.items()))
        notes.append(f"{model} on {task} has {len(g)} runs with different settings "
                     f"({words}): each is its own curve, never pooled.")
    for _, r in runs.iterrows():
        if r["status"] != "complete":
            notes.append(f"Run {r['run_id']} is {r['status']} ({r['present']} of {r['expected']} "
                         "records): its numbers cover only the records present.")
        if r["errors"]:
            notes.append(f"Run {r['run_id']}: {r['errors']} of {r['records']} records are errors "
                         "(e.g. prompt + budget longer than the context), counted as wrong.")
    return notes


def runs_table(runs: pd.DataFrame, scores: pd.DataFrame) -> Table:
    """Every run with its state and, next to its exact match, how many records were engine
    errors (counted as wrong) and how many gave no extractable answer."""
    rows = []
    for _, r in runs.sort_values(["task", "params", "model"]).iterrows():
        b = r["budgets"]
        status = str(r["status"] or "")
        if status == "incomplete":
            status += f" ({r['present']}/{r['expected']} records)"
        if r.get("duplicates") or r.get("bad_lines"):
            status += f"; {r['duplicates']} duplicated, {r['bad_lines']} invalid lines skipped"
        model = r["model"] + (f" [{r['spec_label']}]" if r.get("spec_label") else "")
        rows.append([
            r["run_id"], model, plots.format_params(r["params"]), r["task"],
            ", ".join(str(x) for x in b) if isinstance(b, list) else str(b),
            "" if r["n"] is None else r["n"], "" if r["temperature"] is None else r["temperature"],
            r["mode"] or "", r["engine"] or "", int(r["records"]), fmt_num(r["exact_match"]),
            int(r["errors"]), int(r["no_answer"]), status,
        ])  # fmt: skip
    return Table(["run", "model", "params", "task", "budgets", "n", "temperature", "mode",
                  "engine", "records", "exact match", "errors", "no answer", "status"], rows,
                 numeric={2, 5, 6, 9, 10, 11, 12},
                 caption="Runs (errors and no-answer records count as wrong in exact match)")  # fmt: skip


# ----------------------------------------------------------------------------- page

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
"""


def _figure_html(spec: plots.FigureSpec) -> str:
    buf = io.BytesIO()
    spec.figure.savefig(buf, format="png", dpi=plots.DPI, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    alt = f"{spec.kind.replace('_', ' ')} — task {spec.task}"
    return (
        f'<figure id="fig-{esc(spec.name)}"><img alt="{esc(alt)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{esc(spec.caption)}</figcaption>'
        f"</figure>"
    )


def render(results_dir: Path, scores: pd.DataFrame, analysis, runs: pd.DataFrame,
           drill_problems: int = DRILL_PROBLEMS) -> tuple[str, str]:  # fmt: skip
    """(HTML page, Markdown summary) from loaded scores, their analysis and the run list."""
    an = analysis
    tasks = sorted(set(an.budgets["task"]) if not an.budgets.empty else set(runs["task"]))
    specs = plots.build_figures(an)
    params = _params_map(an)
    n_rec = len(scores)
    title = "evalharness report"
    sub = (f"{len(runs)} runs · {runs['model'].nunique()} models · {len(tasks)} task(s) · "
           f"{n_rec:,} scored records")  # fmt: skip
    toc = [f'<a href="#task-{esc(plots.slug(t))}">{esc(t)}</a>' for t in tasks]
    toc += ['<a href="#runs">runs &amp; manifests</a>', '<a href="#drill">per-problem</a>']
    h = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1><p class=sub>{esc(sub)}</p>",
        f'<nav class="toc">{" ".join(toc)}</nav>',
    ]
    md = [f"# {title}", "", sub, ""]
    for task in tasks:
        h.append(f'<h2 id="task-{esc(plots.slug(task))}">Task {esc(task)}</h2>')
        md += [f"## Task {task}", ""]
        lines = headline(an, task)
        if lines:
            h.append('<ul class="headline">' + "".join(f"<li>{esc(s)}</li>" for s in lines)
                     + "</ul>")  # fmt: skip
            md += [f"- {s}" for s in lines] + [""]
        figs = {s.kind: [] for s in specs}
        for s in specs:
            if s.task == task:
                figs[s.kind].append(s)
        sections = [
            ("Accuracy vs thinking budget", "accuracy_vs_budget",
             [fit_table(an, task), accuracy_table(an, task)]),
            ("Thinking tokens used", "thinking_tokens", [thinking_table(an, task)]),
            ("Repeated sampling (best-of-N)", "pass_maj_at_k", [sampling_table(an, task)]),
            ("Is accuracy linear in log T?", "", logt_tables(an, task)),
            ("Emergence across model size", ("emergence_seeds", "emergence"),
             seed_tables(an, task) + emergence_table(an, task)),
            ("Inference-compute frontier", "flops_frontier", [frontier_table(an, task)]),
            ("Bigger model or longer think?", "iso_accuracy",
             [buy_answer(an, task), exchange_rate_table(an, task), cheapest_table(an, task)]),
            ("Training + inference cost vs query volume", "cost_vs_queries",
             [crossover_table(an, task)]),
            ("Budget control: did it bite?", "budget_control",
             [control_warnings(an, task), control_table(an, task)]),
        ]  # fmt: skip
        for name, kind, tables in sections:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            shown = [f for k in kinds for f in figs.get(k, [])]
            tables = [t for t in tables if len(t)]
            if not shown and not tables:
                continue
            h.append(f"<h3>{esc(name)}</h3>")
            h.extend(_figure_html(s) for s in shown)
            h.extend(t.html() for t in tables)
            md.append(f"### {name}\n")
            for t in tables:
                md.extend([t.markdown(), ""])
    # runs and manifests
    rt = runs_table(runs, scores)
    h.append('<h2 id="runs">Runs and manifests</h2>')
    h.append(rt.html())
    md += ["## Runs", "", rt.markdown(), ""]
    for note in _run_notes(runs):
        h.append(f"<p class=note>{esc(note)}</p>")
        md += [note, ""]
    for _, r in runs.sort_values(["task", "params", "model"]).iterrows():
        man = json.dumps(r["manifest"], indent=2, sort_keys=True, default=str)
        h.append(
            f"<details class=run><summary>{esc(r['run_id'])} — {esc(r['model'])} on "
            f"{esc(r['task'])}</summary><pre>{esc(man)}</pre></details>"
        )
    # drill-down
    h.append('<h2 id="drill">Per-problem drill-down</h2>')
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
        tr["_p"] = tr["model"].map(lambda m: plots.finite_or(params.get(m), math.inf))
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
    return "\n".join(h), "\n".join(md).rstrip() + "\n"


def make_report(results_dir: Path, *, scores: pd.DataFrame | None = None, analysis=None,
                drill_problems: int = DRILL_PROBLEMS) -> tuple[Path, Path]:  # fmt: skip
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
    page, summary = render(results_dir, scores, analysis, runs, drill_problems)
    html_path, md_path = results_dir / "report.html", results_dir / "summary.md"
    html_path.write_text(page, encoding="utf-8")
    md_path.write_text(markdown_safe(summary), encoding="utf-8")
    return html_path, md_path


def markdown_safe(text: str) -> str:
    """Markdown with no raw HTML: names from tasks, models and records may hold tags, which a
    Markdown viewer would render (``<script>``). summary.md writes none of its own, so every
    ``<`` is escaped; ``&`` first, so an entity in a name is shown as typed, not decoded."""
    return text.replace("&", "&amp;").replace("<", "&lt;")
