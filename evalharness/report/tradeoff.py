"""Bigger, longer-trained, or longer-thinking? The loss scaling law over parameters N and
training tokens D, its compute-optimal allocation, and Chinchilla's as a reference."""

from __future__ import annotations

import math

import pandas as pd

from evalharness.report.html import Paragraph, Table, _task, fmt_ci, fmt_flops, fmt_num
from evalharness.report.registry import section


def _ci(r, k: str, f=fmt_num) -> str:
    return fmt_ci(r.get(k), r.get(f"{k}_lo"), r.get(f"{k}_hi"), f)


def loss_law_table(an, task: str) -> Table:
    """One row per family: E, A, B, alpha, beta, the compute-optimal exponents and tokens per
    parameter with their CIs, the lack-of-fit test, or the reason there is no fit."""
    law = _task(getattr(an, "loss_law", pd.DataFrame()), task)
    rows = []
    for _, r in law.iterrows():
        ident = [r["family"], f"{int(r.get('n_sizes', 0))} × {int(r.get('n_token_levels', 0))}"
                 f" ({r.get('seeds') or '?'} seeds)", int(r.get("problems", 0) or 0)]
        if r["status"] != "ok":
            rows.append([*ident, r["status"]] + [""] * 8)
            continue
        e = "≈ 0 (at the fit's floor)" if r.get("E_at_floor") else _ci(r, "E")
        rows.append([*ident, r["status"], e, _ci(r, "alpha"), _ci(r, "beta"),
                     f"{_ci(r, 'A', fmt_flops)}; {_ci(r, 'B', fmt_flops)}", _ci(r, "a_opt"),
                     _ci(r, "b_opt"), f"{_ci(r, 'tokens_per_param')} at C = "
                     f"{fmt_flops(r.get('c_ref'))}", r.get("lack_of_fit", "")])
    rule = an.rules.get("loss_law", "") if hasattr(an, "rules") else ""
    return Table(
        ["family", "sizes × token levels", "problems", "status", "E", "alpha (N)", "beta (D)",
         "A; B", "a: N* ∝ C^a", "b: D* ∝ C^b", "tokens / param (D*/N*)", "lack of fit"], rows,
        numeric={2, 4, 5, 6, 8, 9, 10},
        caption=f"Loss scaling law L(N, D) = E + A/N^alpha + B/D^beta — task {task}",
        note="95% bootstrap CIs over problems and training seeds. Reference, not an "
             "expectation: Chinchilla (language models) a ≈ b ≈ 0.5, ~20 tokens/param. "
             "Intermediate checkpoints of one learning-rate schedule are not separately "
             "trained models: their loss at D includes an unfinished schedule. "
             + (f"{rule}." if rule else ""),
    )


def loss_law_lines(an, task: str) -> list[str]:
    law = _task(getattr(an, "loss_law", pd.DataFrame()), task)
    out = []
    for _, r in law.iterrows():
        if r["status"] != "ok":
            out.append(f"Loss law ({r['family']}): {r['status']}.")
            continue
        out.append(
            f"Loss law ({r['family']}): L = E + A/N^{fmt_num(r['alpha'], 2)} + "
            f"B/D^{fmt_num(r['beta'], 2)}; compute-optimal N* ∝ C^{_ci(r, 'a_opt')}, "
            f"D* ∝ C^{_ci(r, 'b_opt')}, {_ci(r, 'tokens_per_param')} tokens per parameter at "
            f"C = {fmt_flops(r['c_ref'])} FLOPs (Chinchilla's ~20 and 0.5 / 0.5 only as a "
            f"reference); lack of fit {r.get('lack_of_fit', '–')}.")
    return out


