"""Plots: every figure function on analysis output of a small, realistic fake results folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evalharness.types import SampleRecord

# Three sizes of a tiny model family, params as the zoo reports them.
FAKE_MODELS = {"arith-h16": 21_000, "arith-h48": 120_000, "arith-h128": 700_000}
FAKE_BUDGETS = [0, 4, 8, 16, 32, 64, 128]
FAKE_TASK = "add_sweep"
INJECTED = "<script>alert('x')</script>"


def _per_token_hit(params: int, budget: int, needed: int) -> float:
    """Per-token chance of emitting the right answer token: grows smoothly with size and with
    the share of the needed thinking that the budget allows."""
    skill = 1 / (1 + math.exp(-2.0 * (math.log10(params) - 4.7)))  # 0.32 .. 0.91
    done = min(1.0, budget / needed)
    return 0.1 + 0.9 * skill * (0.3 + 0.7 * done)


def write_fake_results(
    root: Path,
    *,
    problems: int = 24,
    seed: int = 0,
    models: dict[str, int] | None = None,
    sampled_n: int = 6,
    budgets: list[int] | None = None,
) -> Path:
    """Write ``root/runs/<run_id>/{manifest.json,samples.jsonl}``: for each model a greedy budget
    sweep (n=1) and a sampled run (n=`sampled_n`, two budgets). Returns ``root``."""
    rng = np.random.default_rng(seed)
    models = FAKE_MODELS if models is None else models
    probs = []
    for i in range(problems):
        d = 1 + i % 6
        a, b = int(rng.integers(10 ** (d - 1), 10**d)), int(rng.integers(10 ** (d - 1), 10**d))
        probs.append((f"add-{a}+{b}", f"{a}+{b}=", str(a + b), 9 * d))
    runs = []
    for model, params in models.items():
        runs.append((model, params, f"{model}-greedy", budgets or FAKE_BUDGETS, 1, 0.0))
        if sampled_n > 1:
            runs.append((model, params, f"{model}-n{sampled_n}", [16, 128], sampled_n, 0.8))
    for model, params, run_id, run_budgets, n, temp in runs:
        run_dir = root / "runs" / run_id
        run_dir.mkdir(parents=True)
        sweep = {
            "budgets": run_budgets,
            "n": n,
            "temperature": temp,
            "top_p": 1.0,
            "seed": 0,
            "mode": "truncate",
            "max_extensions": 0,
            "max_answer_tokens": 16,
            "sweep": "one-pass",
        }
        manifest = {
            "run_id": run_id,
            "model": model,
            "model_path": f"/zoo/{model}",
            "params": params,
            "family": "arith",
            "task": FAKE_TASK,
            "answer_type": "integer",
            "n_problems": len(probs),
            "settings": {"model": model, "task": FAKE_TASK, "sweep": sweep, "engine": "hf"},
            "engine": "hf",
            "engine_version": "4.57.0",
            "git_commit": "0" * 40,
            "started": "2026-11-23T14:00:00Z",
            "finished": "2026-11-23T14:01:00Z",
            "status": "complete",
        }
        (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
        with open(run_dir / "samples.jsonl", "w") as f:
            for pid, prompt, ref, needed in probs:
                for s in range(n):
                    natural = needed + int(rng.integers(0, 3))
                    thinking_full = "1+2+0=03;" * (natural // 9 + 1)
                    for t in run_budgets:
                        used = min(t, natural)
                        h = _per_token_hit(params, t, needed)
                        hits = [bool(x) for x in rng.random(len(ref)) < h]
                        lps = [
                            float(np.log(h) + rng.normal(0, 0.1))
                            if hit
                            else float(np.log(1 - h) - 1.0 + rng.normal(0, 0.3))
                            for hit in hits
                        ]
                        answer = (
                            ref
                            if all(hits)
                            else "".join(
                                c if hit else str((int(c) + 1) % 10)
                                for c, hit in zip(ref, hits, strict=True)
                            )
                        )
                        if pid == probs[0][0] and s == 0 and t == run_budgets[-1]:
                            answer = INJECTED + " " + answer  # the report must escape it
                        conf = (-0.05 if all(hits) else -0.4) + float(rng.normal(0, 0.05))
                        rec = SampleRecord(
                            run_id=run_id,
                            model=model,
                            task=FAKE_TASK,
                            problem_id=pid,
                            sample=s,
                            seed=1000 * s + 7,
                            budget=t,
                            extensions=0,
                            thinking_tokens=used,
                            natural_thinking_tokens=natural,
                            cut=t < natural,
                            thinking=thinking_full[:used],
                            answer=answer,
                            answer_ids=[int(c) + 3 for c in answer if c.isdigit()],
                            answer_logprobs=[conf] * len(ref),
                            reference=ref,
                            ref_ids=[int(c) + 3 for c in ref],
                            ref_logprobs=lps,
                            ref_hits=hits,
                            prompt_tokens=len(prompt),
                            generated_tokens=used + 2 + len(ref),
                            finish_reason="stop",
                            time_s=0.01,
                        )
                        f.write(json.dumps(rec.to_json()) + "\n")
    return root


@pytest.fixture(scope="module")
def fake_results(tmp_path_factory) -> Path:
    return write_fake_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def analysis(fake_results):
    from evalharness.plots import load_analysis

    return load_analysis(fake_results)[1]


def _data_lines(ax, prefix: str):
    return [ln for ln in ax.get_lines() if ln.get_label().startswith(prefix)]


def _check_labelled(fig):
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes
    assert all(ax.get_xlabel() for ax in axes)
    assert axes[0].get_ylabel()
    assert fig.get_suptitle(), "every figure names its family and task in the title"
    return axes


# ----------------------------------------------------------------------------- make_plots


def test_make_plots_writes_every_applicable_figure_and_removes_only_its_stale_ones(
        fake_results, analysis):
    from evalharness.plots import make_plots

    out = fake_results / "plots"  # the default output folder is results/plots
    out.mkdir(exist_ok=True)
    stale = out / "emergence_gone-family_gone-task.png"
    mine = out / "my_own_figure.png"
    stale.write_bytes(b"old")
    mine.write_bytes(b"keep")
    paths = make_plots(fake_results, analysis=analysis)
    assert not stale.exists() and mine.read_bytes() == b"keep"
    assert {p.parent for p in paths} == {out}
    names = sorted(p.name for p in paths)
    stems = [
        "accuracy_vs_budget_add_sweep",
        "efficiency_allocation_add_sweep",
        "efficiency_needs_add_sweep",
        "emergence_arith_add_sweep",
        "emergence_seeds_arith_add_sweep",
        "flops_frontier_add_sweep",
        "iso_accuracy_arith_add_sweep",
        "pass_maj_at_k_add_sweep",
        "seq_vs_par_add_sweep",
        "thinking_tokens_add_sweep",
    ]
    assert names == sorted(f"{s}.{ext}" for s in stems for ext in ("png", "svg"))
    for p in paths:
        data = p.read_bytes()
        assert len(data) > 5000
        if p.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert b"<svg" in data[:2000]
    mine.unlink()


def test_make_plots_skips_figures_that_do_not_apply(tmp_path):
    from evalharness.plots import make_plots

    root = write_fake_results(
        tmp_path / "one", problems=8, models={"arith-h48": 120_000}, sampled_n=1
    )
    names = {p.stem for p in make_plots(root)}
    assert "accuracy_vs_budget_add_sweep" in names
    assert "thinking_tokens_add_sweep" in names
    assert not any(n.startswith("pass_maj_at_k") for n in names)  # only n = 1
    assert not any(n.startswith("emergence") for n in names)  # only one size


def test_single_budget_task_has_no_budget_figures(tmp_path):
    from evalharness.plots import make_plots

    root = write_fake_results(tmp_path / "one", problems=8, sampled_n=1, budgets=[128])
    names = {p.stem for p in make_plots(root)}
    assert names == {"emergence_arith_add_sweep", "emergence_seeds_arith_add_sweep",
                     "flops_frontier_add_sweep"}


def test_make_plots_on_empty_results_writes_nothing(tmp_path):
    from evalharness.plots import make_plots

    (tmp_path / "runs").mkdir()
    assert make_plots(tmp_path) == []


# ----------------------------------------------------------------------------- figures


def test_accuracy_vs_budget_lines_and_fit(analysis):
    from evalharness.plots import plot_accuracy_vs_budget

    bud, fits = analysis.budgets, analysis.fits
    fig = plot_accuracy_vs_budget(bud, fits, task=FAKE_TASK, family="arith")
    (ax,) = _check_labelled(fig)
    assert "arith" in fig.get_suptitle() and FAKE_TASK in fig.get_suptitle()
    assert "budget" in ax.get_xlabel() and "exact match" in ax.get_ylabel()
    # T = 0 has its own tick next to the log2-spaced positive budgets
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [f"{b:g}" for b in FAKE_BUDGETS]
    for model in FAKE_MODELS:
        (data,) = [ln for ln in _data_lines(ax, f"{model} (") if ", n=" not in ln.get_label()]
        g = bud[bud["model"] == model].sort_values("budget")
        np.testing.assert_allclose(data.get_ydata(), g["exact_match"])
    ok = fits[fits["status"] == "ok"]
    fit_lines = [ln for ln in ax.get_lines() if "pts/doubling" in ln.get_label()]
    assert len(fit_lines) == len(ok) >= 2
    # each dashed line is a + b*log2(T) over exactly the budgets the fit used
    for ln in fit_lines:
        slope = float(ln.get_label().split("pts/doubling")[0]) / 100
        (f,) = [r for _, r in ok.iterrows() if abs(100 * r["b"] - 100 * slope) < 0.051]
        used = [float(t) for t in f["budgets"].split()]
        x, y = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
        np.testing.assert_allclose([x[0], x[-1]], np.log2([min(used), max(used)]))
        np.testing.assert_allclose(y, f["a"] + f["b"] * x)


def test_thinking_usage_has_reference_and_one_line_per_model(analysis):
    from evalharness.plots import plot_thinking_usage

    fig = plot_thinking_usage(analysis.budgets, task=FAKE_TASK, family="arith")
    (ax,) = _check_labelled(fig)
    assert "tokens used" in ax.get_ylabel()
    ref = _data_lines(ax, "y = x")
    assert len(ref) == 1
    np.testing.assert_allclose(2 ** np.asarray(ref[0].get_xdata()), ref[0].get_ydata())
    for model in FAKE_MODELS:
        # the greedy sweep; a best-of-N run is labelled "model (size), n=6, temp=0.8"
        (ln,) = [x for x in _data_lines(ax, f"{model} (") if ", n=" not in x.get_label()]
        g = analysis.budgets[analysis.budgets["model"] == model].sort_values("budget")
        np.testing.assert_allclose(ln.get_ydata(), g["think_mean"])


def test_pass_maj_at_k_panels_and_coverage_fit(analysis):
    from evalharness.plots import plot_pass_maj_at_k

    cov = analysis.coverage
    curves = cov.groupby(["model", "budget"])["k"].max()
    multi = cov.set_index(["model", "budget"]).loc[curves[curves > 1].index].reset_index()
    cf = analysis.coverage_fits
    fig = plot_pass_maj_at_k(multi, cf, task=FAKE_TASK, family="arith")
    axes = _check_labelled(fig)
    assert [ax.get_title().split(" ")[0] for ax in axes] == ["pass@k", "maj@k:", "best-of-k:"]
    n_curves = len(curves[curves > 1])
    ok_fits = cf.merge(curves[curves > 1].reset_index()[["model", "budget"]])
    n_fits = int((ok_fits["status"] == "ok").sum())
    assert n_fits >= 1
    solid = [ln for ln in axes[0].get_lines() if ln.get_linestyle() != "--"]
    dashed = [ln for ln in axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert len(solid) == n_curves and len(dashed) == n_fits
    for ax in axes[1:]:
        assert len(ax.get_lines()) == n_curves
    assert axes[0].get_xscale() == "log"
    # legend: one entry per curve plus the fit explanation
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == n_curves + 1 and any("β=" in t for t in texts)


def test_emergence_panel_reports_sharpness(analysis):
    from evalharness.plots import plot_emergence

    em = analysis.emergence
    sh = analysis.sharpness
    fig = plot_emergence(em, sh, task=FAKE_TASK, family="arith")
    axes = _check_labelled(fig)
    assert len(axes) == 3
    assert all(ax.get_xscale() == "log" and "parameters" in ax.get_xlabel() for ax in axes)
    em_ax, tok_ax, lp_ax = axes
    assert "exact match" in em_ax.get_ylabel()
    assert "per-token" in tok_ax.get_ylabel() and "log p" in lp_ax.get_ylabel()
    share = dict(zip(sh["metric"], sh["sharpness"], strict=True))
    legend = " ".join(t.get_text() for t in em_ax.get_legend().get_texts())
    assert f"{100 * share['exact_match']:.0f}% of rise" in legend
    assert "predicted" in legend  # the (per-token accuracy)^L overlay
    (pred,) = [ln for ln in em_ax.get_lines() if ln.get_label().startswith("predicted")]
    np.testing.assert_allclose(pred.get_ydata(), em.sort_values("params")["pred_exact_match_ref"])
    tok_legend = tok_ax.get_legend().get_texts()[0].get_text()
    assert f"{100 * share['ref_token_acc']:.0f}% of rise" in tok_legend


def test_flops_frontier_draws_the_pareto_front(analysis):
    from evalharness.plots import plot_flops_frontier

    comp = analysis.compute
    fig = plot_flops_frontier(comp, task=FAKE_TASK, family="arith")
    (ax,) = _check_labelled(fig)
    assert ax.get_xscale() == "log" and "FLOPs" in ax.get_xlabel()
    (step,) = _data_lines(ax, "Pareto")
    front = comp[comp["on_frontier"]].sort_values("flops")
    np.testing.assert_allclose(step.get_xdata()[:-1], front["flops"])
    np.testing.assert_allclose(step.get_ydata()[:-1], front["maj_at_n"])
    labels = [t.get_text() for t in ax.texts]
    assert labels and all(any(m in t for m in FAKE_MODELS) and "T=" in t for t in labels)
    # every model appears in the legend with its size
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "arith-h128 (700k)" in legend and "arith-h16 (21k)" in legend


def test_colours_follow_model_size():
    from matplotlib.colors import to_rgb

    from evalharness.plots import model_colors

    colors = model_colors({"big": 7e5, "small": 2e4, "mid": 1.2e5})

    def luminance(c):
        r, g, b = to_rgb(c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert luminance(colors["small"]) > luminance(colors["mid"]) > luminance(colors["big"])
    # a model's best-of-N run (as analysis labels it) keeps the model's colour
    colors = model_colors({"m": 1e5, "m (n=8, temp=0.7)": 1e5, "big": 1e6})
    assert colors["m"] == colors["m (n=8, temp=0.7)"] != colors["big"]


@pytest.mark.parametrize(
    ("models", "family"),
    [
        (["arith-h16", "arith-h128"], "arith"),
        (["Qwen/Qwen3-0.6B", "Qwen/Qwen3-8B"], "Qwen/Qwen3"),
        (["gpt2"], "gpt2"),
    ],
)
def test_family_name(models, family):
    from evalharness.plots import family_name

    assert family_name(models) == family


# ----------------------------------------------------------------------------- figures read as a referee would


def _three_seed_emergence(analysis):
    """The fake emergence table with each size replicated as three seeds whose EM zigzags
    (seed 1 weak, seed 2 strong): what the zoo's 11 sizes x 3 seeds look like."""
    import pandas as pd

    rows = []
    for _, r in analysis.emergence.iterrows():
        for s, shift in enumerate((0.0, -0.2, 0.15)):
            rows.append({**r.to_dict(), "model": f"{r['model']}-s{s}", "model_seed": s,
                         "exact_match": float(np.clip(r["exact_match"] + shift, 0, 1))})
    return pd.DataFrame(rows)


