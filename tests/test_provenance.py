"""Every analysis row reads one configuration over a stated problem set.

A deliberately mixed results folder, made through the real CLI on the zoo: a greedy sweep on
two sizes x two seeds, a sampled run of one checkpoint on a subset of the problems, a second
spec of that checkpoint (another answer budget), and a size run on a smaller subset. Every
table of `analyze` is then checked row by row, so tables added later are covered too.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import cli

from evalharness.analysis import Analysis, analyze
from evalharness.scoring import load_scores

H32 = "zoo/arith-h32-s0,zoo/arith-h32-s1"
H48 = "zoo/arith-h48-s0,zoo/arith-h48-s1"
RUNS = [  # (models, extra arguments)
    (H32, ["--limit", "24", "--budgets", "0,16,32,64"]),
    (H48, ["--limit", "24", "--budgets", "0,16,32,64"]),
    ("zoo/arith-h32-s0", ["--limit", "12", "--budgets", "32", "--n", "3",
                          "--temperature", "0.7"]),
    ("zoo/arith-h32-s0", ["--limit", "12", "--budgets", "32", "--max-answer-tokens", "9"]),
    ("zoo/arith-h48-s0", ["--limit", "8", "--budgets", "32", "--n", "2", "--temperature", "0.7",
                          "--top-p", "0.9"]),
]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    results = tmp_path_factory.mktemp("mixed")
    for models, extra in RUNS:
        cli(["eval", "--model", models, "--task", "add_sweep",
                                       "--engine", "hf", "--results", str(results), "--no-score",
                                       *extra])
    scores = load_scores(results)
    return results, scores, analyze(scores, n_boot=50)


def _specs(results) -> dict[str, str]:
    """Run id -> its spec without the model: runs with equal values are one configuration."""
    out = {}
    for d in (results / "runs").iterdir():
        spec = json.loads((d / "manifest.json").read_text())["spec"]
        spec.pop("model")
        out[d.name] = json.dumps(spec, sort_keys=True)
    return out


def test_every_table_row_names_its_runs_and_problem_count(mixed):
    results, scores, an = mixed
    specs = _specs(results)
    checked = 0
    for name in Analysis.TABLES:
        table = getattr(an, name)
        if table.empty:
            continue
        assert {"runs", "problems"} <= set(table.columns), f"{name}: no provenance columns"
        for _, row in table.iterrows():
            runs = str(row["runs"]).split(";")
            assert all(r in specs for r in runs), f"{name}: unknown run in {row['runs']}"
            # one configuration: every run the row read has the same spec but for the model
            # (a comparison that found no winner read every configuration it compared)
            if row.get("status", "ok") in ("ok", "no crossover") or "status" not in row:
                assert len({specs[r] for r in runs}) == 1, f"{name}: pools specs {runs}"
            recs = scores[scores["run_id"].isin(runs)]
            if "budget" in row and pd.notna(row["budget"]):
                recs = recs[recs["budget"] == row["budget"]]
            assert 0 < int(row["problems"]) <= recs["problem_id"].nunique(), (name, dict(row))
            checked += 1
    assert checked > 50


def test_greedy_and_sampled_runs_of_one_checkpoint_are_two_configurations(mixed):
    results, scores, an = mixed
    cheap = an.cheapest[an.cheapest["status"] == "ok"]
    # the sampled run saw 12 problems: its block compares every configuration on those 12
    block = cheap[cheap["problems"] == 12]
    assert not block.empty and block["problem_set"].str.startswith("12 of 24").all()
    comp = an.compute
    on12 = comp[(comp["problems"] == 12) & (comp["budget"] == 32) & (comp["n"] == 1)]
    h32 = on12[on12["model"].str.startswith("zoo/arith-h32-s0")]
    # greedy, sampled (t=0.7) and the other spec: three rows, three runs
    assert len(h32) == 3 and h32["runs"].nunique() == 3
    sampled = scores[scores["temperature"] > 0]
    subset = set(sampled[sampled["model"].str.startswith("zoo/arith-h32-s0")]["problem_id"])
    for _, row in h32.iterrows():
        recs = scores[(scores["run_id"] == row["runs"]) & (scores["budget"] == 32)
                      & scores["problem_id"].isin(subset)]
        # each row is its own run's accuracy on the 12 problems: nothing pooled across runs
        assert row["maj_at_n"] == pytest.approx(recs.groupby("problem_id")["exact_match"].mean().mean())
    # and the buy decision keeps them apart: greedy and t=0.7 labels, own accuracies
    labels = set(an.cheapest["config"].dropna()) | set(an.buy_costs["config"].dropna())
    assert not any("greedy" in c and "t=0.7" in c for c in labels)


def test_advice_names_sizes_with_their_seed_spread(mixed):
    _, _, an = mixed
    ok = an.cheapest[an.cheapest["status"] == "ok"]
    assert not ok.empty
    assert not ok["model"].str.contains(r"-s\d").any()  # a size, never one lucky seed
    full = ok[ok["problems"] == 24]
    assert (full["seeds"] == 2).all() and full["seed_accuracies"].str.count("/").eq(1).all()


def test_the_log_budget_fit_reads_only_problems_every_budget_saw(mixed):
    _, scores, an = mixed
    fits = an.fits
    assert np.all(fits["problems"] <= 24)


def test_the_report_says_which_problems_each_comparison_used_and_the_seeds(mixed):
    from evalharness.report import buy_answer, cheapest_table, frontier_table

    _, _, an = mixed
    table = cheapest_table(an, "add_sweep")
    sets = {row[0] for row in table.rows}
    # the sampled runs saw a subset: their block is named, apart from the full set's
    assert len(sets) >= 2 and any(s.startswith("all 24") for s in sets), sets
    assert any("of 24 problems" in s for s in sets), sets
    ok = [row for row in table.rows if row[3]]
    assert any(row[3].startswith("2: ") for row in ok)  # two seeds, each one's accuracy
    text = buy_answer(an, "add_sweep").text
    assert " on 12 of 24 problems" in text or " on 8 of 24 problems" in text
    assert "2 seeds: " in text
    frontier = frontier_table(an, "add_sweep")
    assert len({row[0] for row in frontier.rows}) >= 2
