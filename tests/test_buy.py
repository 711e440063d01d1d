from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalharness.analysis.buy import (
    cheapest_configs,
    crossovers,
    difficulty_of,
    fit_exchange,
    logistic_fit,
    operand_digits,
    plateau_cut,
)

SIZES = 2.0 ** np.arange(10, 15)  # five model sizes
BUDGETS = 2.0 ** np.arange(3, 8)  # five thinking budgets
B_TRUE, C_TRUE = 0.6, 0.9  # logit gain per doubling of N and of T: rate 1.5


def surface_cells(rng, n_problems, b=B_TRUE, c=C_TRUE, d=0.0, sizes=SIZES, levels=BUDGETS,
                  replicates=1, seed_sd=0.0) -> pd.DataFrame:
    """Bernoulli outcomes per (problem, model, level) from a known logistic surface centred on
    the grid; `replicates` checkpoints per size, each shifted by a N(0, seed_sd) logit offset."""
    xn = np.log2(sizes) - np.log2(sizes).mean()
    xl = np.log2(levels) - np.log2(levels).mean()
    frames = []
    for r in range(replicates):
        shift = rng.normal(0, seed_sd, len(sizes))
        logit = b * xn[:, None] + c * xl[None, :] + d * xn[:, None] * xl[None, :] + shift[:, None]
        p = 1 / (1 + np.exp(-logit))
        y = rng.random((n_problems, *p.shape)) < p
        i, s, t = np.indices(y.shape)
        frames.append(pd.DataFrame({
            "problem_id": i.ravel(), "model": [f"m{int(v)}-s{r}" for v in sizes[s.ravel()]],
            "params": sizes[s.ravel()], "level": levels[t.ravel()], "y": y.ravel().astype(float),
        }))
    return pd.concat(frames, ignore_index=True)


def test_logistic_fit_recovers_coefficients_from_exact_proportions():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    p = 1 / (1 + np.exp(-(-1.0 + 0.8 * x[:, 0])))
    beta = logistic_fit(x, 1000 * p[None, :], np.full((1, 4), 1000.0))
    np.testing.assert_allclose(beta[0], [-1.0, 0.8], atol=1e-3)


def test_exchange_rate_recovers_a_known_rate_within_its_ci():
    fit = fit_exchange(surface_cells(np.random.default_rng(0), 300), n_boot=300)
    assert fit.status == "ok" and np.isnan(fit.d)  # no interaction in the data, none kept
    assert fit.rate_lo <= C_TRUE / B_TRUE <= fit.rate_hi
    assert fit.rate == pytest.approx(C_TRUE / B_TRUE, rel=0.15)


@pytest.mark.slow  # 200 repetitions x 200 bootstrap replicates
def test_exchange_rate_ci_covers_the_truth_at_the_nominal_rate():
    reps, hits = 200, 0
    for rep in range(reps):
        rng = np.random.default_rng(10_000 + rep)
        fit = fit_exchange(surface_cells(rng, 40), n_boot=200, seed=rep)
        hits += fit.rate_lo <= C_TRUE / B_TRUE <= fit.rate_hi
    assert 0.90 <= hits / reps <= 1.0  # nominal 95% +- 5 points


def test_exchange_rate_with_an_interaction_is_read_at_the_stated_point():
    d = 0.25
    fit = fit_exchange(surface_cells(np.random.default_rng(1), 400, d=d), n_boot=300)
    assert fit.status == "ok" and fit.d_lo > 0  # the data support the interaction
    # truth at the stated point, in the generator's centred coordinates
    xn = fit.at_log2_params - np.log2(SIZES).mean()
    xl = fit.at_log2_x - np.log2(BUDGETS).mean()
    truth = (C_TRUE + d * xn) / (B_TRUE + d * xl)
    assert fit.rate_lo <= truth <= fit.rate_hi
    # the rate changes over the grid: its range over the measured cells brackets the true
    # corner rates' spread and is reported, not hidden behind the one number
    cn = np.log2(SIZES) - np.log2(SIZES).mean()
    cl = np.log2(BUDGETS) - np.log2(BUDGETS).mean()
    corners = [(C_TRUE + d * a) / (B_TRUE + d * b) for a in cn[[0, -1]] for b in cl[[0, -1]]]
    assert fit.rate_min < fit.rate < fit.rate_max
    assert fit.rate_max - fit.rate_min > 0.5 * (max(corners) - min(corners))
    assert fit.seeds_min == fit.seeds_max == 1


def test_a_surface_that_misses_a_measured_cell_says_by_how_much():
    cells = surface_cells(np.random.default_rng(3), 300)
    # one cell far off the logistic surface: every problem right at the smallest size and
    # largest budget (the surface says ~0.5 there)
    small, top = cells["params"] == SIZES[0], cells["level"] == BUDGETS[-1]
    cells.loc[small & top, "y"] = 1.0
    fit = fit_exchange(cells, n_boot=50)
    assert fit.max_residual > 0.2
    assert f"budget={BUDGETS[-1]:g}: measured 1.00" in fit.worst_cell


