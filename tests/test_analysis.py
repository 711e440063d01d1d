from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evalharness.analysis import (
    analyze,
    emergence_span,
    emergence_table,
    fit_coverage,
    fit_log_budget,
    pareto_frontier,
    select_budgets,
    sharpness,
    steepest_doubling,
)
from evalharness.metrics import majority_at_k, pass_at_k

TRUE_A, TRUE_B = 0.2, 0.1
BUDGETS = np.array([2, 4, 8, 16, 32, 64])  # accuracy 0.3 ... 0.8 under the true law


def law_records(rng: np.random.Generator, n_problems: int, n_samples: int) -> pd.DataFrame:
    """Records whose population accuracy is exactly TRUE_A + TRUE_B * log2 T.

    Problems differ (a zero-mean offset each), and a sample's luck is shared across budgets
    (as with shared thinking prefixes), so budgets of one problem are correlated.
    """
    offset = rng.uniform(-0.15, 0.15, n_problems)
    luck = rng.random((n_problems, n_samples))
    p = TRUE_A + TRUE_B * np.log2(BUDGETS)[:, None, None] + offset[None, :, None]
    correct = luck[None, :, :] < p  # budgets x problems x samples
    b, i, s = np.indices(correct.shape)
    return pd.DataFrame(
        {
            "problem_id": i.ravel(),
            "budget": BUDGETS[b.ravel()],
            "sample": s.ravel(),
            "exact_match": correct.ravel(),
        }
    )


def test_log_budget_fit_recovers_a_known_law_within_its_ci():
    fit = fit_log_budget(law_records(np.random.default_rng(0), 400, 8), n_boot=500)
    assert fit.status == "ok" and fit.budgets == tuple(BUDGETS)
    assert fit.a_lo <= TRUE_A <= fit.a_hi
    assert fit.b_lo <= TRUE_B <= fit.b_hi
    assert fit.b == pytest.approx(TRUE_B, abs=0.02) and fit.gain_per_doubling == fit.b
    assert fit.r2 > 0.95
    assert "T > 0" in fit.rule


def test_log_budget_fit_ci_covers_the_truth_in_at_least_90_percent_of_repetitions():
    covered_a = covered_b = 0
    for rep in range(200):
        rng = np.random.default_rng(1000 + rep)
        fit = fit_log_budget(law_records(rng, 80, 4), n_boot=200, seed=rep)
        covered_a += fit.a_lo <= TRUE_A <= fit.a_hi
        covered_b += fit.b_lo <= TRUE_B <= fit.b_hi
    assert covered_a / 200 >= 0.9
    assert covered_b / 200 >= 0.9


def test_select_budgets_drops_zero_floor_and_plateau():
    budgets = np.array([0, 16, 32, 64, 128, 256, 512])
    acc = np.array([0.01, 0.01, 0.3, 0.5, 0.7, 0.71, 0.705])
    assert budgets[select_budgets(budgets, acc)].tolist() == [32, 64, 128]
    ceiling = np.array([0.4, 0.5, 0.6, 0.9, 0.99, 0.99, 0.99])
    assert budgets[select_budgets(budgets, ceiling)].tolist() == [16, 32, 64]


def test_log_budget_fit_reports_why_it_did_not_fit():
    flat = pd.DataFrame(
        {"problem_id": [0, 0, 0, 1, 1, 1], "budget": [16, 32, 64] * 2, "exact_match": [1.0] * 6}
    )
    fit = fit_log_budget(flat, n_boot=50)
    assert fit.status.startswith("no fit: only 0") and np.isnan(fit.b)


def test_coverage_fit_recovers_a_power_law():
    ks = np.arange(1, 11)
    c, beta = 2.0, 0.5
    per_problem = np.tile(np.exp(-c * ks ** (-beta)), (50, 1))
    per_problem += np.random.default_rng(0).normal(0, 0.002, per_problem.shape)
    fit = fit_coverage(ks, per_problem, n_boot=200)
    assert fit.status == "ok"
    assert fit.c == pytest.approx(c, rel=0.02) and fit.beta == pytest.approx(beta, rel=0.03)
    assert fit.beta_lo <= fit.beta <= fit.beta_hi


def test_sharpness_on_hand_made_curves():
    assert sharpness([0, 1, 2, 3, 4], [0, 0, 0, 1, 1]) == pytest.approx(1.0)  # a step
    assert sharpness([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]) == pytest.approx(0.25)  # a line
    assert sharpness([0, 1, 2, 3], [0, 0.1, 0.9, 1.0]) == pytest.approx(0.8)
    # The steepest window need not start at a model: [0, 2] holds a 0.5-per-doubling ramp.
    assert sharpness([0, 2, 4], [0, 0, 1]) == pytest.approx(0.5)
    assert sharpness([0, 1, 3], [0, 0.5, 1]) == pytest.approx(0.5)
    assert sharpness([5, 5.5], [0.1, 0.7]) == 1.0  # within one doubling
    assert sharpness([0, 1, 2], [3, 2, 1]) == pytest.approx(0.5)  # a falling metric
    assert np.isnan(sharpness([0, 1, 2], [1, 1, 1])) and np.isnan(sharpness([0], [1]))
    share, start = steepest_doubling([10, 11, 12, 13], [0, 0.1, 0.9, 1.0])
    assert start == 11 and share == pytest.approx(0.8)