def test_emergence_lines_join_per_size_seed_means_not_checkpoints(analysis):
    from evalharness.plots import plot_emergence

    em = _three_seed_emergence(analysis)
    fig = plot_emergence(em, analysis.sharpness, task=FAKE_TASK, family="arith")
    em_ax = fig.axes[0]
    (obs,) = [ln for ln in em_ax.get_lines() if ln.get_label().startswith("observed")]
    x = np.asarray(obs.get_xdata(), float)
    # one vertex per size, in size order: never a zigzag across the seeds of one size
    assert len(x) == len(FAKE_MODELS) and np.all(np.diff(x) > 0)
    means = em.groupby("params")["exact_match"].mean().sort_index()
    np.testing.assert_allclose(x, means.index)
    np.testing.assert_allclose(obs.get_ydata(), means.to_numpy())
    # every checkpoint is still a dot; the legend and title say how seeds are treated
    dots = em_ax.collections[0].get_offsets()
    assert len(dots) == len(em)
    legend = [t.get_text() for t in em_ax.get_legend().get_texts()]
    assert any("lines: seed mean per size" in t for t in legend)
    assert "3 seeds per size" in fig.get_suptitle()


def _legend_matches_drawn(fig):
    """Every legend entry names an artist that has finite data on the figure."""
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        drawn = {ln.get_label() for ln in ax.get_lines()
                 if np.isfinite(np.asarray(ln.get_ydata(), float)).any()}
        for t in leg.get_texts():
            assert t.get_text() in drawn, f"legend lists {t.get_text()!r}, not drawn"