def surface_lines(an, task: str) -> list[str]:
    """The three exchange rates of the (N, D, T) surface, with CIs, or why there are none."""
    from evalharness.analysis.surface import RATE_WORDS

    sf = _task(getattr(an, "surface3", pd.DataFrame()), task)
    out = []
    for _, r in sf.iterrows():
        rates = [f"{_ci(r, k)} {w}" for k, w in RATE_WORDS.items()
                 if math.isfinite(float(r.get(k, math.nan)))]
        where = (f" at N = {fmt_flops(2 ** r['at_log2_N'])}, T = {2 ** r['at_log2_T']:.0f}, "
                 f"D = {fmt_flops(2 ** r['at_log2_D'])}" if "at_log2_N" in r
                 and math.isfinite(float(r.get("at_log2_N", math.nan))) else "")
        head = f"Exchange rates over (N, D, T) ({r['family']}){where}: "
        out.append(head + ("; ".join(rates) if rates else "none")
                   + ("" if r["status"] == "ok" else f" ({r['status']})") + ".")
    return out


def threeway_lines(an, task: str, main_set: bool = False) -> list[str]:
    """The three-way answer in plain words, one sentence per (family, problem set, target) at
    the reference query volume, or "not identifiable: <reason>"; `main_set`: only each
    family's largest problem set (the page's first screen and summary.md stay short)."""
    from evalharness.analysis.threeway import threeway_words

    ans = _task(getattr(an, "threeway", pd.DataFrame()), task)
    if ans.empty:
        return []
    if main_set:
        top = ans.groupby("family")["problems"].transform("max")
        ans = ans[ans["problems"] == top]
    return threeway_words(ans, getattr(an, "threeway_crossover", pd.DataFrame()),
                          getattr(an, "threeway_costs", pd.DataFrame()), task)


def _option(r, p: str) -> str:
    if r.get(p + "status") != "ok":
        return str(r.get(p + "status") or "–")
    return (f"{r[p + 'config']}: {fmt_ci(r[p + 'margin'], r[p + 'margin_lo'], r[p + 'margin_hi'])}"
            "×")


def threeway_table(an, task: str) -> Table:
    """One row per (family, problem set, target, query volume): the cheapest configuration,
    its total cost, and the runner-up of each other kind with its cost ratio and CI."""
    from evalharness.analysis.threeway import KINDS, PREFIX

    ans = _task(getattr(an, "threeway", pd.DataFrame()), task)
    rows = []
    for _, r in ans.iterrows():
        ident = [r["family"], r["problem_set"], f"{100 * float(r['target']):.0f}%",
                 fmt_flops(r["queries"])]
        if r["status"] != "ok":
            rows.append([*ident, r["status"], "", "", "", "", ""])
            continue
        rows.append([*ident, r["config"], fmt_flops(r["cost"]),
                     f"{100 * float(r['flip_rate']):.0f}%",
                     *(_option(r, PREFIX[k] + "_") for k in KINDS)])
    rule = an.rules.get("threeway", "") if hasattr(an, "rules") else ""
    return Table(["family", "problems", "target", "queries Q", "cheapest (N, D, T, n)",
                  "total FLOPs", "another wins", "bigger: cost × [CI]",
                  "longer-trained: cost × [CI]", "longer-thinking: cost × [CI]"], rows,
                 numeric={3, 5, 6}, caption=f"Bigger, longer-trained or longer-thinking — task "
                 f"{task}", note="total FLOPs = 6·N·D (training, once) + Q × inference FLOPs "
                 "per query; cost × = the option's total over the winner's, 95% bootstrap CI "
                 "over problems and seeds. " + (f"{rule}." if rule else ""))


def threeway_crossover_table(an, task: str) -> Table:
    """Where in query volume the cheapest checkpoint changes, with its CI."""
    cr = _task(getattr(an, "threeway_crossover", pd.DataFrame()), task)
    rows = [[r["family"], r["problem_set"], f"{100 * float(r['target']):.0f}%",
             f"{r['from_config']} ({r['from_kind']})", f"{r['to_config']} ({r['to_kind']})",
             fmt_ci(r["q_star"], r["q_lo"], r["q_hi"], fmt_flops),
             f"{100 * float(r['crossing_share']):.0f}%"] for _, r in cr.iterrows()]
    return Table(["family", "problems", "target", "below Q*", "above Q*", "Q* [95% CI]",
                  "resamples crossing"], rows, numeric={5, 6},
                 caption=f"Query volumes where the cheapest option changes — task {task}",
                 note="Q* = (training_above - training_below) / (inference_below - "
                      "inference_above); each kind is read relative to the other option.")


