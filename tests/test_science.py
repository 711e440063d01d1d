"""The referee's statistics on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from evalharness import stats
from evalharness.analysis import emergence_tests, logt_tests, select_budgets, sharpness
from evalharness.stats import bootstrap_means

# ----------------------------------------------------------------------------- helpers


def _records(log2_n, logit_err, *, seeds=3, problems=300, length=20, l_eff=8.0,
             seed_sd=0.05, rng_seed=0) -> pd.DataFrame:
    """Per-record rows of a family: per-token error e(N) = expit(logit_err(log2 N) + seed
    noise); informative-token accuracy = Binomial(length, 1 - e) / length; exact match =
    Bernoulli((1 - e)^l_eff) (correlated token errors: fewer effective tokens than length)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for x in log2_n:
        for s in range(seeds):
            e = expit(logit_err(x) + rng.normal(0, seed_sd))
            p = 1 - e
            hits = rng.binomial(length, p, size=problems)
            em = rng.random(problems) < p**l_eff
            rows.append(pd.DataFrame({
                "model": f"m{x:g}-s{s}", "size": f"m{x:g}", "model_seed": s, "params": 2.0**x,
                "problem_id": [f"p{i}" for i in range(problems)], "exact_match": em,
                "gold_info_acc": hits / length, "gold_info_len": float(length),
            }))
    return pd.concat(rows, ignore_index=True)


def _schaeffer(records, n_boot=300):
    fc = emergence_tests.family_curves(records, "gold_info_acc", "gold_info_len", n_boot=n_boot)
    return emergence_tests.schaeffer_test(fc.design, fc.curves["exact_match"], fc.curves["token_acc"],
                                  fc.tokens_per_size, n_problems=fc.n_problems)


# ----------------------------------------------------------------------------- seed curves


def test_seed_bootstrap_cis_cover_the_true_curve_at_the_nominal_rate():
    """Known curve mu(size); each seed shifts it, each problem shifts it (shared by sizes);
    outcomes are Bernoulli. The 95% CIs must cover mu in 90-100% of 200 x 5 intervals."""
    mu = np.array([0.25, 0.4, 0.5, 0.6, 0.75])
    k, n, reps = 3, 200, 200
    design = emergence_tests.design_from([f"s{i}" for i in range(mu.size)], np.arange(mu.size) + 10,
                                 np.repeat(np.arange(mu.size), k))
    rng = np.random.default_rng(1)
    hits = 0
    for r in range(reps):
        v = rng.uniform(-0.2, 0.2, n)  # problem effect, fresh problems every repetition
        u = rng.uniform(-0.06, 0.06, mu.size * k)  # seed effect
        p = np.repeat(mu, k)[:, None] + u[:, None] + v[None, :]
        y = (rng.random(p.shape) < p).astype(float)
        wp, ws = stats.size_seed_weights(design, n, 300, seed=r)
        c = emergence_tests.size_curve(design, y, np.ones_like(y), wp, ws)
        hits += int(((c.ci_lo <= mu) & (mu <= c.ci_hi)).sum())
    coverage = hits / (reps * mu.size)
    assert 0.90 <= coverage <= 1.0, coverage


def test_seed_curve_reports_mean_and_spread_of_the_seeds():
    design = emergence_tests.design_from(["a", "b"], [10, 11], [0, 0, 0, 1])
    y = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    wp, ws = stats.size_seed_weights(design, 2, 50)
    c = emergence_tests.size_curve(design, y, np.ones_like(y), wp, ws)
    np.testing.assert_allclose(c.mean, [0.5, 1.0])
    np.testing.assert_allclose([c.seed_min[0], c.seed_max[0]], [0.0, 1.0])
    assert c.sd[0] == pytest.approx(0.5) and np.isnan(c.sd[1])  # one seed: no spread


# ----------------------------------------------------------------------------- sharpness


def test_monotone_sharpness_never_exceeds_one_even_on_the_old_229_percent_curve():
    x, y = np.array([0.0, 1, 2, 3]), np.array([0.0, 0.0, 0.55, 0.24])
    # the old rule: steepest piecewise-linear doubling / (last - first) = 0.55 / 0.24
    assert (np.interp(2, x, y) - np.interp(1, x, y)) / (y[-1] - y[0]) == pytest.approx(2.29, 0.01)
    assert 0 <= sharpness(x, y) <= 1  # the analysis' sharpness now works on the isotonic fit
    res = emergence_tests.monotone_sharpness(x, y)
    assert res.status == "ok" and 0 <= res.value <= 1
    rng = np.random.default_rng(0)
    for _ in range(100):
        xs = np.sort(rng.uniform(10, 20, rng.integers(3, 12)))
        res = emergence_tests.monotone_sharpness(xs, rng.random(xs.size))
        assert res.status != "ok" or 0 <= res.value <= 1, res