def test_seed_emergence_with_one_seed_has_no_band_and_no_phantom_prediction(analysis):
    import pandas as pd

    from evalharness.plots import build_figures, plot_seed_emergence

    sc, pts = analysis.seed_curves, analysis.seed_points
    assert (sc["n_seeds"] == 1).all()
    # a concatenated schaeffer table: this family's test undetermined, its em_pred all NaN
    sch = analysis.schaeffer.assign(em_pred=np.nan) if not analysis.schaeffer.empty else \
        pd.DataFrame({"params": sc["params"].unique(), "em_pred": np.nan})
    fig = plot_seed_emergence(sc, pts, sch, task=FAKE_TASK, family="arith")
    _legend_matches_drawn(fig)
    legend = " ".join(t.get_text() for ax in fig.axes if ax.get_legend()
                      for t in ax.get_legend().get_texts())
    assert "p^L_eff" not in legend and "one seed per size" in legend
    assert not any(len(c.get_paths()) for ax in fig.axes for c in ax.collections), "a band"
    assert "no band" in fig.axes[0].get_title() and "over seeds" not in fig.axes[0].get_title()
    (spec,) = [s for s in build_figures(analysis) if s.kind == "emergence_seeds"]
    assert "no band" in spec.caption and "p^L_eff prediction" in spec.caption