def test_exact_match_is_sharper_than_the_per_token_accuracy_it_compounds():
    log2_params = np.arange(20, 29)
    token_acc = np.linspace(0.5, 0.99, log2_params.size)
    em = token_acc**12
    assert sharpness(log2_params, em) > 2 * sharpness(log2_params, token_acc)


def test_emergence_span_on_a_hand_made_curve():
    x = [20, 21, 22, 23, 24]
    em = [0.0, 0.1, 0.5, 0.9, 1.0]
    token = [0.5, 0.6, 0.7, 0.8, 0.9]
    span = emergence_span(x, em, token)
    # from the last model below 0.2 (2^21) to the first above 0.8 (2^23)
    assert span.lo_log2_params == 21 and span.hi_log2_params == 23
    assert span.doublings == pytest.approx(2)
    assert span.em_share == pytest.approx(0.8)
    assert span.metric_share == pytest.approx(0.5)
    assert emergence_span(x, [0.0, 0.1, 0.2, 0.3, 0.5], token) is None  # never reaches 0.8


def test_emergence_span_needs_monotone_support_on_a_wiggly_curve():
    x = [0, 1, 2, 3, 4, 4.5]
    em = [0.1, 0.5, 0.9, 0.1, 0.1, 0.9]  # climbs twice: 0 -> 2 and 4 -> 4.5
    span = emergence_span(x, em, x)
    # the narrowest pair (4 -> 4.5) rests on two weak sizes after strong ones: the span runs
    # from the last size below 0.2 with every smaller one below too, to the first size above
    # 0.8 with every larger one above too, and says the curve falls inside it
    assert (span.lo_log2_params, span.hi_log2_params) == (0, 4.5)
    assert span.doublings == pytest.approx(4.5) and not span.monotone


def test_pareto_frontier_on_hand_made_points():
    flops = [1, 2, 2, 3, 4, 4, np.nan, 5]
    acc = [0.1, 0.05, 0.3, 0.3, 0.5, 0.5, 0.9, 0.45]
    assert pareto_frontier(flops, acc).tolist() == [
        True,  # cheapest
        False,  # same cost as a better point
        True,
        False,  # costs more for the same accuracy
        True,
        False,  # exact duplicate: one is kept
        False,  # NaN cost
        False,  # costs more for less
    ]


def synthetic_scores(seed: int = 0, n_problems: int = 60, n_samples: int = 6) -> pd.DataFrame:
    """Score rows for a 3-model family on one task, 4 budgets, integer answers."""
    rng = np.random.default_rng(seed)
    params = np.array([1e6, 4e6, 1.6e7])
    budgets = np.array([0, 8, 32, 128])
    m, b, i, s = (a.ravel() for a in np.indices((3, 4, n_problems, n_samples)))
    p = 1 / (1 + np.exp(-(1.2 * m + 0.5 * np.log2(budgets[b] + 1) - 3)))
    correct = rng.random(m.size) < p
    wrong = rng.integers(1, 4, m.size)  # a few distinct wrong answers per problem
    pred = np.where(correct, "7", wrong.astype(str)).astype(object)
    pred[rng.random(m.size) < 0.05] = None
    correct &= pred != None  # noqa: E711 (elementwise)
    ref_len = np.full(m.size, 3)
    token_acc = np.clip(p ** (1 / 3) + rng.normal(0, 0.02, m.size), 0, 1)
    gold = (s == 0) & (b == 3)
    return pd.DataFrame(
        {
            "run_id": "r", "model": np.array(["f/s", "f/m", "f/l"])[m], "task": "t",
            "problem_id": [f"q{j}" for j in i], "sample": s, "seed": s,
            "budget": budgets[b], "extensions": 0, "thinking_tokens": np.minimum(budgets[b], 50),
            "natural_thinking_tokens": 50, "cut": budgets[b] < 50, "prompt_tokens": 20,
            "generated_tokens": np.minimum(budgets[b], 50) + 5, "pred": pred,
            "exact_match": correct, "ref_len": ref_len, "ref_logprob_sum": 3 * np.log(token_acc),
            "ref_logprob_mean": np.log(token_acc), "ref_prob": token_acc**3,
            "ref_token_acc": token_acc, "edit_distance": (~correct) * 1,
            "answer_logprob_mean": np.where(correct, -0.2, -0.9) + rng.normal(0, 0.3, m.size),
            "brier": np.nan,
            "gold_think_acc": np.where(gold, 0.9, np.nan),
            "gold_answer_acc": np.where(gold, token_acc, np.nan),
            "gold_token_acc": np.where(gold, (0.9 * 10 + token_acc * 3) / 13, np.nan),
            "gold_answer_logprob": np.where(gold, -1.0, np.nan),
            "gold_answer_len": np.where(gold, 3, np.nan),
            "gold_think_len": np.where(gold, 10, np.nan),
            "params": params[m], "family": "f", "engine": "hf", "answer_type": "integer",
        }
    )


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return synthetic_scores()