def test_monotone_sharpness_tells_a_step_from_a_line():
    x = np.arange(10.0, 15.0)
    step = emergence_tests.monotone_sharpness(x, [0, 0, 0, 1, 1])
    line = emergence_tests.monotone_sharpness(x, [0, 0.25, 0.5, 0.75, 1.0])
    assert step.value > 0.95 and step.fit == "sigmoid"
    assert line.value == pytest.approx(0.25, abs=0.03)


@pytest.mark.parametrize(("x", "y", "reason"), [
    ([10, 11], [0.0, 1.0], "2 sizes"),
    ([10, 11, 12], [0.3, 0.3, 0.3], "zero variance"),
    ([10, 10.3, 10.6], [0.0, 0.5, 1.0], "one doubling"),
])
def test_monotone_sharpness_says_no_fit_with_the_reason(x, y, reason):
    res = emergence_tests.monotone_sharpness(x, y)
    assert res.status.startswith("no fit:") and reason in res.status and np.isnan(res.value)


# ----------------------------------------------------------------------------- Schaeffer


LOG2_N = np.arange(12.0, 19.0)


def test_smooth_per_token_error_with_em_p_to_the_l_is_metric_induced():
    res = _schaeffer(_records(LOG2_N, lambda x: 1.0 - 0.7 * (x - 12)))
    assert res.verdict == "metric-induced", res.reason
    assert res.l_eff_lo <= 8.0 <= res.l_eff_hi  # the effective length is recovered
    t = res.table
    tol = 0.5 / 300  # half a problem: finer than the data resolve
    assert ((t["em_minus_pred_lo"] <= tol) & (t["em_minus_pred_hi"] >= -tol)).all()


def test_a_step_in_per_token_error_is_not_metric_induced():
    res = _schaeffer(_records(LOG2_N, lambda x: -0.6 if x < 15 else -4.0))
    assert res.verdict == "real transition", res.reason
    assert "departs from its smooth trend" in res.reason


def test_schaeffer_is_undetermined_with_too_few_sizes_or_flat_em():
    few = _schaeffer(_records(LOG2_N[:3], lambda x: 1.0 - 0.7 * (x - 12)))
    assert few.verdict == "undetermined" and "only 3 sizes" in few.reason
    flat = _schaeffer(_records(LOG2_N, lambda x: 4.0 + 0 * x))  # EM ~ 0 everywhere
    assert flat.verdict == "undetermined" and "hardly changes" in flat.reason


def test_one_checkpoint_per_size_gives_no_verdict_even_on_a_step():
    """Without seeds the seed spread is unmeasured: a jump could be one unlucky seed."""
    res = _schaeffer(_records(LOG2_N, lambda x: -0.6 if x < 15 else -4.0, seeds=1))
    assert res.verdict == "undetermined" and "one checkpoint per size" in res.reason


def test_smooth_trend_with_huge_seed_spread_is_too_imprecise_to_call_metric_induced():
    """The zoo's case: EM of one size ranges over most of [0, 1] across seeds, so p^L_eff
    cannot be rejected anywhere, and cannot be confirmed either."""
    res = _schaeffer(_records(LOG2_N, lambda x: 1.0 - 0.7 * (x - 12), seed_sd=1.5, rng_seed=3))
    assert res.verdict != "metric-induced", res.reason
    t = res.table
    assert ((t["exact_match_lo"] >= 0) & (t["exact_match_hi"] <= 1)).all()  # share CIs stay inside [0, 1]


def test_verdict_sentence_carries_the_verdict_and_its_numbers():
    res = _schaeffer(_records(LOG2_N, lambda x: 1.0 - 0.7 * (x - 12)))
    fc_em = res.table["exact_match"].to_numpy()
    sh = emergence_tests.monotone_sharpness(LOG2_N, fc_em)
    s = emergence_tests.verdict_sentence("add5", "zoo", res, sh)
    assert s.startswith("add5 (zoo): exact match's sharpness is")
    assert "metric-induced" in s and "L_eff = " in s and "[" in s


# ----------------------------------------------------------------------------- log T