def test_seed_emergence_with_seeds_draws_band_and_prediction(analysis):
    import pandas as pd

    from evalharness.plots import plot_seed_emergence

    sc = analysis.seed_curves.assign(n_seeds=3)
    sch = pd.DataFrame({"params": sorted(sc["params"].unique()), "em_pred": [0.1, 0.4, 0.8]})
    fig = plot_seed_emergence(sc, analysis.seed_points, sch, task=FAKE_TASK, family="arith")
    _legend_matches_drawn(fig)
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "p^L_eff" in legend and "seed mean" in legend
    assert any(len(c.get_paths()) for c in fig.axes[0].collections)
    assert "over seeds and problems" in fig.axes[0].get_title()


def _zoo_compute(analysis):
    """The fake compute table grown to a zoo: 11 sizes x 3 seeds (33 models), on two problem
    sets (the whole task, and a 12-problem subset a sampled run saw), with the Kaplan rule."""
    import pandas as pd

    from evalharness.analysis import pareto_frontier
    from evalharness.flops import RULE_ATTENTION

    base = analysis.compute[analysis.compute["n"] == 1].drop_duplicates(["model", "budget"])
    rows = []
    for i in range(11):
        for s in range(3):
            src = base[base["model"] == list(FAKE_MODELS)[i % 3]]
            rows.append(src.assign(model=f"arith-h{8 * (i + 1)}-s{s}", params=20_000 * 1.5**i,
                                   flops=src["flops"] * 1.5**i * (1 + 0.01 * s)))
    full = pd.concat(rows).assign(problem_set="all 24 problems", problems=24)
    sub = full[full["model"].str.endswith("-s0")].assign(
        problem_set="12 of 24 problems (difficulty 1–2)", problems=12,
        maj_at_n=lambda d: np.clip(d["maj_at_n"] + 0.1, 0, 1))
    comp = pd.concat([full, sub], ignore_index=True).assign(flops_rule=RULE_ATTENTION)
    for _, idx in comp.groupby("problem_set").groups.items():
        comp.loc[idx, "on_frontier"] = pareto_frontier(comp.loc[idx, "flops"],
                                                       comp.loc[idx, "maj_at_n"])
    return comp


