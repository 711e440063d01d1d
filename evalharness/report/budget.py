"""Accuracy against the thinking budget: the a + b·log₂T fits, accuracy and thinking-token
tables, and the log-T law under scrutiny (difficulty mix, lack of fit, linear vs logistic)."""

from __future__ import annotations

import math

import pandas as pd

from evalharness import plots as pl
from evalharness.report.html import (
    Paragraph,
    Table,
    _ext_tag,
    _num,
    _ok,
    _order,
    _params_map,
    _task,
    fmt_ci,
    fmt_num,
    fmt_pct,
    fmt_pts,
    fmt_pts_raw,
)
from evalharness.report.registry import section


def fit_table(an, task: str) -> Table:
    """The a + b·log₂T fits of one task: a, b with CI, R², gain per doubling, budgets."""
    params = _params_map(an)
    fits = _task(an.fits, task)
    bud = _task(an.budgets, task)
    most = bud[bud["budget"] > 0].groupby("model")["budget"].nunique().max() if len(bud) else 0
    if not (fits.get("status", pd.Series(dtype=str)) == "ok").any() and not most >= 3:
        return Table([], [])  # too few budgets for any fit (e.g. a single-budget task)
    curves = set(pl.curves_with_budgets(bud)["model"]) if len(bud) else set()
    fits = fits[fits["model"].isin(curves)] if not fits.empty else fits  # not 1-budget runs
    rows = []
    for m in _order(fits["model"], params) if not fits.empty else []:
        for _, f in fits[fits["model"] == m].iterrows():
            ok = f.get("status") == "ok"
            rows.append([
                m + _ext_tag(f), pl.format_params(params.get(m)),
                fmt_ci(f["a"], f["a_lo"], f["a_hi"]) if ok else "–",
                fmt_ci(f["b"], f["b_lo"], f["b_hi"]) if ok else "–",
                fmt_num(f["r2"]) if ok else "–",
                fmt_pts(f["gain_per_doubling"]) if ok else "–",
                str(f.get("budgets", "")).replace(" ", ", "),
                int(_num(f.get("n_problems")) or 0), f.get("status", ""),
            ])
    rule = ""
    if not fits.empty and "rule" in fits:
        rule = "Fit rule: " + str(fits["rule"].iloc[0])
    return Table(
        ["model", "params", "a [95% CI]", "b [95% CI]", "R²", "gain per doubling (pts)",
         "budgets fitted", "problems", "status"],
        rows, numeric={1, 2, 3, 4, 5, 7},
        caption=f"accuracy = a + b·log₂T — task {task}", note=rule,
    )


def accuracy_table(an, task: str) -> Table:
    """Accuracy (%) per model and budget with the 95% CI."""
    params = _params_map(an)
    b = pl.base_level(_task(an.budgets, task))
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
                cells.append(f"{100 * r['exact_match']:.1f} [{100 * r['exact_match_lo']:.0f}–"
                             f"{100 * r['exact_match_hi']:.0f}]")
            else:
                cells.append("")
        rows.append([m, pl.format_params(params.get(m)), *cells])
    return Table(
        ["model", "params", *[f"T={t:g}" for t in budgets]], rows,
        numeric=set(range(1, len(budgets) + 2)),
        caption=f"Accuracy (%) [95% CI] by thinking budget T — task {task}",
    )


def thinking_table(an, task: str) -> Table:
    """Mean thinking tokens used and share of samples cut at the budget."""
    params = _params_map(an)
    b = pl.base_level(_task(an.budgets, task))
    if b.empty or "think_mean" not in b:
        return Table([], [])
    b = pl.curves_with_budgets(b)  # a 1-budget best-of-N run repeats a column of its greedy sweep
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
    )

def _logt_model(an, task: str):
    """The curve the log-T breakdown shows: the largest greedy model with a fit, else the
    largest one (the CSVs have every curve)."""
    lt = _task(getattr(an, "logt_tests", pd.DataFrame()), task)
    if lt.empty:
        return None
    params = _params_map(an)
    lt = lt.assign(_ok=lt["fit_status"] == "ok",
                   _p=lt["model"].map(lambda m: pl.finite_or(params.get(m), -1)))
    return lt.sort_values(["_ok", "_p", "extensions"], ascending=[True, True, False]).iloc[-1]