def test_flat_thinking_axis_is_not_identifiable():
    fit = fit_exchange(surface_cells(np.random.default_rng(2), 100, c=0.0), n_boot=300)
    assert fit.status.startswith("not identifiable") and "CI of c" in fit.status
    assert fit.c_lo <= 0 <= fit.c_hi


def test_flat_size_axis_is_not_identifiable():
    fit = fit_exchange(surface_cells(np.random.default_rng(3), 100, b=0.0), n_boot=300)
    assert fit.status.startswith("not identifiable") and "CI of b" in fit.status


def test_too_few_levels_or_saturated_cells_are_not_identifiable():
    rng = np.random.default_rng(4)
    two = fit_exchange(surface_cells(rng, 50, levels=BUDGETS[:2]), n_boot=50)
    assert two.status == "not identifiable: only 2 levels of budget (need 3)"
    few = fit_exchange(surface_cells(rng, 50, sizes=SIZES[:2]), n_boot=50)
    assert "only 2 model sizes" in few.status
    sat = surface_cells(rng, 50).assign(y=1.0)
    assert "saturated" in fit_exchange(sat, n_boot=50).status


def test_a_step_in_thinking_budget_or_a_falling_slope_is_not_identifiable():
    cells = surface_cells(np.random.default_rng(6), 60)
    step = cells.assign(y=(cells["level"] >= 32).astype(float))  # 0 -> 1 at T = 32: no slope
    edge = (step["params"] == SIZES[0]) & (step["level"] == 32)
    step.loc[edge, "y"] = (step.loc[edge, "problem_id"] % 2).astype(float)  # one cell at 50%
    assert fit_exchange(step, n_boot=50).status.endswith("the surface is a step")
    worse = fit_exchange(surface_cells(np.random.default_rng(6), 300, b=-0.6), n_boot=200)
    assert worse.status == (
        "not identifiable: accuracy falls as N grows (the CI of its slope is below 0)"
    )


def test_seed_replicates_widen_the_ci_when_checkpoints_disagree():
    cells = surface_cells(np.random.default_rng(5), 200, replicates=2, seed_sd=0.6)
    with_seeds = fit_exchange(cells, n_boot=300)
    # the same records with the seed label erased: only problems are resampled
    pooled = fit_exchange(cells.assign(model=cells["params"].astype(str)), n_boot=300)
    assert with_seeds.n_models == 10 and pooled.n_models == 5
    assert (with_seeds.b_hi - with_seeds.b_lo) > 1.3 * (pooled.b_hi - pooled.b_lo)


def test_plateau_cut_keeps_budgets_up_to_the_first_at_the_maximum():
    curve = pd.DataFrame({"level": [0, 8, 16, 32, 64], "y": [0.0, 0.2, 0.6, 0.99, 1.0]})
    assert plateau_cut(curve, tol=0.02)["level"].tolist() == [8, 16, 32]


def test_difficulty_comes_from_a_field_or_the_task_registry():
    ids = pd.Series(["add-958+67", "add-1+2", "add-12345678+1"])
    assert operand_digits("add-958+67") == 3
    assert difficulty_of("add_sweep", ids).tolist() == [3, 1, 8]
    assert difficulty_of("gsm8k", ids).isna().all()  # no registered function: no buckets
    given = pd.Series([2.0, 5.0, 1.0])
    assert difficulty_of("add_sweep", ids, given).tolist() == [2, 5, 1]


# ----------------------------------------------------------------------------- cost

TRAIN = {"small": 1e12, "large": 5e12}
# population accuracy and mean inference FLOPs per problem of each configuration
CONFIGS = [  # model, budget, accuracy, mean FLOPs
    ("small", 16, 0.40, 2e6), ("small", 64, 0.92, 8e6),
    ("large", 8, 0.55, 3e6), ("large", 16, 0.93, 5e6),
]
TRUE_Q = (TRAIN["large"] - TRAIN["small"]) / (8e6 - 5e6)


def cost_points(rng, n_problems: int) -> pd.DataFrame:
    """Per-problem correctness and FLOPs (problem lengths vary: FLOPs = mean * U(0.5, 1.5))."""
    length = rng.uniform(0.5, 1.5, n_problems)
    rows = []
    for model, budget, acc, fl in CONFIGS:
        correct = rng.random(n_problems) < acc
        rows.append(pd.DataFrame({
            "problem_id": np.arange(n_problems), "model": model,
            "config": f"{model} T={budget} n=1 greedy",
            "budget": budget, "n": 1, "maj_at_n": correct.astype(float), "flops": fl * length,
        }))
    return pd.concat(rows, ignore_index=True)