def test_flops_frontier_lists_every_size_states_its_rule_and_splits_problem_sets(analysis):
    from evalharness.plots import plot_flops_frontier

    comp = _zoo_compute(analysis)
    fig = plot_flops_frontier(comp, task=FAKE_TASK, family="arith")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    # one panel per problem set, each named, each holding only its own points
    assert len(axes) == 2
    titles = [ax.get_title() for ax in axes]
    assert titles == ["on all 24 problems", "on 12 of 24 problems (difficulty 1–2)"]
    for ax, (_, rows) in zip(axes, [("a", comp[comp["problems"] == 24]),
                                    ("b", comp[comp["problems"] == 12])], strict=True):
        n_pts = sum(len(c.get_offsets()) for c in ax.collections if c.get_facecolors().size)
        assert n_pts == len(rows)
    # the axis states the rule the numbers use, not 2·params·tokens·n
    label = axes[0].get_xlabel()
    assert "N_non-emb" in label and "n_layers·d_attn·L(L+1)" in label
    assert "2·params·tokens·n" not in label
    # the legend: one entry per size (seeds share it), none dropped, all inside the figure
    (leg,) = fig.legends
    texts = [t.get_text() for t in leg.get_texts()]
    sizes = [t for t in texts if "seeds" in t]
    assert len(sizes) == 11 and all("3 seeds" in t for t in sizes)
    assert "Pareto frontier" in texts
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box, bb = fig.bbox, leg.get_window_extent(canvas.get_renderer())
    assert box.y0 - 1 <= bb.y0 and bb.y1 <= box.y1 + 1 and bb.x1 <= box.x1 + 1