@pytest.fixture(scope="module")
def result(scores):
    return analyze(scores, n_boot=200)


def test_analyze_budget_table_has_accuracy_ci_and_thinking_percentiles(scores, result):
    t = result.budgets
    assert len(t) == 3 * 4
    expected = scores.groupby(["model", "budget"])["exact_match"].mean()
    got = t.set_index(["model", "budget"])["exact_match"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert (t["exact_match_lo"] <= t["exact_match"]).all() and (t["exact_match"] <= t["exact_match_hi"]).all()
    assert (t["think_p10"] <= t["think_p50"]).all() and (t["think_p50"] <= t["think_p90"]).all()
    assert t.loc[t["budget"] == 0, "think_mean"].eq(0).all()


def test_analyze_k_one_metrics_agree_with_accuracy(result):
    cov = result.coverage
    one = cov[cov["k"] == 1].merge(result.budgets, on=["model", "task", "extensions", "budget"])
    np.testing.assert_allclose(one["pass_at_k"], one["exact_match"])
    np.testing.assert_allclose(one["maj_at_k"], one["exact_match"])
    np.testing.assert_allclose(one["bok_at_k"], one["exact_match"])


def test_analyze_pass_and_majority_match_per_problem_definitions(scores, result):
    point = scores[(scores["model"] == "f/m") & (scores["budget"] == 32)]
    pass3, maj3 = [], []
    for _, prob in point.groupby("problem_id"):
        pass3.append(pass_at_k(len(prob), int(prob["exact_match"].sum()), 3))
        votes = [None if p is None else ("ok" if c else p) for p, c in
                 zip(prob["pred"], prob["exact_match"], strict=True)]
        maj3.append(majority_at_k(votes, prob["exact_match"].tolist(), 3))
    row = result.coverage.query("model == 'f/m' and budget == 32 and k == 3").iloc[0]
    assert row["pass_at_k"] == pytest.approx(np.mean(pass3))
    assert row["maj_at_k"] == pytest.approx(np.mean(maj3))
    assert row["pass_lo"] <= row["pass_at_k"] <= row["pass_hi"]


def test_analyze_fits_every_curve_and_states_the_rule(result):
    fits = result.fits
    assert set(fits["model"]) == {"f/s", "f/m", "f/l"}
    assert fits["rule"].str.contains("plateau").all()
    ok = fits[fits["status"] == "ok"]
    assert not ok.empty and (ok["b"] > 0).all()
    assert (ok["b_lo"] <= ok["b"]).all() and (ok["b"] <= ok["b_hi"]).all()


def test_emergence_table_predicts_exact_match_from_per_token_accuracy(scores):
    em = emergence_table(scores)
    assert em["model"].tolist() == ["f/s", "f/m", "f/l"]  # sorted by params
    assert (em["budget"] == 128).all()
    top = scores[scores["budget"] == 128]
    for _, row in em.iterrows():
        rows = top[top["model"] == row["model"]]
        assert row["exact_match"] == pytest.approx(rows["exact_match"].mean())
        assert row["pred_exact_match_ref"] == pytest.approx(rows["ref_token_acc"].mean() ** 3)
        gold = rows.dropna(subset=["gold_answer_acc"])
        assert row["gold_n"] == len(gold)
        assert row["pred_exact_match_gold_answer"] == pytest.approx(gold["gold_answer_acc"].mean() ** 3)


def test_analyze_compute_points_and_frontier(result):
    comp = result.compute
    row = comp.query("model == 'f/l' and budget == 32 and n == 4").iloc[0]
    assert row["flops"] == pytest.approx(2 * 1.6e7 * (20 + 32 + 5) * 4)
    assert comp["on_frontier"].sum() >= 2
    np.testing.assert_array_equal(
        comp["on_frontier"].to_numpy(), pareto_frontier(comp["flops"], comp["maj_at_n"])
    )


def test_analyze_sharpness_and_outputs_are_serialisable(result, tmp_path):
    assert {"exact_match", "ref_token_acc"} <= set(result.sharpness["metric"])
    data = result.to_json()
    json.dumps(data, allow_nan=False)
    assert data["log_budget_fits"] and "plateau" in data["rules"]["log_budget_fit"]
    paths = result.write(tmp_path / "analysis")
    assert {p.name for p in paths} >= {"budgets.csv", "fits.csv", "compute.csv", "fits.json"}
    assert len(pd.read_csv(tmp_path / "analysis" / "coverage.csv")) == len(result.coverage)


def test_analyze_handles_no_scores_and_scores_without_manifest_columns():
    empty = analyze(pd.DataFrame(columns=["model", "task", "budget", "exact_match"]))
    assert empty.budgets.empty and json.dumps(empty.to_json())
    bare = synthetic_scores(n_problems=12, n_samples=2).drop(
        columns=["params", "family", "engine", "answer_type"]
    )
    result = analyze(bare, n_boot=50)
    assert len(result.budgets) == 12
    assert result.compute["flops"].isna().all() and not result.compute["on_frontier"].any()
    assert result.sharpness.empty  # no parameter counts, no size axis
