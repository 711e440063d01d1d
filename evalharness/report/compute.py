"""Compute: the accuracy-vs-FLOPs frontier and the buy decision (bigger model or longer
think?): exchange rates, the cheapest configuration per target, the training + inference
crossover."""

from __future__ import annotations

import math

import pandas as pd

from evalharness import plots as pl
from evalharness.report.html import (
    Paragraph,
    Table,
    _ext_tag,
    _task,
    fmt_ci,
    fmt_flops,
    fmt_num,
    fmt_pct,
)
from evalharness.report.registry import section


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
             pl.format_params(r["params"]), f"{r['budget']:g}", int(r["n"]),
             fmt_pct(r["maj_at_n"]), fmt_pct(r.get("pass_at_n"))]
            for _, r in f.iterrows()]
    rule = an.rules.get("flops", "") if hasattr(an, "rules") else ""
    return Table(
        ["problems", "FLOPs / problem", "model", "params", "T", "n", "exact match (maj@n)", "pass@n"], rows,
        numeric={1, 3, 4, 5, 6, 7}, caption=f"Compute frontier per problem set — task {task}",
        note=f"{rule}." if rule else "",
    )


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
                     int(r["n_problems"]), r["status"]])
    return Table(
        ["family", "axis", "difficulty", "doublings of N per doubling",
         "local rate over measured cells", "b (logit / 2×N)", "c (logit / 2×axis)",
         "interaction d", "largest miss of a measured cell", "seeds per size", "problems",
         "status"], rows,
        numeric={3, 5, 6, 7, 8, 9, 10}, caption=f"Exchange rates — task {task}",
        note="95% bootstrap CIs over problems and seed replicates of one size (one seed per "
             "size: seed-to-seed variation is not in the CI). The largest miss is the fitted "
             "surface's worst error on a measured (size, level) cell's accuracy.",
    )


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
                     fmt_flops(r["flops"]), fmt_pct(r["maj_at_n"]), run or "–",
                     fmt_ci(r.get("margin"), r.get("margin_lo"), r.get("margin_hi")),
                     fmt_pct(r["flip_rate"], 0)])
    rule = an.rules.get("cheapest", "") if hasattr(an, "rules") else ""
    return Table(
        ["problems compared on", "target", "cheapest configuration", "seeds: accuracy each",
         "FLOPs / problem", "accuracy (seed mean)", "runner-up (another size)",
         "FLOPs ratio runner-up / winner", "size flips"], rows, numeric={4, 5, 7, 8},
        caption=f"Cheapest configuration per target accuracy — task {task}",
        note=f"{rule}." if rule else "",
    )


def crossover_table(an, task: str) -> Table:
    cr = _task(getattr(an, "crossover", pd.DataFrame()), task)
    costs = _task(getattr(an, "buy_costs", pd.DataFrame()), task)
    rows = []
    for _, r in cr.iterrows():
        if r["status"] == "ok":
            rows.append([fmt_pct(r["target"], 0), r["from_model"], r["to_model"],
                         fmt_ci(r["q_star"], r["q_lo"], r["q_hi"], fmt_flops),
                         fmt_pct(r["crossing_share"], 0)])
        else:
            rows.append([fmt_pct(r["target"], 0), r.get("from_model") or "–", "–", r["status"], ""])
    rule = an.rules.get("crossover", "") if hasattr(an, "rules") else ""
    lines = "; ".join(f"{r['model']}: train {fmt_flops(r['train_flops'])}, "
                      f"{fmt_flops(r['inference_flops'])}/query at {fmt_pct(r['target'], 0)}"
                      for _, r in costs.iterrows())
    return Table(
        ["target", "preferred at low Q", "preferred at high Q", "crossover Q [95% CI]",
         "resamples that cross"], rows, numeric={3, 4},
        caption=f"Training + inference cost vs query volume — task {task}",
        note=" ".join(x for x in (f"{rule}." if rule else "", f"Lines: {lines}." if lines else "")
                      if x),
    )




def frontier_headline(an, task: str) -> list[str]:
    """Per problem set: how many points are on the frontier and whose they are."""
    out: list[str] = []
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




def buy_headline(an, task: str) -> list[str]:
    """The buy answer, labelled: among the other verdicts it does not say what it answers."""
    text = buy_answer(an, task).text
    return [f"Bigger model or longer think? {text}"] if text else []


# ----------------------------------------------------------------------------- sections


@section("Inference-compute frontier", order=60, figures=("flops_frontier",),
         lead=frontier_headline, lead_figure=True, csvs=("compute",))
def _frontier_section(an, task: str) -> list:
    return [frontier_table(an, task)]


@section("Bigger model or longer think?", order=70, figures=("iso_accuracy",),
         lead=buy_headline, lead_figure=True, csvs=("exchange", "cheapest"))
def _buy_section(an, task: str) -> list:
    return [buy_answer(an, task), exchange_rate_table(an, task), cheapest_table(an, task)]


@section("Training + inference cost vs query volume", order=80, figures=("cost_vs_queries",),
         csvs=("crossover", "buy_costs"))
def _crossover_section(an, task: str) -> list:
    return [crossover_table(an, task)]