def test_flops_frontier_names_a_subset_problem_set_in_the_title(analysis):
    from evalharness.plots import plot_flops_frontier

    comp = _zoo_compute(analysis)
    fig = plot_flops_frontier(comp[comp["problems"] == 12], task=FAKE_TASK, family="arith")
    assert "12 of 24 problems" in fig.get_suptitle()
    fig = plot_flops_frontier(comp[comp["problems"] == 24], task=FAKE_TASK, family="arith")
    assert "of 24" not in fig.get_suptitle()


def test_iso_accuracy_contours_stay_inside_the_cells_the_fit_read(analysis):
    from matplotlib.contour import ContourSet
    from matplotlib.path import Path as MplPath

    from evalharness.plots.compute import fit_region, plot_iso_accuracy

    ex = analysis.exchange
    fit = ex[(ex["axis"] == "budget") & (ex["bucket"] == "all")].iloc[0].to_dict()
    assert isinstance(fit["cells"], str) and "@" in fit["cells"]  # the table says what it read
    bud = analysis.budgets[analysis.budgets["model"].isin(FAKE_MODELS)]
    # the smallest model plateaued early: the fit read it only up to T=16
    small, big = min(FAKE_MODELS.values()), max(FAKE_MODELS.values())
    cells = [f"{p}@{t}" for m, p in FAKE_MODELS.items() for t in FAKE_BUDGETS[1:]
             if p != small or t <= 16]
    fit = {**fit, "b": 1.0, "c": 0.8, "d": 0.0, "cells": " ".join(cells)}
    fig = plot_iso_accuracy(fit, bud, task=FAKE_TASK, family="arith")
    ax = fig.axes[0]
    region = fit_region(fit)
    path = MplPath(region)
    verts = np.vstack([p.vertices for c in ax.collections if isinstance(c, ContourSet)
                       for p in c.get_paths() if len(p.vertices)])
    assert len(verts) > 10, "some contour is drawn"
    tol = 0.05  # about one grid cell in log2 units
    logv = np.log2(verts)
    assert path.contains_points(logv, radius=tol).all() or \
        path.contains_points(logv, radius=-tol).all()
    # nothing at the cell the fit left out: the small model at T=128
    far = np.hypot(logv[:, 0] - np.log2(128), logv[:, 1] - np.log2(small))
    assert far.min() > 1.0
    # that measured point is drawn hollow and the legend says so
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("left out" in t for t in legend) and any("region the fit" in t for t in legend)
    assert np.log2(big) == pytest.approx(region[:, 1].max())