def logt_views(an, task: str) -> list:
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
            acc = g.set_index("budget")["exact_match"]
            f = bf.loc[b] if b in bf.index else None
            rows.append([b, int(g["n_problems"].iloc[0]),
                         *[fmt_pct(acc.get(t), 0) for t in budgets],
                         fmt_ci(100 * f["b"], 100 * f["b_lo"], 100 * f["b_hi"], fmt_pts_raw)
                         if f is not None and f["status"] == "ok" else
                         (f["status"] if f is not None else "–"),
                         fmt_pct(f["step_share"], 0) if f is not None else "–"])
        src = bk["bucket_source"].iloc[0] if not bk.empty else ""
        out.append(Table(
            ["bucket", "problems", *[f"T={t:g}" for t in budgets],
             "slope (pts/doubling, pooled window) [CI]", "rise in steepest doubling"], rows,
            numeric=set(range(1, len(budgets) + 4)),
            caption=f"Accuracy by difficulty ({src}) — {pick['model']}{_ext_tag(pick)}, "
                    f"task {task}",
        ))
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
            ])
    rules = an.rules if hasattr(an, "rules") else {}
    out.append(Table(
        ["model", "slope, fixed window [CI]", "slope CI, window re-chosen per resample",
         "resamples with a window", "lack of fit vs per-budget means",
         "residual per T (pts) [CI]", "AIC prefers (window / all T>0)",
         "BIC prefers (window / all T>0)", "difficulty mix"], rows, numeric={1, 2, 3},
        caption=f"Is accuracy linear in log₂T? — task {task}",
        note=f"Curves with a log-T fit ({len(lt)} of {n_all}; the others: no fit, reason in the "
             f"fit table). Lack of fit: {rules.get('lack_of_fit', '')}.",
    ))
    lm = _task(getattr(an, "logt_models", pd.DataFrame()), task)
    if not lm.empty:
        lm = lm[(lm["model"] == key[0]) & (lm["extensions"] == key[1])]
    if not lm.empty:
        mrows = [[r["scope"], r["form"], int(r["k"]), fmt_num(r["loglik"]), fmt_num(r["aic"]),
                  fmt_num(r["bic"]), "✓" if r["preferred_aic"] else "",
                  "✓" if r["preferred_bic"] else ""] for _, r in lm.iterrows()]
        out.append(Table(
            ["budgets", "model", "parameters", "log-likelihood", "AIC", "BIC", "AIC best",
             "BIC best"], mrows, numeric={2, 3, 4, 5},
            caption=f"Linear vs logistic in log₂T — {pick['model']}{_ext_tag(pick)}, task {task}",
            note="Bernoulli likelihood of every (problem, sample) outcome, each form fitted by "
                 "maximum likelihood; outcomes of one problem at different T are treated as "
                 "independent here (the lack-of-fit test above accounts for the pairing).",
        ))
    return out




def fit_headline(an, task: str) -> list[str]:
    """The largest model's log-T fit and the scrutiny of that fit, in plain sentences."""
    out = []
    params = _params_map(an)
    fits = _ok(_task(an.fits, task))
    if not fits.empty:
        fits = fits.assign(
            _p=fits["model"].map(lambda m: pl.finite_or(params.get(m), -1)),
            _greedy=fits["model"].map(lambda m: not pl.split_model(m)[1]),
        )  # the largest model's greedy curve when it has one
        f = fits.sort_values(["_p", "_greedy"]).iloc[-1]
        if "extensions" in fits:
            same = fits[fits["model"] == f["model"]]
            f = same.sort_values("extensions").iloc[0]
        out.append(
            f"Largest model with a fit, {f['model']} ({pl.format_params(params.get(f['model']))}"
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
            )
    return out


# ----------------------------------------------------------------------------- sections


@section("Accuracy vs thinking budget", order=10, figures=("accuracy_vs_budget",),
         lead=fit_headline, lead_figure=True, csvs=("fits", "budgets"))
def _accuracy_section(an, task: str) -> list:
    return [fit_table(an, task), accuracy_table(an, task)]


@section("Thinking tokens used", order=20, figures=("thinking_tokens",), csvs=("budgets",))
def _thinking_section(an, task: str) -> list:
    return [thinking_table(an, task)]


@section("Is accuracy linear in log T?", order=40,
         csvs=("logt_tests", "logt_buckets", "logt_bucket_fits", "logt_models",
               "logt_residuals"))
def _logt_section(an, task: str) -> list:
    return logt_views(an, task)