def loss_law_summary(an, task: str) -> list:
    lines = (loss_law_lines(an, task) + surface_lines(an, task)
             + threeway_lines(an, task, main_set=True))
    return [Paragraph(" ".join(lines))] if lines else []


def _lead(an, task: str) -> list[str]:
    return (loss_law_lines(an, task) + surface_lines(an, task)
            + threeway_lines(an, task, main_set=True))


@section("Bigger, longer-trained, or longer-thinking?", order=75,
         figures=("loss_law", "threeway_cost", "threeway_contours"), lead=_lead,
         summary=loss_law_summary,
         csvs=("loss_law", "loss_points", "surface3", "threeway", "threeway_crossover",
               "threeway_costs", "threeway_grid"))
def _tradeoff_section(an, task: str) -> list:
    rule = an.rules.get("surface3", "") if hasattr(an, "rules") else ""
    lines = surface_lines(an, task)
    words = threeway_lines(an, task)
    return [loss_law_table(an, task),
            *([Paragraph(" ".join(lines), f"{rule}." if rule else "")] if lines else []),
            threeway_table(an, task), threeway_crossover_table(an, task),
            *([Paragraph(" ".join(words))] if words else [])]


def training_table(an, task: str) -> Table:
    """Exact match (and the per-token metric) per size along training, seed means with CIs."""
    c = _task(getattr(an, "training_curves", pd.DataFrame()), task)
    if c.empty:
        return Table([], [])
    rows = []
    for (family, metric, size), g in c.groupby(["family", "metric", "size"], sort=True):
        g = g.sort_values("train_tokens")
        cells = "; ".join(f"D {fmt_flops(r['train_tokens'])} (C {fmt_flops(r['train_flops'])}):"
                          f" {fmt_ci(r['mean'], r['ci_lo'], r['ci_hi'])}"
                          for _, r in g.iterrows())
        rows.append([family, metric, size, f"{int(g['n_seeds'].min())}", cells,
                     int(g["problems"].max())])
    rule = an.rules.get("training", "") if hasattr(an, "rules") else ""
    return Table(["family", "metric", "size", "seeds", "along training: tokens D (FLOPs C): "
                  "mean [95% CI]", "problems"], rows, numeric={3, 5},
                 caption=f"Emergence over training compute — task {task}",
                 note=f"{rule}." if rule else "")


def training_sharpness_table(an, task: str) -> Table:
    """Sharpness of each curve along training FLOPs (per size) and across sizes (per token
    level), with its CI or the reason there is none."""
    sh = _task(getattr(an, "training_sharpness", pd.DataFrame()), task)
    rows = [[r["family"], r["metric"], r["axis"], r["along"],
             fmt_ci(r["sharpness"], r["sharpness_lo"], r["sharpness_hi"])
             if r["status"] == "ok" else r["status"], int(r["points"])]
            for _, r in sh.iterrows()]
    return Table(["family", "metric", "x-axis", "curve", "sharpness [95% CI]", "points"],
                 rows, numeric={4, 5},
                 caption=f"Sharpness along training and across sizes — task {task}",
                 note="Share of a curve's total rise in its steepest doubling of the x-axis "
                      "(monotone fit); 1/doublings for a straight line, 1 for a step.")


@section("Emergence over training compute", order=52, figures=("emergence_training",),
         csvs=("training_points", "training_curves", "training_sharpness"))
def _training_section(an, task: str) -> list:
    return [training_table(an, task), training_sharpness_table(an, task)]