def test_budget_control_labels_each_share_with_its_counts():
    import pandas as pd

    from evalharness.plots import plot_budget_control

    rows = []
    for t, forced, cut in ((16, 2, 2), (64, 40, 0), (128, 0, 0)):
        rows.append({"model": "arith-h16", "params": 21_000, "budget": t, "n": 40,
                     "forced": forced, "forced_answer_cut": cut, "reopened": 0,
                     "forced_no_answer": 0, "forced_rate": forced / 40,
                     "forced_answer_cut_rate": cut / forced if forced else np.nan,
                     "reopened_rate": 0 / forced if forced else np.nan,
                     "forced_no_answer_rate": 0 / forced if forced else np.nan})
    fig = plot_budget_control(pd.DataFrame(rows), task=FAKE_TASK, family="arith")
    forced_ax, cut_ax, reopen_ax, _ = fig.axes[:4]
    # 100% of 2 forced ends says so; so does the 0% of 2 (too few to mean 0)
    assert "2/2" in [t.get_text() for t in cut_ax.texts]
    assert "0/2" in [t.get_text() for t in reopen_ax.texts]
    # the forced share is no failure: over 40 records it needs no label
    assert not forced_ax.texts
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "k/d" in legend


def test_cost_vs_queries_labels_name_the_decoding_and_keep_problem_sets_apart():
    import pandas as pd

    from evalharness.plots import plot_cost_vs_queries

    common = {"target": 0.5, "train_flops": 1e12}
    costs = pd.DataFrame([
        {**common, "model": "h16", "config": "h16 T=128 n=8 t=0.7 top-p=0.9", "budget": 128,
         "n": 8, "inference_flops": 4e7, "problem_set": "all 24 problems", "problems": 24},
        {**common, "model": "h48", "config": "h48 T=64 n=1 greedy", "budget": 64, "n": 1,
         "inference_flops": 1e7, "train_flops": 5e12, "problem_set": "all 24 problems",
         "problems": 24},
        {**common, "model": "h48", "config": "h48 T=16 n=1 greedy", "budget": 16, "n": 1,
         "inference_flops": 3e6, "train_flops": 5e12,
         "problem_set": "12 of 24 problems (difficulty 1–2)", "problems": 12},
    ])
    cross = pd.DataFrame([{"target": 0.5, "status": "no crossover", "from_model": "h16",
                           "problem_set": "all 24 problems"}])
    fig = plot_cost_vs_queries(costs, cross, task=FAKE_TASK, family="arith")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2  # one panel per problem set
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "h16 T=128 n=8 t=0.7 top-p=0.9" in labels and "h48 T=64 n=1 greedy" in labels
    assert "12 of 24" in axes[1].get_title()
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["h48 T=16 n=1 greedy"]


