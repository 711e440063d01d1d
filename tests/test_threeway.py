"""The three-way answer: a synthetic set of checkpoints with a known cheapest option at each
query volume, known runner-ups and hand-computed crossovers is recovered; flat accuracy, a
step, one configuration or an unreached target are "not identifiable"; a mixed results table
never pools greedy with sampled runs, specs or problem sets; kept checkpoints share their N."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from evalharness.analysis.threeway import kind_of, threeway, threeway_words

PROBLEMS = 200
HIT, MISS = 0.97, 0.5  # accuracies far above / below the target: no resample flips them
TARGET = 0.8

# checkpoint: (N, D, {T: accuracy}); inference FLOPs per query = 2 * N * T (stated, not
# derived by the code under test), training FLOPs = 6 * N * D
CHECKPOINTS = {
    "zoo/h2": (2e5, 1e6, {32: MISS, 64: HIT}),  # small, thinks long: cheapest at low Q
    "zoo/h4@step250": (4e5, 1e6, {8: MISS, 16: HIT}),  # the middle-Q winner
    "zoo/h4@step500": (4e5, 2e6, {8: MISS, 16: HIT}),  # the same N trained twice as long
    "zoo/h8": (8e5, 1.5e6, {4: MISS, 8: HIT}),  # bigger, short think
    "zoo/h1": (1e5, 4e7, {16: MISS, 32: HIT}),  # over-trained small: cheapest at high Q
    "zoo/h1@step250": (1e5, 1e7, {32: MISS, 64: HIT}),
}


def train(ck: str) -> float:
    n, d, _ = CHECKPOINTS[ck]
    return 6 * n * d


def inference(ck: str) -> float:
    n, _, acc = CHECKPOINTS[ck]
    return 2 * n * min(t for t, a in acc.items() if a >= TARGET)


def cost(ck: str, q: float) -> float:
    return train(ck) + q * inference(ck)


def outcomes(rng, acc: float) -> np.ndarray:
    y = np.zeros(PROBLEMS)
    y[rng.choice(PROBLEMS, int(round(acc * PROBLEMS)), replace=False)] = 1.0
    return y


def points(rng, checkpoints=CHECKPOINTS, seeds=2, same=None) -> pd.DataFrame:
    """Per (problem, configuration, seed) rows of `threeway`'s input; `same`: one outcome
    vector for every configuration (a flat surface)."""
    rows = []
    for ck, (n, d, accs) in checkpoints.items():
        for t, acc in accs.items():
            for s in range(seeds):
                y = same if same is not None else outcomes(rng, acc)
                rows.append(pd.DataFrame({
                    "problem_id": [f"p{i}" for i in range(PROBLEMS)], "model": ck.split("@")[0],
                    "checkpoint": ck, "seed": float(s), "config": f"{ck} T={t} n=1 greedy",
                    "budget": t, "n": 1, "decoding": "greedy", "params": n, "tokens": d,
                    "train_flops": 6 * n * d, "maj_at_n": y, "flops": 2 * n * t}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def known():
    return threeway(points(np.random.default_rng(0)), targets=(TARGET,),
                    volumes=(1e4, 1e6, 1e8), n_boot=300)


def test_the_cheapest_checkpoint_at_each_query_volume_is_the_known_one(known):
    ans, _, _ = known
    assert (ans["status"] == "ok").all()
    for q, row in ans.set_index("queries").iterrows():
        truth = min(CHECKPOINTS, key=lambda ck, q=q: cost(ck, q))
        assert row["checkpoint"] == truth
        assert row["cost"] == pytest.approx(cost(truth, q))
        assert row["budget"] == min(t for t, a in CHECKPOINTS[truth][2].items() if a >= TARGET)
    assert list(ans.sort_values("queries")["checkpoint"]) == ["zoo/h2", "zoo/h4@step250",
                                                              "zoo/h1"]


def test_runner_ups_of_each_other_kind_and_their_margins_at_a_stated_volume(known):
    ans, _, _ = known
    r = ans.set_index("queries").loc[1e6]
    win = cost("zoo/h4@step250", 1e6)
    # bigger: h8; longer-trained: the same N at twice the tokens beats the over-trained h1s;
    # longer-thinking: the smaller h2 at equal training
    for prefix, ck in (("bigger", "zoo/h8"), ("trained", "zoo/h4@step500"),
                       ("thinking", "zoo/h2")):
        assert r[f"{prefix}_checkpoint"] == ck
        assert r[f"{prefix}_margin"] == pytest.approx(cost(ck, 1e6) / win)
        assert r[f"{prefix}_margin_lo"] <= r[f"{prefix}_margin"] <= r[f"{prefix}_margin_hi"]
    assert r["trained_params"] == r["params"]  # a kept checkpoint is the same N, not bigger
    # at the highest volume nothing bigger than h1 is cheaper, and every option is costed
    top = ans.set_index("queries").loc[1e8]
    assert top["checkpoint"] == "zoo/h1" and top["bigger_margin"] > 1


def test_crossovers_in_query_volume_match_the_hand_computed_ones(known):
    _, cross, _ = known
    # lower envelope: h2 until its line meets h4@step250's, then h4@step250 until h1's
    q1 = (train("zoo/h4@step250") - train("zoo/h2")) / (inference("zoo/h2")
                                                       - inference("zoo/h4@step250"))
    q2 = (train("zoo/h1") - train("zoo/h4@step250")) / (inference("zoo/h4@step250")
                                                       - inference("zoo/h1"))
    assert (q1, q2) == pytest.approx((93750.0, 3375000.0))
    cross = cross.sort_values("q_star")
    assert list(zip(cross["from_checkpoint"], cross["to_checkpoint"], strict=True)) == [
        ("zoo/h2", "zoo/h4@step250"), ("zoo/h4@step250", "zoo/h1")]
    assert list(cross["q_star"]) == pytest.approx([q1, q2])
    assert ((cross["q_lo"] <= cross["q_star"]) & (cross["q_star"] <= cross["q_hi"])).all()
    assert list(cross["from_kind"]) == ["longer-thinking", "bigger"]
    assert list(cross["to_kind"]) == ["bigger", "longer-trained"]


def test_the_plain_words_name_the_answer_its_margins_and_crossovers(known):
    ans, cross, costs = known
    ans, cross, costs = (t.assign(task="add5", family="zoo") for t in known)
    (words,) = threeway_words(ans, cross, costs, "add5", volume=1e6)
    assert "use h4@step250 trained on 10^6 tokens (0.5× its longest measured training)" in words
    m = cost("zoo/h4@step500", 1e6) / cost("zoo/h4@step250", 1e6)
    assert "the next best longer-trained option is h4@step500" in words
    assert f"({m:.2g}× [" in words
    assert "below 9.4·10^4 queries" in words and "the longer-thinking h2 wins" in words
    assert "above 3.4·10^6 queries" in words and "the longer-trained h1 wins" in words


def test_kinds_are_read_relative_to_the_winner():
    assert kind_of(8e5, 1e6, 4e5, 1e6) == "bigger"
    assert kind_of(4e5, 2e6, 4e5, 1e6) == "longer-trained"
    assert kind_of(1e5, 4e7, 4e5, 1e6) == "longer-trained"  # smaller, trained on more tokens
    assert kind_of(2e5, 1e6, 4e5, 1e6) == "longer-thinking"


def _status(pts, target=TARGET) -> str:
    ans, cross, _ = threeway(pts, targets=(target,), volumes=(1e6,), n_boot=200)
    assert cross.empty  # no answer, no crossover
    return ans["status"].iloc[0]


def test_flat_accuracy_is_not_identifiable():
    rng = np.random.default_rng(1)
    st = _status(points(rng, same=outcomes(rng, 0.9)))
    assert st.startswith("not identifiable: the best and the worst configuration are not told apart")


def test_a_step_is_not_identifiable():
    step = {ck: (n, d, {t: float(a >= TARGET) for t, a in acc.items()})
            for ck, (n, d, acc) in CHECKPOINTS.items()}
    assert "a step" in _status(points(np.random.default_rng(2), step))


def test_checkpoints_without_training_flops_are_named_not_dropped():
    pts = points(np.random.default_rng(6))
    ans, _, _ = threeway(pts.assign(train_flops=np.nan), targets=(TARGET,), volumes=(1e6,),
                         n_boot=20)
    assert ans["status"].iloc[0].startswith("not identifiable: no checkpoint has training")
    # one sentence for every target the reason holds for
    ans2, _, _ = threeway(pts.assign(train_flops=np.nan), targets=(0.5, 0.8), volumes=(1e6,),
                          n_boot=20)
    (line,) = threeway_words(ans2.assign(task="t", family="f"), pd.DataFrame(), pd.DataFrame(),
                             "t")
    assert line.startswith("f: to reach 50%, 80% on t with 10^6 queries: not identifiable")
    h8 = pts["checkpoint"] == "zoo/h8"
    ans, _, costs = threeway(pts.assign(train_flops=pts["train_flops"].where(~h8)),
                             targets=(TARGET,), volumes=(1e6,), n_boot=20)
    assert ans["left_out"].iloc[0] == 2 and "zoo/h8" not in set(costs["checkpoint"])
    words = threeway_words(ans.assign(task="t", family="f"), pd.DataFrame(),
                           costs.assign(task="t", family="f"), "t")
    assert "(2 configurations without training FLOPs left out)" in words[0]


def test_one_configuration_or_an_unreached_target_is_not_identifiable():
    one = {"zoo/h4": (4e5, 1e6, {16: HIT})}
    assert "single configuration" in _status(points(np.random.default_rng(3), one))
    st = _status(points(np.random.default_rng(4)), target=0.995)
    assert st == "not identifiable: no configuration reaches 99.5%"


# ----------------------------------------------------------------------------- from records


def score_rows() -> pd.DataFrame:
    """Score rows of two sizes, each kept at two training steps (2 seeds): greedy runs on 40
    problems (h1 right on 3 in 4, h4 always); sampled runs (t=0.7, 4 samples) on the first 20,
    always wrong; and a second spec of the family on all 40, right on half. Pooling any two
    of them would give accuracies no configuration has."""
    rows = []
    for h, n in ((1, 1e5), (4, 4e5)):
        for step, d in ((500, 1e6), (1000, 2e6)):
            tag = "" if step == 1000 else f"@step{step}"
            for seed in (0, 1):
                for spec, temp, samples, probs in (("", 0.0, 1, 40), ("", 0.7, 4, 20),
                                                   ("few_shot=2", 0.0, 1, 40)):
                    size = f"zoo/arith-h{h}{tag}" + (f" [{spec}]" if spec else "")
                    for p in range(probs):
                        for s in range(samples):
                            right = temp == 0 and ((p % 2 == 0) if spec
                                                   else (h == 4 or p % 4 != 0))
                            rows.append({
                                "run_id": f"r{h}{step}{seed}{spec}{temp}",
                                "model": f"zoo/arith-h{h}-s{seed}{tag}"
                                + (f" [{spec}]" if spec else ""),
                                "task": "add5", "problem_id": f"add5-{p}", "sample": s,
                                "budget": 32, "extensions": 0, "exact_match": right,
                                "pred": str(s if not right else 1), "prompt_tokens": 10,
                                "generated_tokens": 20, "params": n,
                                "family": "zoo/arith" + tag, "size": size,
                                "model_seed": float(seed), "train_tokens": d,
                                "temperature": temp, "spec_label": spec})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def mixed():
    from evalharness.analysis.compute import buy_points, buy_tables
    from evalharness.analysis.records import (
        difficulty_column,
        model_info,
        per_problem_rows,
        prepare,
        with_flops,
    )
    from evalharness.analysis.threeway import threeway_tables

    scores = score_rows()
    info = model_info(scores)
    df = with_flops(prepare(scores), info)
    df["difficulty"] = difficulty_column(df)
    pp, ks = per_problem_rows(df)
    pts = buy_points(pp, df, ks)
    return pts, threeway_tables(pts, info, n_boot=100), buy_tables(pp, df, ks, info, 50, 0.05, 0)


def test_kept_checkpoints_share_their_size(mixed):
    pts, _, (_, cheapest, _, _) = mixed
    steps = pts[pts["checkpoint"].str.contains("@step")]
    assert len(steps) and not steps["model"].str.contains("@step").any()
    assert set(pts["model"]) >= {"zoo/arith-h1", "zoo/arith-h4"}
    # the buy decision's runner-up is another size, never the same N read earlier in training
    ok = cheapest[cheapest["status"] == "ok"]
    assert len(ok) and not ok["model"].str.contains("@step").any()
    has = ok["runner_up"].notna()
    assert (ok.loc[has, "runner_up"] != ok.loc[has, "model"]).all()


def test_a_mixed_results_table_never_pools_decodings_specs_or_problem_sets(mixed):
    _, (ans, cross, costs, grid), _ = mixed
    assert set(ans["family"]) == {"zoo/arith", "zoo/arith [few_shot=2]"}
    # every measured configuration keeps its own accuracy: greedy 3/4 or 1, sampled 0, the
    # other spec 1/2
    main = grid[grid["family"] == "zoo/arith"]
    assert set(main.loc[main["decoding"] == "greedy", "maj_at_n"]) == {0.75, 1.0}
    assert set(main.loc[main["decoding"] != "greedy", "maj_at_n"]) == {0.0}
    other = grid[grid["family"] != "zoo/arith"]
    assert set(other["maj_at_n"]) == {0.5}
    # greedy and sampled runs saw different problems: one block each, each stating its set
    sets = set(ans.loc[ans["family"] == "zoo/arith", "problem_set"])
    assert sets == {"all 40 problems", "20 of 40 problems"}
    ok = ans[ans["status"] == "ok"]
    assert set(ok["problem_set"]) == sets
    # each row names the runs it read: the greedy-only block none of the sampled runs
    full = ok[ok["problem_set"] == "all 40 problems"]
    assert not full["compared_runs"].str.contains("0.7").any()
    sub_runs = ok.loc[ok["problem_set"] != "all 40 problems", "compared_runs"]
    assert sub_runs.str.contains("0.7").all()
    # and `runs` are the reported configuration's own: one checkpoint, one decoding
    assert not ok["runs"].str.contains("0.7").any()
    assert (ok["runs"].str.count(";") == 1).all()  # its two seeds
    for _, r in ok.iterrows():
        assert r["problems"] == int(re.search(r"\d+", r["problem_set"]).group())
        assert r["decoding"] in r["config"]
    # on the 20-problem block the sampled configurations (accuracy 0) never win or qualify
    sub = ans[(ans["family"] == "zoo/arith") & (ans["problem_set"] == "20 of 40 problems")]
    assert (sub.loc[sub["status"] == "ok", "decoding"] == "greedy").all()
    assert not costs["decoding"].str.startswith("t=").any()
    # a family whose accuracy is 0.5 everywhere answers "flat", not someone else's answer
    assert ans.loc[ans["family"] != "zoo/arith", "status"].str.contains("flat").all()
    assert not math.isnan(ans.loc[ans["family"] == "zoo/arith", "problems"].min())
    assert cross.empty or set(cross["family"]) <= set(ans["family"])


# ----------------------------------------------------------------------------- figures


def _view(ans, cross, costs, grid):
    from evalharness.plots.common import TaskView

    an = type("A", (), {"threeway": ans, "threeway_crossover": cross, "threeway_costs": costs,
                        "threeway_grid": grid})()
    return TaskView(an, "add5", pd.DataFrame(), "", {})


def test_figures_draw_cost_per_kind_and_contours_only_where_data_exist(known):
    from evalharness.analysis.threeway import grid_rows
    from evalharness.plots.common import sci_label
    from evalharness.plots.threeway import threeway_figures

    ans, cross, costs = (t.assign(task="add5", family="zoo") for t in known)
    grid = grid_rows(points(np.random.default_rng(5))).assign(task="add5", family="zoo")
    specs = {s.kind: s for s in threeway_figures(_view(ans, cross, costs, grid))}
    assert set(specs) == {"threeway_cost", "threeway_contours"}
    cost_ax = specs["threeway_cost"].figure.axes[0]
    labels = [ln.get_label() for ln in cost_ax.get_lines() if not ln.get_label().startswith("_")]
    # the winner at the reference volume and one line per other kind
    assert len(labels) == 4 and labels[0].startswith("winner at Q")
    assert {lab.split(" (")[0] for lab in labels[1:]} == {"bigger", "longer-trained",
                                                          "longer-thinking"}
    # both contour panels: (N, D) at T = 32 (most cells: 3, as T = 16, the larger among
    # ties), (N, T) at D = 1e6 (4 cells)
    titles = [a.get_title() for a in specs["threeway_contours"].figure.axes if a.get_title()]
    assert titles == ["N × D at T = 32", "N × T at D = " + sci_label(1e6)]
    # T = 0 (no thinking) has no place on a log axis: left out of the (N, T) panel, drawn
    with_zero = pd.concat([grid, grid[grid["budget"] == 32].assign(budget=0)])
    fig = next(s.figure for s in threeway_figures(_view(ans, cross, costs, with_zero))
               if s.kind == "threeway_contours")
    nt = [a for a in fig.axes if a.get_title().startswith("N × T")][0]
    assert 0 not in list(nt.get_yticks()) and np.isfinite(nt.get_ylim()).all()
    # one size only: no axis pair with >= 2 levels of N, so no contour figure at all
    one = grid[grid["params"] == 4e5]
    kinds = {s.kind for s in threeway_figures(_view(ans, cross, costs, one))}
    assert kinds == {"threeway_cost"}
    # no answer at the reference volume: no cost figure either
    none = ans.assign(status="not identifiable: x")
    assert not threeway_figures(_view(none, cross.iloc[0:0], costs, one))


def test_the_report_section_and_summary_carry_the_answer_tables_and_words(known):
    from evalharness.analysis.threeway import THREEWAY_RULE
    from evalharness.report.tradeoff import (
        _tradeoff_section,
        loss_law_summary,
        threeway_crossover_table,
        threeway_table,
    )

    ans, cross, costs = (t.assign(task="add5", family="zoo") for t in known)
    an = type("A", (), {"threeway": ans, "threeway_crossover": cross, "threeway_costs": costs,
                        "rules": {"threeway": THREEWAY_RULE}})()
    table = threeway_table(an, "add5")
    assert len(table.rows) == len(ans) == 3
    assert [r[4] for r in table.rows] == list(ans["config"])
    assert len(threeway_crossover_table(an, "add5").rows) == 2
    words = threeway_words(ans, cross, costs, "add5")
    blocks = _tradeoff_section(an, "add5")
    assert any(getattr(b, "text", "") == " ".join(words) for b in blocks)
    (summary,) = loss_law_summary(an, "add5")
    assert words[0] in summary.text
    assert not threeway_table(an, "other-task").rows  # nothing of another task