BUDGETS = np.array([1, 2, 4, 8, 16, 32, 64, 128], float)


def _bernoulli(p_by_budget, problems=400, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((problems, BUDGETS.size)) < p_by_budget[None, :]).astype(float)


def test_window_reselecting_cis_are_wider_than_fixed_window_cis_with_a_saturating_tail():
    x = np.log2(BUDGETS)
    p = np.minimum(0.9, 0.08 + 0.2 * x)  # climbs, then a plateau the window must stop at
    values = _bernoulli(p, problems=150)
    reps = bootstrap_means(values, 400, seed=0)
    ci = logt_tests.reselecting_ci(BUDGETS, values.mean(axis=0), reps, select_budgets)
    assert ci.b_hi - ci.b_lo > ci.fixed_hi - ci.fixed_lo
    assert ci.valid_share > 0.9


def test_lack_of_fit_rejects_a_logistic_curve_and_keeps_a_straight_one():
    x = np.log2(BUDGETS)
    for p, rejected in ((0.05 + 0.85 * expit((x - 3.5) / 0.5), True),
                        (0.1 + 0.11 * x, False)):
        values = _bernoulli(p, problems=1500, seed=3)
        point, reps = values.mean(axis=0), bootstrap_means(values, 400, seed=1)
        window = (BUDGETS > 0) & (point > 0.02) & (point < 0.98)
        lof = logt_tests.lack_of_fit(BUDGETS, point, reps, window)
        assert lof.status == "ok" and lof.df == int(window.sum()) - 2
        assert (lof.p_value < 0.01) == rejected, lof


def test_aic_prefers_the_logistic_on_a_sigmoid_and_the_line_on_a_line():
    x = np.log2(BUDGETS)
    n = np.full(BUDGETS.size, 400.0)
    sig = logt_tests.compare_log_models(BUDGETS, n * (0.05 + 0.9 * expit((x - 3.5) / 0.4)), n)
    assert sig.loc[sig["preferred_aic"], "form"].item().startswith(("4-parameter", "logistic"))
    lin = logt_tests.compare_log_models(BUDGETS, n * (0.1 + 0.11 * x), n)
    assert lin.loc[lin["preferred_bic"], "form"].item() == "linear in log2 T"


def test_difficulty_mix_is_named_when_each_bucket_is_a_step():
    # problem of difficulty d needs 2^d thinking tokens and is solved exactly when they fit
    rng = np.random.default_rng(0)
    d = rng.integers(1, 8, 300)
    natural = 2.0**d
    values = (natural[:, None] <= BUDGETS[None, :]).astype(float)
    buckets, source = logt_tests.difficulty_buckets(d, natural)
    assert source == "difficulty"
    fits = _bucket_fits(values, buckets)
    gap = np.abs(values.mean(axis=0) - logt_tests.step_model(BUDGETS, values[:, -1], natural)).max()
    mix = logt_tests.difficulty_mix((0.15, 0.13, 0.17), fits, gap)
    assert mix.verdict == "difficulty mix" and "driven by the difficulty mix" in mix.sentence
    # the same pooled curve, but every problem improves gradually with log T
    grad = _bernoulli(np.clip(0.12 * np.log2(BUDGETS), 0, 1), problems=300)
    fits = _bucket_fits(grad, logt_tests.difficulty_buckets(d, natural)[0])
    no_len = logt_tests.difficulty_mix((0.12, 0.1, 0.14), fits, float("nan"))
    assert no_len.verdict != "difficulty mix"


def _bucket_fits(values, buckets) -> pd.DataFrame:
    rows = []
    for b in np.unique(buckets):
        acc = values[buckets == b].mean(axis=0)
        sh = emergence_tests.monotone_sharpness(np.log2(BUDGETS), acc)
        rows.append({"bucket": b, "b": np.polyfit(np.log2(BUDGETS), acc, 1)[0],
                     "step_share": sh.value})
    return pd.DataFrame(rows)


def test_difficulty_buckets_fall_back_to_natural_length_quartiles():
    labels, source = logt_tests.difficulty_buckets([np.nan] * 8, [3, 5, 9, 12, 20, 30, 40, np.inf])
    assert source == "natural thinking length quartile"
    assert len(set(labels)) == 4 and labels[0].startswith("Q1")


# ----------------------------------------------------------------------------- degenerate fits


