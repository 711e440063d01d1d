"""Every analysis table, registered by topic (see `analysis.registry`).

The order is the order of computation: a set may read the tables registered before it (the
sharpness and span tables read the emergence table). Each entry says which records a table's
rows read (their "runs" and "problems" columns), the rules that define its numbers, and what of
it goes into ``fits.json``.
"""

from __future__ import annotations

import numpy as np

from evalharness.analysis.budget import SATURATION_RULE, logt_tables
from evalharness.analysis.buy import CHEAPEST_RULE, CROSSOVER_RULE, SURFACE_RULE
from evalharness.analysis.compute import FLOPS_RULE, buy_points, buy_tables, compute_table
from evalharness.analysis.curves import curve_tables
from evalharness.analysis.efficiency import (
    ALLOCATION_RULE,
    EFFICIENCY_RULE,
    SEQPAR_RULE,
    efficiency_tables,
)
from evalharness.analysis.emergence import (
    SHARPNESS_RULE,
    SPAN_RULE,
    emergence_rows,
    seed_tables,
    sharpness_table,
    span_table,
)
from evalharness.analysis.emergence_tests import SCHAEFFER_RULE, SEED_CI_RULE, SHARPNESS_CI_BOOT
from evalharness.analysis.logt_tests import LACK_OF_FIT_RULE
from evalharness.analysis.records import CURVE, POINT
from evalharness.analysis.registry import JsonOut, register_tables
from evalharness.analysis.sampling import COVERAGE_RULE
from evalharness.analysis.scaling import LOSS_LAW_RULE, loss_law_tables
from evalharness.analysis.surface import SURFACE3_RULE, surface_table
from evalharness.analysis.threeway import THREEWAY_RULE, threeway_tables
from evalharness.analysis.training import TRAINING_RULE, training_tables
from evalharness.diagnostics import BITE_RULE, budget_control

# -- provenance sources: the records a table's rows read, grouped by the rows' keys ----------

def _per_point(i):  # one configuration at one budget (and k)
    return i.df, POINT + ["n"]


def _per_curve(i):  # one configuration over its budgets
    return i.df, CURVE


def _per_run_budget(i):
    return i.df.assign(n=np.nan), ["run_id", "budget"]


def _per_model(i):  # one checkpoint in an emergence family
    return i.em_recs, ["family", "task", "model"]


def _per_size(i):  # one size (its seeds) in an emergence family
    return i.em_recs, ["family", "task", "size"]


def _per_family(i):
    return i.em_recs, ["family", "task"]


def _per_axis(i):  # an exchange rate reads the greedy (budget) or sampled (samples) runs
    return i.df.assign(axis=np.where(i.df["greedy"], "budget", "samples")), [
        "family", "task", "axis"]


# -- budget and sampling curves ----------------------------------------------------------------

def _curves(i, _tables):
    budgets, coverage, fits, coverage_fits = curve_tables(i.pp, i.ks, i.n_boot, i.alpha, i.seed)
    if not budgets.empty:
        budgets = budgets.merge(i.thinking, on=POINT, how="left")
    return budgets, fits, coverage, coverage_fits


register_tables(
    ("budgets", "fits", "coverage", "coverage_fits"), _curves,
    provenance={t: _per_point for t in ("budgets", "fits", "coverage", "coverage_fits")},
    rules={"log_budget_fit": SATURATION_RULE, "coverage_fit": COVERAGE_RULE},
    json={"fits": "log_budget_fits", "coverage_fits": "coverage_fits"},
    docs={"budgets": "accuracy (+CI) and thinking tokens used, per budget",
          "fits": "accuracy = a + b log2 T, per (model, task, extensions)",
          "coverage": "pass@k, maj@k, best-of-k (+CI) per budget and k",
          "coverage_fits": "-log pass@k = c k^-beta per budget"},
)

# -- emergence across sizes --------------------------------------------------------------------

register_tables(
    ("emergence",), lambda i, t: emergence_rows(i.df),
    provenance={"emergence": _per_model},
    docs={"emergence": "per model at its largest budget: EM beside continuous metrics"},
)
register_tables(
    ("sharpness",),
    lambda i, t: sharpness_table(t["emergence"], i.em_recs, min(i.n_boot, SHARPNESS_CI_BOOT),
                                 i.alpha, i.seed),
    provenance={"sharpness": _per_family}, rules={"sharpness": SHARPNESS_RULE},
    json={"sharpness": "sharpness"},
    docs={"sharpness": "steepest-doubling share per (family, task, metric)"},
)
register_tables(
    ("spans",), lambda i, t: span_table(t["emergence"]),
    provenance={"spans": _per_family}, rules={"span": SPAN_RULE},
    json={"spans": "emergence_spans"},
    docs={"spans": "narrowest EM 0.2 -> 0.8 size range and metric shares in it"},
)

# -- compute: FLOPs frontier and the buy decision ----------------------------------------------

