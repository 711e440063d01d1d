"""Thinking efficiency: budget needs, overthinking, allocation and sequential vs parallel, on
records built from known per-problem needs and natural lengths."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evalharness.analysis import analyze
from evalharness.analysis.efficiency import (
    LAMBDAS,
    METRICS,
    crossfit,
    halves,
    oracle_choice,
)

BUDGETS = [0, 8, 16, 32, 64]
INF = math.inf

# problem -> (natural thinking length, None: did not end within 64; correctness per budget;
# difficulty). Correctness at budgets >= L is the natural answer's (the record repeats it).
KNOWN = {
    "p0": (20, [0, 1, 1, 1, 1], 1),   # needs 8, ends at 20: 12 tokens of overthinking
    "p1": (40, [0, 0, 0, 1, 1], 2),   # needs 32, ends at 40
    "p2": (10, [0, 1, 0, 0, 0], 1),   # right when cut at 8, wrong at its natural end
    "p3": (None, [0, 0, 0, 1, 1], 2),  # never ends by itself: censored
    "p4": (5, [0, 1, 1, 1, 1], 1),    # needs 8 budget but ends at 5: no overthinking
    "p5": (50, [0, 0, 0, 0, 0], 2),   # never solved
}


def records(known=KNOWN, budgets=BUDGETS, model="m", run="r", sample=0, temperature=0.0,
            spec="", seed=np.nan, logp=None) -> pd.DataFrame:
    rows = []
    for pid, (L, correct, diff) in known.items():
        for t, c in zip(budgets, correct, strict=True):
            ended = L is not None and L <= t
            used = L if ended else t
            rows.append({
                "run_id": run, "model": model, "task": "t", "problem_id": pid,
                "sample": sample, "seed": sample, "budget": t, "extensions": 0,
                "thinking_tokens": used, "natural_thinking_tokens": L if ended else np.nan,
                "cut": not ended, "prompt_tokens": 10, "generated_tokens": used + 5,
                "pred": "7" if c else "1", "exact_match": bool(c),
                "answer_logprob_mean": (logp or {}).get(pid, -1.0),
                "difficulty": diff, "params": 1e6, "family": "f", "engine": "hf",
                "answer_type": "integer", "temperature": temperature, "spec_label": spec,
                "model_seed": seed,
            })
    return pd.DataFrame(rows)


def naive_needs(L, correct, budgets=BUDGETS) -> dict:
    """The definitions, written out loop by loop."""
    first = next((t for t, c in zip(budgets, correct, strict=True) if c), None)
    stable = next((t for k, t in enumerate(budgets) if all(correct[k:])), None)
    need = None if stable is None else (min(stable, L) if L is not None else stable)
    ended = L is not None
    nat_ok = ended and bool(correct[-1])
    return {
        "natural_length": L if ended else None,
        "t_first": first, "t_stable": stable,
        "natural_correct": float(nat_ok) if ended else None,
        "censored": float(not ended),
        "overthinking_tokens": L - need if nat_ok else None,
        "token_efficiency": ((need / L if L else 1.0) if nat_ok else 0.0) if ended else None,
        "falls_with_budget": float(any(correct[j] and not correct[k]
                                       for j in range(len(correct))
                                       for k in range(j + 1, len(correct)))),
    }


def naive_mean(metric: str, pids) -> float:
    vals = [naive_needs(KNOWN[p][0], KNOWN[p][1])[metric] for p in pids]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else math.nan


@pytest.fixture(scope="module")
def known():
    return analyze(records(), n_boot=200)


def _metric(an, metric, bucket="all", model="m"):
    e = an.efficiency
    return e[(e["metric"] == metric) & (e["bucket"] == bucket) & (e["model"] == model)].iloc[0]


def test_every_efficiency_metric_is_recovered_from_known_needs(known):
    for metric in METRICS:
        if metric == "underthinking":
            continue
        row = _metric(known, metric)
        assert row["value"] == pytest.approx(naive_mean(metric, KNOWN)), metric
        assert row["lo"] <= row["value"] <= row["hi"], metric
    # the same numbers by hand, from the table of KNOWN
    assert _metric(known, "overthinking_tokens")["value"] == pytest.approx((12 + 8 + 0) / 3)
    assert _metric(known, "token_efficiency")["value"] == pytest.approx(
        (8 / 20 + 32 / 40 + 0 + 5 / 5 + 0) / 5)
    assert _metric(known, "falls_with_budget")["value"] == pytest.approx(1 / 6)
    assert _metric(known, "censored")["value"] == pytest.approx(1 / 6)


def test_per_difficulty_bucket_metrics_use_only_that_bucket(known):
    for level in (1, 2):
        pids = [p for p, v in KNOWN.items() if v[2] == level]
        row = _metric(known, "t_first", bucket=f"{level}")
        assert row["value"] == pytest.approx(naive_mean("t_first", pids))
        assert row["problems"] == len(pids)
        assert row["measured"] == sum(naive_needs(*KNOWN[p][:2])["t_first"] is not None
                                      for p in pids)


def test_per_problem_needs_table_holds_each_problems_needs(known):
    needs = known.needs.set_index("problem_id")
    for pid, (L, correct, _) in KNOWN.items():
        want = naive_needs(L, correct)
        for col, key in (("t_first", "t_first"), ("t_stable", "t_stable"),
                         ("natural_tokens", "natural_length")):
            got = needs.loc[pid, col]
            assert (math.isnan(got) if want[key] is None else got == want[key]), (pid, col)


def test_underthinking_without_extension_levels_says_why_not_zero(known):
    row = _metric(known, "underthinking")
    assert math.isnan(row["value"]) and row["status"].startswith("not identifiable")


def test_underthinking_counts_natural_misses_that_a_wait_extension_rescues():
    base = records()
    ext = records().assign(extensions=1)
    # after "Wait", p2 (wrong at its natural end 10) is right at budgets past 10; p5 stays wrong
    ext.loc[(ext["problem_id"] == "p2") & (ext["budget"] >= 16), "exact_match"] = True
    an = analyze(pd.concat([base, ext], ignore_index=True), n_boot=100)
    e = an.efficiency
    row = e[(e["metric"] == "underthinking") & (e["bucket"] == "all")
            & (e["extensions"] == 0)].iloc[0]
    ended = [p for p, v in KNOWN.items() if v[0] is not None]
    assert row["value"] == pytest.approx(1 / len(ended))


def test_uniform_and_oracle_allocations_match_hand_computed_curves(known):
    al = known.allocation
    uni = al[al["policy"] == "uniform"].set_index("setting")
    for k, t in enumerate(BUDGETS):
        acc = np.mean([v[1][k] for v in KNOWN.values()])
        tok = np.mean([t if v[0] is None else min(t, v[0]) for v in KNOWN.values()])
        assert uni.loc[f"T={t:g}", "exact_match"] == pytest.approx(acc)
        assert uni.loc[f"T={t:g}", "tokens"] == pytest.approx(tok)
    # oracle_stable: each problem its T*_stable, the smallest budget where never stable
    acc, tok = [], []
    for L, correct, _ in KNOWN.values():
        s = naive_needs(L, correct)["t_stable"]
        t = 0 if s is None else s
        acc.append(correct[BUDGETS.index(t)])
        tok.append(t if L is None else min(t, L))
    row = al[al["policy"] == "oracle_stable"].iloc[0]
    assert row["exact_match"] == pytest.approx(np.mean(acc))
    assert row["tokens"] == pytest.approx(np.mean(tok))
    first = al[al["policy"] == "oracle_first"].iloc[0]
    assert first["exact_match"] == pytest.approx(np.mean([max(v[1]) for v in KNOWN.values()]))


def naive_predicted(acc, tok, bucket, half):
    """The lam = 0 rule by loops: per bucket of the choosing half, the smallest budget with
    the best accuracy there, applied to the other half."""
    got_a, got_t = [], []
    for i in range(len(acc)):
        train = [j for j in range(len(acc)) if half[j] != half[i]]
        same = [j for j in train if bucket[j] == bucket[i]] or train
        means = [np.mean([acc[j][k] for j in same]) for k in range(len(acc[0]))]
        k = means.index(max(means))
        got_a.append(acc[i][k])
        got_t.append(tok[i][k])
    return np.mean(got_a), np.mean(got_t)


def test_predicted_allocation_matches_the_rule_applied_by_hand(known):
    pids = sorted(KNOWN)
    acc = [KNOWN[p][1] for p in pids]
    tok = [[t if KNOWN[p][0] is None else min(t, KNOWN[p][0]) for t in BUDGETS] for p in pids]
    half = halves(len(pids), 0)
    a, t = naive_predicted(acc, tok, [KNOWN[p][2] for p in pids], half)
    al = known.allocation
    row = al[(al["policy"] == "predicted") & (al["setting"] == "lam=0")
             & al["predictor"].str.startswith("task")].iloc[0]
    assert row["exact_match"] == pytest.approx(a) and row["tokens"] == pytest.approx(t)


def test_cross_fitting_never_lets_a_problem_choose_its_own_budget():
    rng = np.random.default_rng(3)
    n, k = 24, 5
    acc = (rng.random((n, k)) < np.linspace(0.2, 0.9, k)).astype(float)
    tok = np.tile(np.array(BUDGETS, float), (n, 1))
    half = halves(n, 0)
    for categorical, predictor in ((True, rng.integers(0, 4, n).astype(float)),
                                   (False, rng.normal(size=n))):
        for lam in LAMBDAS[:3]:
            _, _, given = crossfit(acc, tok, predictor, categorical, half, lam)
            moved_others = False
            for i in range(n):
                for _ in range(4):
                    acc2, tok2 = acc.copy(), tok.copy()
                    acc2[i] = rng.random(k) < 0.5  # rewrite the problem's own outcomes
                    tok2[i] *= rng.uniform(0.5, 2.0)
                    _, _, again = crossfit(acc2, tok2, predictor, categorical, half, lam)
                    assert again[i] == given[i], (i, categorical, lam)
                    moved_others |= bool((again != given).any())
            # the data do drive the choice: rewriting a problem moves the other half's budgets
            assert moved_others


def test_oracle_choice_on_hand_made_curves():
    acc = np.array([[0, 1, 1, 1], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], float)
    assert oracle_choice(acc, "stable").tolist() == [1, 3, 0, 0]
    assert oracle_choice(acc, "first").tolist() == [1, 1, 0, 0]


def mixed() -> pd.DataFrame:
    """Greedy and sampled runs of one model, two specs, two seeds, and problems swept on two
    grids (a subset also at T=128)."""
    greedy = records(model="m", run="g")
    extra = pd.DataFrame([{**r, "budget": 128, "thinking_tokens": r["thinking_tokens"]}
                          for r in greedy[(greedy["budget"] == 64)
                                          & greedy["problem_id"].isin(["p0", "p1", "p2"])]
                          .to_dict("records")])
    sampled = pd.concat([records(model="m", run="s", sample=j, temperature=0.7)
                         for j in range(3)], ignore_index=True)
    flip = (sampled["sample"] == 1) & (sampled["problem_id"] == "p5")
    sampled.loc[flip, "exact_match"] = True  # a sampled answer differs from the greedy one
    spec_b = records(model="m [few_shot=2]", run="b", spec="few_shot=2").assign(exact_match=False)
    seed1 = records(model="m-s1", run="s1", seed=1.0).assign(exact_match=True)
    return pd.concat([greedy, extra, sampled, spec_b, seed1], ignore_index=True)


def test_tables_on_a_mixed_frame_never_pool_configurations():
    frame = mixed()
    an = analyze(frame, n_boot=50)
    runs_of = {"m": {"g"}, "m (n=3, temp=0.7)": {"s"}, "m [few_shot=2]": {"b"}, "m-s1": {"s1"}}
    for name in ("efficiency", "allocation", "allocation_headline", "needs"):
        t = getattr(an, name)
        assert {"runs", "problems"} <= set(t.columns), name
        for _, r in t.iterrows():
            assert set(str(r["runs"]).split(";")) == runs_of[r["model"]], (name, r["model"])
    e = an.efficiency
    # the greedy configuration's rows do not move when other configurations sit beside it
    greedy_only = frame[frame["run_id"] == "g"]
    alone = analyze(greedy_only, n_boot=50).efficiency
    cols = ["budget_grid", "bucket", "metric", "value", "lo", "hi", "problems"]
    pd.testing.assert_frame_equal(
        e.loc[e["model"] == "m", cols].reset_index(drop=True),
        alone.loc[alone["model"] == "m", cols].reset_index(drop=True))
    # the subset swept to 128 is its own row, on its own problems
    assert set(e.loc[e["model"] == "m", "budget_grid"]) == {"0 8 16 32 64", "0 8 16 32 64 128"}
    short = e[(e["model"] == "m") & (e["budget_grid"] == "0 8 16 32 64") & (e["bucket"] == "all")]
    assert short["problem_set"].str.startswith("3 of 6").all()
    for _, r in short[short["status"] == "ok"].iterrows():
        assert r["value"] == pytest.approx(naive_mean(r["metric"], ["p3", "p4", "p5"]))
    # the sampled run is a configuration of its own, labelled by its decoding
    sampled = e[e["model"].str.contains("temp=0.7")]
    assert (sampled["decoding"] == "t=0.7").all()
    assert (e.loc[e["model"] == "m", "decoding"] == "greedy").all()
    row = sampled[(sampled["metric"] == "t_first") & (sampled["bucket"] == "all")].iloc[0]
    # p5 is solved at T=0 by one sample of three: its per-problem value averages its samples
    per = [naive_needs(*KNOWN[p][:2])["t_first"] for p in KNOWN]
    assert row["value"] == pytest.approx(np.mean([v for v in per if v is not None] + [0.0]))
    # two specs and two seeds: four more configurations, each its own rows
    assert {"m [few_shot=2]", "m-s1"} <= set(e["model"])
    assert (e.loc[(e["model"] == "m-s1") & (e["metric"] == "t_stable")
                  & (e["bucket"] == "all"), "value"] == 0).all()


def test_sequential_vs_parallel_at_matched_flops_per_bucket():
    greedy = records(model="m", run="g")
    sampled = pd.concat([records(model="m", run="s", sample=j, temperature=0.7)
                         for j in range(4)], ignore_index=True)
    sampled = sampled[sampled["budget"] == 8]
    an = analyze(pd.concat([greedy, sampled], ignore_index=True), n_boot=100)
    sv = an.seq_vs_par
    assert not sv.empty
    for _, r in sv.iterrows():
        assert r["par_budget"] == 8 and r["seq_budget"] > 8
        assert 0.5 < r["flops_ratio"] < 2
        pids = [p for p, v in KNOWN.items() if r["bucket"] == "all" or f"{v[2]}" == r["bucket"]]
        seq = np.mean([KNOWN[p][1][BUDGETS.index(r["seq_budget"])] for p in pids])
        par = np.mean([KNOWN[p][1][BUDGETS.index(8)] for p in pids])  # samples agree: maj = one
        assert r["diff"] == pytest.approx(seq - par)
        assert r["diff_lo"] <= r["diff"] <= r["diff_hi"]
        assert set(r["runs"].split(";")) == {"g", "s"}


def test_allocation_headline_says_not_identifiable_with_one_budget():
    one = records(known={p: (v[0], v[1][:1], v[2]) for p, v in KNOWN.items()}, budgets=[0])
    an = analyze(one, n_boot=20)
    assert an.allocation_headline["status"].str.startswith("not identifiable").all()


def test_report_section_and_headline_state_the_measured_numbers(known):
    from evalharness.report.efficiency import _efficiency_section, efficiency_headline
    from evalharness.report.html import fmt_num

    lines = efficiency_headline(known, "t")
    over = _metric(known, "overthinking_tokens")
    assert len(lines) == 2 and fmt_num(over["value"]) in lines[0]
    head = known.allocation_headline
    head = head[head["status"] == "ok"].iloc[0]
    assert ("does not reach" in lines[1]) == (head["verdict"] == "does not reach")
    blocks = _efficiency_section(known, "t")
    text = "\n".join(b.markdown() for b in blocks if len(b))
    for metric in METRICS:
        assert metric in text  # every metric has its one-line definition on the page
    assert "not identifiable" in text  # underthinking, without extension levels


def test_efficiency_figures_are_drawn_from_the_tables(known):
    from evalharness.plots import build_figures

    kinds = {s.kind for s in build_figures(known) if s.task == "t"}
    assert {"efficiency_needs", "efficiency_allocation"} <= kinds


def test_one_budget_grid_leaves_needs_not_identifiable():
    one = records(known={p: (v[0], v[1][-1:], v[2]) for p, v in KNOWN.items()}, budgets=[64])
    e = analyze(one, n_boot=20).efficiency
    e = e[e["bucket"] == "all"].set_index("metric")
    assert e.loc["t_stable", "status"] == "not identifiable: one budget: the need is not resolved"
    assert e.loc["natural_length", "status"] == "ok"  # still measured on one budget