def test_cheapest_configuration_and_runner_up_for_a_target():
    table = cheapest_configs(cost_points(np.random.default_rng(6), 400), targets=(0.8, 0.99),
                             n_boot=300)
    hit = table[table["target"] == 0.8].iloc[0]
    assert (hit["model"], hit["budget"]) == ("large", 16)
    assert (hit["runner_up"], hit["runner_up_budget"]) == ("small", 64)
    assert hit["margin_lo"] <= 8e6 / 5e6 <= hit["margin_hi"]
    assert hit["flip_rate"] < 0.05  # 0.92 and 0.93 are far above 0.8: the choice is stable
    miss = table[table["target"] == 0.99].iloc[0]
    assert miss["status"] == "no configuration reaches the target"


def test_near_tie_flips_often():
    rng = np.random.default_rng(7)
    pts = cost_points(rng, 300)
    small = pts["model"] == "small"  # as expensive as large on average, with its own lengths
    pts.loc[small, "flops"] = (
        pts.loc[small, "budget"] / 64 * 5e6 * rng.uniform(0.5, 1.5, small.sum())
    )
    row = cheapest_configs(pts, targets=(0.8,), n_boot=300).iloc[0]
    assert 0.2 < row["flip_rate"] < 0.8


@pytest.mark.slow  # 200 repetitions x 200 bootstrap replicates
def test_crossover_q_is_recovered_and_its_ci_covers_at_the_nominal_rate():
    reps, hits = 200, 0
    for rep in range(reps):
        pts = cost_points(np.random.default_rng(20_000 + rep), 60)
        cross, lines = crossovers(pts, TRAIN, targets=(0.8,), n_boot=200, seed=rep)
        row = cross.iloc[0]
        assert (row["from_model"], row["to_model"]) == ("small", "large")
        hits += row["q_lo"] <= TRUE_Q <= row["q_hi"]
    assert 0.90 <= hits / reps <= 1.0
    assert set(lines["model"]) == {"small", "large"}


def test_one_model_cheaper_to_train_and_to_run_has_no_crossover():
    pts = cost_points(np.random.default_rng(8), 200)
    cross, _ = crossovers(pts, {"small": 1e13, "large": 1e12}, targets=(0.8,), n_boot=50)
    assert cross.iloc[0]["status"] == "no crossover" and cross.iloc[0]["from_model"] == "large"


def test_answer_paragraph_states_the_computed_rate_or_why_it_is_not_identifiable():
    from evalharness.analysis.buy import answer, flat

    ok = fit_exchange(surface_cells(np.random.default_rng(9), 200), n_boot=200)
    flat_t = fit_exchange(surface_cells(np.random.default_rng(9), 100, c=0.0), "samples", 200)
    rows = [{"family": "f", "task": "t", "axis": "budget", "setting": "", "bucket": "all",
             **flat(ok)},
            {"family": "f", "task": "t", "axis": "samples", "setting": "T=32", "bucket": "all",
             **flat(flat_t)}]
    cheap = cheapest_configs(cost_points(np.random.default_rng(6), 200), targets=(0.8,),
                             n_boot=100).assign(task="t")
    text = answer("t", pd.DataFrame(rows), cheap, pd.DataFrame())
    assert f"worth {ok.rate:.2g} doublings of parameters" in text
    assert f"(95% CI {ok.rate_lo:.2g}–{ok.rate_hi:.2g})" in text
    assert f"the number of samples n is {flat_t.status}" in text
    assert "use large T=16 n=1 greedy (one seed, so seed-to-seed variation is not in" in text
    assert "the best other size, small T=64 n=1 greedy, costs" in text
    # what the one rate hides is said: seeds behind it, the surface's worst miss
    assert f"misses measured cells by up to {ok.max_residual:.2f} accuracy" in text
    assert ok.seeds_max >= 1 and 0 <= ok.max_residual < 0.5
    assert answer("other task", pd.DataFrame(rows), cheap, pd.DataFrame()) == ""


def test_two_outcomes_for_one_problem_configuration_and_seed_are_refused():
    """A cell holds one outcome: a second row (two specs under one configuration label) would
    silently overwrite the first, so pairing refuses it and says which cell."""
    points = cost_points(np.random.default_rng(7), 20)
    twice = pd.concat([points, points.iloc[:3].assign(maj_at_n=1.0)], ignore_index=True)
    with pytest.raises(ValueError, match="share a .problem, configuration, seed.*small T=16"):
        cheapest_configs(twice, targets=(0.8,), n_boot=20)
    assert len(cheapest_configs(points, targets=(0.8,), n_boot=20)) == 1