register_tables(
    ("compute",),
    lambda i, t: compute_table(i.pp, i.ks, i.thinking,
                               i.df.groupby(["task", "problem_id"])["difficulty"].first()),
    provenance={"compute": _per_point}, rules={"flops": FLOPS_RULE},
    json={"compute": JsonOut("frontier", lambda c: c[c["on_frontier"]] if "on_frontier" in c
                             else c.iloc[:0])},
    docs={"compute": "(model, budget, n) points: FLOPs, accuracy, on_frontier"},
)
register_tables(
    ("exchange", "cheapest", "crossover", "buy_costs"),
    lambda i, t: buy_tables(i.pp, i.df, i.ks, i.info, i.n_boot, i.alpha, i.seed),
    provenance={"exchange": _per_axis},
    rules={"exchange": SURFACE_RULE, "cheapest": CHEAPEST_RULE, "crossover": CROSSOVER_RULE},
    json={"exchange": "exchange", "cheapest": "cheapest", "crossover": "crossover"},
    docs={"exchange": "doublings of N one doubling of T (or n) is worth, per bucket",
          "cheapest": "cheapest (model, T, n) per target accuracy, runner-up, margin",
          "crossover": "query volume Q where the preferred model changes (train + Q*inf)",
          "buy_costs": "per target and model: training FLOPs, inference FLOPs per query"},
)

# -- diagnostics -------------------------------------------------------------------------------

register_tables(
    ("diagnostics",), lambda i, t: budget_control(i.scores),
    provenance={"diagnostics": _per_run_budget}, rules={"budget_control": BITE_RULE},
    docs={"diagnostics": "per run x budget: did budget forcing bite (diagnostics.py)"},
)

# -- emergence over seeds ----------------------------------------------------------------------

register_tables(
    ("seed_curves", "seed_points", "schaeffer", "verdicts"),
    lambda i, t: seed_tables(i.df, i.n_boot, i.alpha, i.seed),
    provenance={"seed_curves": _per_size, "seed_points": _per_model,
                "schaeffer": _per_family, "verdicts": _per_family},
    rules={"seed_ci": SEED_CI_RULE, "schaeffer": SCHAEFFER_RULE},
    json={"verdicts": "verdicts"},
    docs={"seed_curves": "per size: seed mean, CI", "seed_points": "per checkpoint values",
          "schaeffer": "observed vs p^L_eff per size",
          "verdicts": "one sentence per family/task"},
)

# -- the log-T law's checks --------------------------------------------------------------------

_LOGT = ("logt_buckets", "logt_bucket_fits", "logt_tests", "logt_models", "logt_residuals")
register_tables(
    _LOGT, lambda i, t: logt_tables(i.pp, i.df, i.n_boot, i.alpha, i.seed),
    provenance={name: _per_point for name in _LOGT}, rules={"lack_of_fit": LACK_OF_FIT_RULE},
    json={"logt_tests": "logt_tests"},
    docs={"logt_buckets": "accuracy per bucket x T", "logt_bucket_fits": "slope, step share",
          "logt_tests": "lack of fit, CIs, mix", "logt_models": "AIC/BIC per model form",
          "logt_residuals": "per budget, with CI"},
)

# -- thinking efficiency -----------------------------------------------------------------------

register_tables(
    ("needs", "efficiency", "allocation", "allocation_headline", "seq_vs_par"),
    lambda i, t: efficiency_tables(i.df, i.pp, i.ks, i.n_boot, i.alpha, i.seed),
    # seq_vs_par pairs two configurations and names the runs of both itself
    provenance={name: _per_curve
                for name in ("needs", "efficiency", "allocation", "allocation_headline")},
    rules={"efficiency": EFFICIENCY_RULE, "allocation": ALLOCATION_RULE,
           "seq_vs_par": SEQPAR_RULE},
    json={"allocation_headline": "allocation_headline"},
    docs={"needs": "per (config, problem, sample)", "efficiency": "metric (+CI) per bucket",
          "allocation": "accuracy vs tokens", "allocation_headline": "predicted vs T",
          "seq_vs_par": "at matched FLOPs"},
)

# -- bigger, longer-trained or longer-thinking -------------------------------------------------

register_tables(
    ("loss_law", "loss_points"), lambda i, t: loss_law_tables(i.df, i.n_boot, i.alpha, i.seed),
    rules={"loss_law": LOSS_LAW_RULE}, json={"loss_law": "loss_law"},
    docs={"loss_law": "L(N, D) fit per family", "loss_points": "held-out loss per ckpt"},
)
register_tables(
    ("training_points", "training_curves", "training_sharpness"),
    lambda i, t: training_tables(i.df, i.n_boot, i.alpha, i.seed),
    rules={"training": TRAINING_RULE},
    docs={"training_points": "EM per checkpoint", "training_curves": "per (size, D level)",
          "training_sharpness": "along N, along C"},
)
register_tables(
    ("surface3",), lambda i, t: surface_table(i.pp, i.df, i.n_boot, i.alpha, i.seed),
    rules={"surface3": SURFACE3_RULE}, json={"surface3": "surface3"},
    docs={"surface3": "(N, D, T) exchange rates"},
)
register_tables(
    ("threeway", "threeway_crossover", "threeway_costs", "threeway_grid"),
    lambda i, t: threeway_tables(buy_points(i.pp, i.df, i.ks), i.info, i.n_boot, i.alpha,
                                 i.seed),
    # each row names its configuration's runs and the runs it was compared with itself
    rules={"threeway": THREEWAY_RULE},
    json={"threeway": "threeway", "threeway_crossover": "threeway_crossover"},
    docs={"threeway": "cheapest (N, D, T, n) at Q", "threeway_crossover": "Q where it changes",
          "threeway_costs": "per checkpoint line", "threeway_grid": "accuracy per config"},
)