def test_a_figure_registered_through_the_registry_alone_is_drawn_saved_and_cleaned_up(
        fake_results, analysis, tmp_path):
    """Adding a figure is one registry entry: no edit of build_figures, make_plots or a kind
    list. The toy figure is drawn per task in its order, saved, and its stale file removed."""
    import matplotlib.pyplot as plt

    from evalharness.plots import build_figures, make_plots
    from evalharness.plots.common import FIGURES, FigureSpec, figure, figure_kinds, slug

    def toy(view):
        fig, ax = plt.subplots()
        ax.plot(view.budgets["budget"], view.budgets["exact_match"])
        return [FigureSpec(slug("toy_accuracy", view.task), "toy_accuracy", view.task,
                           view.family, "a toy", fig)]

    before = build_figures(analysis)
    figure("toy_accuracy", order=15)(toy)
    try:
        assert "toy_accuracy" in figure_kinds()
        specs = build_figures(analysis)
        kinds = [s.kind for s in specs]
        tasks = sorted({s.task for s in before})
        assert kinds.count("toy_accuracy") == len(tasks)
        # drawn right after accuracy_vs_budget (order 10), before thinking_tokens (order 20)
        assert kinds.index("toy_accuracy") == kinds.index("accuracy_vs_budget") + 1
        out = tmp_path / "plots"
        paths = make_plots(fake_results, out, analysis=analysis)
        assert (out / f"toy_accuracy_{tasks[0]}.png") in paths
    finally:
        FIGURES[:] = [e for e in FIGURES if e[2] is not toy]
    for s in specs:
        plt.close(s.figure)
    # unregistered again: the figure list is what it was
    assert "toy_accuracy" not in figure_kinds()
    assert [s.kind for s in build_figures(analysis)] == [s.kind for s in before]


# ----------------------------------------------------------------------- the column registry


def test_a_score_column_registered_only_in_the_registry_reaches_scores_table_figure_report(
        tmp_path):
    import pyarrow as pa

    from evalharness.analysis.emergence import emergence_metrics, span_metrics
    from evalharness.plots import load_analysis, plot_emergence
    from evalharness.report import emergence_views
    from evalharness.scoring import scores_version
    from evalharness.scoring.columns import Emergence, column, emergence_columns, unregister

    results = write_fake_results(tmp_path / "results", problems=8)
    before = scores_version()

    # the share of reference tokens missed, squared: differs from every built-in column
    @column("toy_miss", "toy: missed reference tokens, squared", emergence=Emergence(
        per_size="pooled:ref_len", sharpness=True, span=9, panel="toy_panel", line="toy line",
        report="toy header", report_fmt="pct"))
    def _toy(ctx):
        return (1.0 - ctx.ragged("ref_hits", pa.bool_()).mean()) ** 2

    try:
        assert scores_version() != before  # cached scores without the column are stale
        assert "toy_miss" in emergence_metrics() and "toy_miss" in span_metrics()
        scores, an = load_analysis(results)
        assert scores["toy_miss"].notna().all()
        assert (scores["toy_miss"] == (1 - scores["ref_token_acc"]) ** 2).all()

        # the emergence table pools it over reference tokens, per checkpoint
        em = an.emergence[an.emergence["family"] == "arith"]
        row = em.sort_values("params").iloc[-1]
        rec = scores[(scores["model"] == row["model"]) & (scores["budget"] == row["budget"])
                     & (scores["temperature"] == 0)]
        pooled = (rec["toy_miss"] * rec["ref_len"]).sum() / rec["ref_len"].sum()
        assert row["toy_miss"] == pytest.approx(pooled)
        assert pooled != pytest.approx(rec["toy_miss"].mean())  # pooled, not a plain mean
        assert "toy_miss" in set(an.sharpness["metric"])

        fig = plot_emergence(em, an.sharpness, task=FAKE_TASK, family="arith")
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert len(axes) == 4 and "four metrics" in fig.get_suptitle()
        toy_ax = axes[3]
        assert toy_ax.get_title().startswith("Toy: missed reference tokens")
        assert any(t.get_text().startswith("toy line") for t in toy_ax.get_legend().get_texts())

        (table, *_) = emergence_views(an, FAKE_TASK)
        assert table.columns[-1] == "toy header"
        assert table.rows[-1][-1].endswith("%")
    finally:
        unregister("toy_miss")
    assert "toy_miss" not in emergence_columns() and scores_version() == before
