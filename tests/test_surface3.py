"""The accuracy surface over (N, D, T): a logistic surface with known slopes gives back its
three exchange rates within their intervals; too few levels, a flat axis or a step do not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evalharness.analysis.surface import fit_surface3

SIZES = 1e5 * 2.0 ** np.arange(4)
TOKENS = 2e6 * 2.0 ** np.arange(4)
BUDGETS = (16, 32, 64, 128)
SLOPES = {"b": 0.8, "c": 0.4, "e": 0.6}  # logit per doubling of N, T, D


def cells(rng, slopes=SLOPES, step=False, problems=150, seeds=3) -> pd.DataFrame:
    """Bernoulli outcomes per (problem, checkpoint, budget) from a logistic surface with a
    problem difficulty and a training-seed shift (a seed's checkpoints share it)."""
    uN, uD, uT = (np.log2(x) - np.log2(x).mean() for x in (SIZES, TOKENS, np.array(BUDGETS)))
    hard = rng.normal(0, 1.0, problems)
    rows = []
    for i, n in enumerate(SIZES):
        for s in range(seeds):
            shift = rng.normal(0, 0.1)
            for j, d in enumerate(TOKENS):
                for k, t in enumerate(BUDGETS):
                    lin = (slopes["b"] * uN[i] + slopes["c"] * uT[k] + slopes["e"] * uD[j]
                           + shift - hard)
                    p = (uN[i] > 0).astype(float) * np.ones(problems) if step else 1 / (1 + np.exp(-lin))
                    for q in range(problems):
                        rows.append((f"p{q}", f"h{i}-s{s}@{j}", f"h{i}", f"h{i}-s{s}", n, d, t,
                                     float(rng.random() < p[q])))
    return pd.DataFrame(rows, columns=["problem_id", "model", "size", "trajectory", "params",
                                       "tokens", "level", "y"])


def test_a_known_surface_gives_back_its_three_exchange_rates_within_their_intervals():
    r = fit_surface3(cells(np.random.default_rng(0)), n_boot=200)
    assert r["status"] == "ok"
    truth = {"T_per_N": 0.8 / 0.4, "T_per_D": 0.6 / 0.4, "N_per_D": 0.6 / 0.8}
    for k, t in truth.items():
        assert r[f"{k}_lo"] <= t <= r[f"{k}_hi"], (k, t, r[k], r[f"{k}_lo"], r[f"{k}_hi"])
        assert r[f"{k}_hi"] - r[f"{k}_lo"] < t  # an interval that says something
    assert r["interactions"] == "none" or all(
        r[f"d_{n}_lo"] > 0 or r[f"d_{n}_hi"] < 0 for n in r["interactions"].split())


def test_two_token_levels_are_not_identifiable():
    c = cells(np.random.default_rng(1))
    r = fit_surface3(c[c["tokens"] <= TOKENS[1]], n_boot=50)
    assert r["status"] == "not identifiable: D has 2 levels (need 3)" and "T_per_D" not in r


def test_a_flat_token_axis_voids_no_rate_but_says_so():
    r = fit_surface3(cells(np.random.default_rng(2), {**SLOPES, "e": 0.0}), n_boot=200)
    assert r["status"].startswith("not identifiable") and "along D" in r["status"]
    assert r["N_per_D_lo"] <= 0 <= r["N_per_D_hi"]  # a token doubling is worth no parameters


def test_a_step_in_size_is_not_identifiable():
    r = fit_surface3(cells(np.random.default_rng(3), step=True, problems=40), n_boot=50)
    assert r["status"].startswith("not identifiable: only")


def test_the_report_states_the_three_rates_at_their_point_with_intervals():
    from types import SimpleNamespace

    from evalharness.report.tradeoff import surface_lines

    r = fit_surface3(cells(np.random.default_rng(0), problems=60), n_boot=100)
    an = SimpleNamespace(surface3=pd.DataFrame([{"family": "zoo/arith", "task": "add5", **r}]))
    (line,) = surface_lines(an, "add5")
    assert "thinking doublings per parameter doubling" in line and "T = 45" in line
    assert line.count("[") == 3


def test_from_records_one_surface_per_configuration_and_two_budgets_say_so():
    from test_scaling_law import records

    from evalharness.analysis.records import per_problem_rows, prepare
    from evalharness.analysis.surface import surface_table

    df = prepare(records(np.random.default_rng(3)))
    pp, _ = per_problem_rows(df)
    tab = surface_table(pp, df, n_boot=20)
    # greedy runs only (the sampled runs of the same checkpoints make no surface), the
    # other spec its own; the main family ran two budgets: T cannot be read
    assert sorted(tab["family"]) == ["zoo/arith", "zoo/arith [few_shot=2]"]
    main = tab.set_index("family").loc["zoo/arith"]
    assert main["status"] == "not identifiable: T has 2 levels (need 3)"
    assert "0.7" not in main["runs"] and main["problems"] > 0
