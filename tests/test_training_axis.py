"""Emergence over training compute: every checkpoint of a family read in one configuration,
seeds of a size at one token level averaged with a CI over problems and seeds, and the figure
drawn against parameters, training FLOPs or tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_scaling_law import PROBLEMS, SEEDS, SIZES, TOKENS, records

from evalharness.analysis.records import prepare
from evalharness.analysis.training import training_records, training_tables


@pytest.fixture(scope="module")
def frame():
    return prepare(records(np.random.default_rng(11)))


@pytest.fixture(scope="module")
def tables(frame):
    return training_tables(frame, n_boot=200)[:2]


def test_every_checkpoint_is_read_at_one_budget_and_greedy(frame):
    rec = training_records(frame)
    assert set(rec["budget"]) == {64}  # both greedy budgets ran everywhere: the larger one
    assert rec["greedy"].all()
    assert sorted(rec["law_family"].unique()) == ["zoo/arith", "zoo/arith [few_shot=2]"]
    assert (rec["train_flops"] == 6 * rec["params"] * rec["train_tokens"]).all()


def test_seed_means_per_size_and_token_level_with_intervals(tables):
    points, curves = tables
    main = curves[(curves["family"] == "zoo/arith") & (curves["metric"] == "exact_match")]
    assert len(main) == SIZES.size * TOKENS.size
    assert (main["n_seeds"] == SEEDS).all()
    pts = points[(points["family"] == "zoo/arith") & (points["metric"] == "exact_match")]
    # the curve is the mean of its seeds' checkpoints
    one = main.sort_values(["params", "train_tokens"]).iloc[-1]
    seeds = pts[(pts["size"] == one["size"]) & np.isclose(pts["train_tokens"], one["train_tokens"])]
    assert len(seeds) == SEEDS and one["mean"] == pytest.approx(seeds["value"].mean())
    assert (main["ci_lo"] <= main["mean"] + 1e-12).all() and (main["mean"] <= main["ci_hi"] + 1e-12).all()
    # exact match rises along training for the largest size (the synthetic truth does)
    big = main[main["params"] == SIZES.max()].sort_values("train_tokens")["mean"].to_numpy()
    assert big[-1] > big[0]
    assert {"runs", "problems"} <= set(curves.columns) and {"runs", "problems"} <= set(points.columns)
    # the checkpoint that saw half the problems keeps its own count
    assert points.loc[points["family"] == "zoo/arith", "problems"].min() == PROBLEMS // 2


def test_a_family_without_training_tokens_has_no_training_curve():
    df = prepare(records(np.random.default_rng(1)).assign(train_tokens=np.nan))
    points, curves, sharp = training_tables(df, n_boot=20)
    assert points.empty and curves.empty and sharp.empty


def test_the_training_figure_draws_against_each_asked_axis(frame, tables):
    from evalharness.plots.common import TaskView
    from evalharness.plots.scaling import X_LABELS, training_figures

    points, curves = tables
    an = type("A", (), {"training_points": points, "training_curves": curves})()
    for axes in (("params", "train_flops"), ("tokens",)):
        specs = training_figures(TaskView(an, "add5", pd.DataFrame(), "", {}, axes))
        assert len(specs) == 2  # one per family
        assert len(specs[0].figure.axes) == len(axes)
        for a in axes:
            assert X_LABELS[a].split(" (")[0] in specs[0].caption


@pytest.mark.parametrize("command", ["plots", "report"])
def test_plots_and_report_refuse_an_unknown_x_axis(tmp_path, command):
    from helpers import cli

    (tmp_path / "runs").mkdir()
    res = cli([command, "--results", str(tmp_path), "--x", "steps"], code=None)
    assert res.exit_code != 0 and "params | train_flops | tokens" in res.output


def test_sharpness_is_read_along_training_and_across_sizes_with_intervals(frame):
    *_, sharp = training_tables(frame, n_boot=200)
    main = sharp[(sharp["family"] == "zoo/arith") & (sharp["metric"] == "exact_match")]
    along = main[main["axis"] == "train_flops"]
    across = main[main["axis"] == "params"]
    assert len(along) == SIZES.size and len(across) == TOKENS.size
    ok = main[main["status"] == "ok"]
    assert len(ok) and (ok["sharpness"] <= 1.0).all()
    assert ((ok["sharpness_lo"] <= ok["sharpness"] + 1e-9)
            & (ok["sharpness"] <= ok["sharpness_hi"] + 1e-9)).all()
    # a curve that never moves says so instead of giving a number
    flat = main[main["status"] != "ok"]
    assert flat["sharpness"].isna().all() and flat["status"].str.startswith("no fit").all()