def test_flat_pass_at_k_is_no_fit_not_beta_zero():
    from evalharness.analysis import fit_coverage

    solved = np.repeat([[1.0], [0.0]], [4, 6], axis=0) * np.ones((1, 4))  # pass@k = 0.4 for all k
    fit = fit_coverage(np.array([1, 2, 4, 8]), solved, n_boot=50)
    assert fit.status == "no fit: pass@k flat in k (pass@k == pass@1, beta = 0)"
    assert np.isnan(fit.beta) and np.isnan(fit.beta_lo)


def test_log_budget_fit_on_a_flat_window_is_no_fit():
    from evalharness.analysis import fit_log_budget

    flat = pd.DataFrame({"problem_id": np.repeat(np.arange(4), 3), "budget": [16, 32, 64] * 4,
                         "exact_match": np.repeat([1.0, 0.0, 1.0, 0.0], 3)})
    fit = fit_log_budget(flat, n_boot=50)
    # the plateau rule cuts a flat curve to its first budget: a reason, never b = 0
    assert fit.status == "no fit: only 1 unsaturated budgets (need 3)" and np.isnan(fit.b)


# ----------------------------------------------------------------------------- integration


def synthetic_scores(sizes=5, seeds=3, problems=120, seed=0) -> pd.DataFrame:
    """Score rows of a seeded family: per-token error smooth in log N (so exact match = p^L is
    a metric-induced jump) and a budget sweep where a problem of d digits is solved only once
    its 9*d natural thinking tokens fit in T."""
    rng = np.random.default_rng(seed)
    d = rng.integers(1, 6, problems)
    natural = 9.0 * d
    budgets = [0, 8, 16, 32, 64]
    frames = []
    for i in range(sizes):
        log2_n = 14.0 + i
        for s in range(seeds):
            p = 1 - expit(1.2 - 1.1 * i + rng.normal(0, 0.05))
            hits = rng.binomial(20, p, problems)
            solved = rng.random(problems) < p**8
            for t in budgets:
                fits = natural <= t
                frames.append(pd.DataFrame({
                    "run_id": f"h{i}-s{s}", "model": f"zoo/h{i}-s{s}", "size": f"zoo/h{i}",
                    "model_seed": float(s),
                    "family": "zoo", "params": 2.0**log2_n, "task": "add_sweep", "budget": t,
                    "extensions": 0, "problem_id": [f"p{j}" for j in range(problems)],
                    "sample": 0, "exact_match": solved & fits, "temperature": 0.0,
                    "difficulty": d.astype(float), "gold_info_acc": hits / 20,
                    "gold_info_len": 20.0, "natural_thinking_tokens": np.where(fits, natural,
                                                                               np.nan),
                    "thinking_tokens": np.minimum(natural, t), "cut": ~fits,
                    "prompt_tokens": 8, "generated_tokens": np.minimum(natural, t) + 4,
                    "pred": np.where(solved & fits, "1", "0"), "answer_type": "integer",
                }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from evalharness.analysis import analyze
    from evalharness.report import make_report

    scores = synthetic_scores()
    an = analyze(scores, n_boot=200)
    root = tmp_path_factory.mktemp("results")
    an.write(root / "analysis")
    _, md = make_report(root, scores=scores, analysis=an)
    return an, md.read_text(), root


def test_analyze_writes_the_seed_schaeffer_and_log_t_tables(seeded):
    an, _, root = seeded
    for name in ("seed_curves", "seed_points", "schaeffer", "verdicts", "logt_buckets",
                 "logt_bucket_fits", "logt_tests", "logt_models", "logt_residuals"):
        assert not getattr(an, name).empty, name
        assert (root / "analysis" / f"{name}.csv").exists()
    em = an.seed_curves[an.seed_curves["metric"] == "exact_match"]
    assert len(em) == 5 and (em["n_seeds"] == 3).all()
    assert (em["ci_lo"] <= em["mean"]).all() and (em["mean"] <= em["ci_hi"]).all()
    assert len(an.seed_points[an.seed_points["metric"] == "exact_match"]) == 15
    assert an.verdicts["token_metric"].tolist() == ["gold_info_acc"]
    assert (an.sharpness["sharpness"].dropna() <= 1).all()


def test_report_states_the_verdict_sentence_and_the_new_tables(seeded):
    an, md, root = seeded
    page = (root / "report.html").read_text()
    sentence = an.verdicts["sentence"].item()
    assert sentence.startswith("add_sweep (zoo): exact match's sharpness is")
    assert "metric-induced" in sentence and sentence in md
    for caption in ("Exact match and per-token accuracy over seeds", "Schaeffer test",
                    "Monotone-fit sharpness", "Accuracy by difficulty",
                    "Is accuracy linear in log₂T?", "Linear vs logistic in log₂T"):
        assert f"<caption>{caption}" in page, caption
    assert "driven by the difficulty mix" in md


def test_summary_prints_the_verdict_sentence_per_task(seeded):
    from typer.testing import CliRunner

    from evalharness.cli import app

    an, _, root = seeded
    res = CliRunner().invoke(app, ["summary", "--results", str(root)])
    assert res.exit_code == 0, res.output
    assert f"verdict: {an.verdicts['sentence'].item()}\n" in res.output


def test_emergence_span_shares_stay_within_one_on_a_dip():
    from evalharness.analysis import emergence_span

    span = emergence_span([0, 1, 2, 3], [0.0, 0.1, 0.9, 0.85], [0.5, 0.0, 0.9, 0.6])
    assert 0 <= span.em_share <= 1 and 0 <= span.metric_share <= 1


def test_seed_figure_draws_each_seed_thin_and_the_mean_thick_on_both_scales(seeded):
    from evalharness.plots import plot_seed_emergence

    an, _, _ = seeded
    fig = plot_seed_emergence(an.seed_curves, an.seed_points, an.schaeffer, task="add_sweep",
                              family="zoo")
    lin, log = fig.axes[:2]
    assert log.get_yscale() == "log" and lin.get_xscale() == "log"
    for ax in (lin, log):
        widths = sorted(ln.get_linewidth() for ln in ax.get_lines())
        assert widths.count(0.7) == 6  # 3 seeds x (exact match, per-token accuracy)
        assert widths.count(2.2) == 2  # the two seed means
        labels = " ".join(ln.get_label() for ln in ax.get_lines())
        assert "predicted EM" in labels and "gold_info_acc" in labels


def test_report_prints_no_fit_with_its_reason_for_flat_pass_at_k():
    from types import SimpleNamespace

    from evalharness.report import sampling_table

    cov = pd.DataFrame({"model": "m", "task": "t", "extensions": 0, "budget": 16,
                        "k": [1, 2, 4], "pass_at_k": 0.4, "maj_at_k": 0.4, "bok_at_k": 0.4})
    why = "no fit: pass@k flat in k (pass@k == pass@1, beta = 0)"
    fits = pd.DataFrame({"model": ["m"], "task": "t", "extensions": 0, "budget": 16,
                         "status": why, "c": np.nan, "beta": np.nan, "rule": ""})
    an = SimpleNamespace(coverage=cov, coverage_fits=fits, emergence=pd.DataFrame(),
                         budgets=pd.DataFrame(), compute=pd.DataFrame())
    (row,) = sampling_table(an, "t").rows
    assert row[8] == why and row[9] == "–"


# ----------------------------------------------------------------------------- sharpness CI and spans on seed means


def _emergence_of(records: pd.DataFrame) -> pd.DataFrame:
    """The analysis emergence table (one row per checkpoint) of `_records` rows."""
    g = records.assign(exact_match=records["exact_match"].astype(float)).groupby("model", sort=False)
    out = g.agg(size=("size", "first"), params=("params", "first"), exact_match=("exact_match", "mean"),
                gold_info_acc=("gold_info_acc", "mean")).reset_index()
    return out.assign(family="f", task="t", log2_params=np.log2(out["params"]))


def test_sharpness_table_has_a_ci_over_seeds_and_problems():
    from evalharness.analysis import sharpness_table

    smooth = lambda x: 1.0 - 0.9 * (x - 12)  # noqa: E731
    rec = _records(LOG2_N, smooth, problems=200).assign(family="f", task="t")
    sh = sharpness_table(_emergence_of(rec), rec, n_boot=200)
    em = sh[sh["metric"] == "exact_match"].iloc[0]
    assert em["status"] == "ok" and em["sharpness_ci_boot"] >= 150
    assert em["sharpness_lo"] <= em["sharpness"] <= em["sharpness_hi"]
    assert 0 <= em["sharpness_lo"] < em["sharpness_hi"] <= 1
    assert em["sharpness_ci_resamples"] == "problems and seeds"
    # fewer problems and one seed per size: a wider interval that says what it resamples
    few = _records(LOG2_N, smooth, problems=25, seeds=1, rng_seed=1).assign(family="f", task="t")
    r = sharpness_table(_emergence_of(few), few, n_boot=200)
    r = r[r["metric"] == "exact_match"].iloc[0]
    assert r["sharpness_ci_resamples"] == "problems only (one seed per size)"
    assert r["sharpness_hi"] - r["sharpness_lo"] > em["sharpness_hi"] - em["sharpness_lo"]
    # without records (an old caller) the table still builds, with no CI
    bare = sharpness_table(_emergence_of(rec))
    assert bare["sharpness_lo"].isna().all() and bare["sharpness"].notna().any()


def test_sharpness_replicates_agree_with_the_point_fit():
    x = LOG2_N
    y = expit((x - x.mean()) / 0.8)
    point = emergence_tests.monotone_sharpness(x, y)
    reps = np.vstack([y, y])  # two replicates of the curve itself
    for fit, value in (("sigmoid", point.sigmoid), ("isotonic", point.isotonic)):
        got = emergence_tests.sharpness_replicates(x, reps, fit)
        np.testing.assert_allclose(got, value, atol=0.02)


def test_emergence_span_is_not_opened_by_one_weak_checkpoint():
    from evalharness.analysis import span_table

    # one seed per size; the size just before the jump is a weak checkpoint (0.1 after 0.3):
    # the narrowest (below 20%, above 80%) pair would be 2^15 -> 2^16, one doubling
    em = pd.DataFrame({"model": [f"m{i}" for i in range(5)], "size": [f"m{i}" for i in range(5)],
                       "log2_params": [13.0, 14, 15, 16, 17], "exact_match": [0.05, 0.3, 0.1, 0.85, 0.9],
                       "ref_token_acc": [0.5, 0.6, 0.65, 0.8, 0.85]}).assign(family="f", task="t")
    sp = span_table(em.assign(params=2.0 ** em["log2_params"]))
    row = sp[sp["metric"] == "ref_token_acc"].iloc[0]
    assert (row["lo_params"], row["hi_params"]) == (2.0**13, 2.0**16)
    assert row["doublings"] == 3 and not row["monotone"] and row["seeds"] == "1"
    # three seeds per size: the span reads the per-size means, and says how many seeds
    rows = []
    for _, r in em.iterrows():
        for s, d in enumerate((-0.05, 0.0, 0.05)):
            rows.append({**r.to_dict(), "model": f"{r['model']}-s{s}",
                         "exact_match": float(np.clip(r["exact_match"] + d, 0, 1))})
    seeded = pd.DataFrame(rows)
    seeded.loc[seeded["model"] == "m3-s0", "exact_match"] = 0.0  # one weak checkpoint at 2^16
    sp = span_table(seeded.assign(params=2.0 ** seeded["log2_params"]))
    row = sp[sp["metric"] == "ref_token_acc"].iloc[0]
    # mean at 2^16 = (0 + 0.85 + 0.9) / 3 = 0.58: the climb ends at 2^17, not 2^16
    assert (row["lo_params"], row["hi_params"]) == (2.0**13, 2.0**17)
    assert row["seeds"] == "3" and row["basis"] == "per-size means over seeds"


def test_the_report_shows_the_sharpness_ci_and_what_it_resamples():
    from types import SimpleNamespace

    from evalharness.analysis import sharpness_table
    from evalharness.report import emergence_views

    smooth = lambda x: 1.0 - 0.9 * (x - 12)  # noqa: E731
    rec = _records(LOG2_N, smooth, problems=200).assign(family="f", task="t")
    emergence = _emergence_of(rec)
    sh = sharpness_table(emergence, rec, n_boot=100)
    for col in ("budget", "n_samples", "exact_match", "pred_exact_match_ref", "ref_token_acc", "ref_logprob_sum",
                "ref_logprob_mean", "edit_distance"):
        if col not in emergence:
            emergence[col] = 128 if col in ("budget", "n_samples") else np.nan
    an = SimpleNamespace(emergence=emergence, sharpness=sh, rules={"sharpness": "rule"})
    (table,) = [t for t in emergence_views(an, "t") if "sharpness" in t.caption]
    em = sh[sh["metric"] == "exact_match"].iloc[0]
    row = next(r for r in table.rows if r[0] == "exact match")
    assert table.columns[2] == "95% CI"
    assert row[2] == f"[{100 * em['sharpness_lo']:.0f}%, {100 * em['sharpness_hi']:.0f}%]"
    assert "CI resamples problems and seeds." in table.note
