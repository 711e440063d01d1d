"""Figures of compute: the inference-FLOPs frontier, iso-accuracy surface, cost vs queries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from evalharness.plots.common import (
    DPI,
    STYLE,
    FigureSpec,
    TaskView,
    add_legend,
    base_level,
    family_name,
    figure,
    figure_title,
    finite_or,
    fmt2,
    format_params,
    log_x,
    model_colors,
    model_order,
    new_figure,
    params_of,
    sci_label,
    slug,
    split_model,
)


def _flops_rule_parts(rules: Iterable[str]) -> tuple[str, str]:
    """(formula, definitions) of the FLOPs rule(s) of `evalharness.flops` in `rules`."""
    from evalharness.flops import RULE_ATTENTION, RULE_FALLBACK

    rules = {str(r) for r in rules if isinstance(r, str)} or {RULE_FALLBACK}
    kaplan = "n × (2·N_non-emb·L + n_layers·d_attn·L(L+1))"
    dense = "n × 2·params·L"
    where = "L = prompt + generated tokens of a sample (mean over samples)"
    terms = "N_non-emb: non-embedding parameters; d_attn: heads × head_dim (Kaplan)"
    if rules == {RULE_ATTENTION}:
        return kaplan, f"{where}; {terms}"
    if RULE_ATTENTION in rules:
        return (f"{kaplan}, or {dense} without a model config",
                f"{where}; {terms}; params: all parameters")
    return dense, f"{where}; params: all parameters (no model config: attention term not counted)"


def flops_axis_label(rules: Iterable[str]) -> str:
    """The x label of a FLOPs axis, stating the rule the numbers use (`evalharness.flops`):
    the attention-aware Kaplan count where the model's config is known, 2·params·L where not."""
    return f"inference FLOPs per problem = {_flops_rule_parts(rules)[0]} (log scale)"


def flops_rule_note(rules: Iterable[str]) -> str:
    """What the symbols of `flops_axis_label` stand for."""
    return _flops_rule_parts(rules)[1]


def split_by_problem_set(compute: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(description, rows) per problem set of the compute table, largest set first: points
    are compared, and the frontier drawn, only within one set (analysis pairs them there)."""
    if "problem_set" not in compute or compute["problem_set"].isna().all():
        return [("", compute)]
    size = compute.groupby("problem_set")["problems"].max() if "problems" in compute else None
    names = list(dict.fromkeys(compute["problem_set"].dropna()))
    if size is not None:
        names.sort(key=lambda s: (-finite_or(size.get(s), 0), str(s)))
    return [(str(s), compute[compute["problem_set"] == s]) for s in names]


def _size_groups(params: Mapping[str, float]) -> dict[str, list[str]]:
    """Base model names grouped by size (parameter count): the seeds of one size are one
    legend entry, so a zoo of 11 sizes × 3 seeds needs 11 entries, not 33."""
    groups: dict[str, list[str]] = {}
    for m in model_order(params):
        b = split_model(m)[0]
        key = f"{params[m]:.6g}" if math.isfinite(params[m]) else b
        if b not in groups.setdefault(key, []):
            groups[key].append(b)
    return groups


def _size_label(names: list[str], p: float) -> str:
    name = names[0] if len(names) == 1 else family_name(names)
    out = f"{name} ({format_params(p)})" if math.isfinite(p) else name
    return out if len(names) == 1 else f"{out}, {len(names)} seeds"


def plot_flops_frontier(
    compute: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Accuracy vs inference compute per problem (log x; the axis label states the FLOPs rule
    of `evalharness.flops` the numbers use): every (model, budget, n) point coloured by size
    (marker shape: n), the Pareto frontier as a step line, its points circled and each run of
    frontier points of one model labelled "model T=…" — which size and which budget buy the
    most accuracy at each compute level. One panel per problem set (``problem_set``): points
    run on different problems are never compared, and a panel names its set. The legend has
    one entry per size (seeds of a size share its colour and entry), every size listed.

    `compute`: analysis ``compute`` rows of one task (model, budget, n, params, flops,
    accuracy, on_frontier, problem_set, problems, flops_rule)."""
    pts_all = compute[np.isfinite(compute["flops"].astype(float)) & (compute["flops"] > 0)]
    sets = [(d, s) for d, s in split_by_problem_set(pts_all) if not s.empty]
    rules = pts_all["flops_rule"] if "flops_rule" in pts_all else []
    with mpl.rc_context(STYLE):
        params = params_of(pts_all, params)
        colors = model_colors(params)
        groups = _size_groups(params)
        ns = sorted(pts_all["n"].unique()) if "n" in pts_all else [1]
        n_entries = len(groups) + 1 + (len(ns) if len(ns) > 1 else 0)
        ncols = 1 if n_entries <= 18 else 2
        height = max(5.0, 1.4 + 0.19 * math.ceil(n_entries / ncols))
        fig, axes = new_figure(6.2 * len(sets) + 2.6 * ncols, height, ncols=len(sets),
                                sharey=True)
        shapes = ["o", "s", "^", "D", "v", "P", "X", "h", "*", "<", ">", "p"]
        markers = {n: shapes[i % len(shapes)] for i, n in enumerate(ns)}
        fx_all = pts_all["flops"].to_numpy(float)
        # one colour per size: every seed takes the colour of its size's first checkpoint
        size_color = {b: colors[next(m for m in params if split_model(m)[0] == g[0])]
                      for g in groups.values() for b in g}
        handles = []
        for key, names in groups.items():
            p = finite_or(key, math.nan)
            handles.append(Line2D([], [], ls="none", marker="o", ms=6, color=size_color[names[0]],
                                  label=_size_label(names, p)))
        for ax, (desc, pts) in zip(axes, sets, strict=True):
            for m in model_order(params):
                for nval in ns:
                    g = pts[pts["model"] == m]
                    if "n" in g:
                        g = g[g["n"] == nval]
                    if g.empty:
                        continue
                    ax.scatter(g["flops"], g["maj_at_n"], color=size_color[split_model(m)[0]],
                               marker=markers[nval], s=32, alpha=0.9, edgecolors="white",
                               linewidths=0.5, zorder=2)
            log_x(ax, sci_label, float(fx_all.min()) / 1.4, float(fx_all.max()) * 1.4)
            ax.set_ylim(-0.02, 1.06)
            front = _frontier(pts)
            if not front.empty:
                fx, fy = front["flops"].to_numpy(float), front["maj_at_n"].to_numpy(float)
                ax.step(np.r_[fx, float(pts["flops"].max())], np.r_[fy, fy[-1]], where="post",
                        color="crimson", lw=1.6, alpha=0.8, zorder=1, label="Pareto frontier")
                ax.scatter(fx, fy, s=95, facecolors="none", edgecolors="crimson", lw=1.3,
                           zorder=3)
                _label_frontier(ax, front, multi_n=len(ns) > 1)
            if len(sets) > 1:
                ax.set_title(f"on {desc}", fontsize=9)
            ax.set_xlabel(flops_axis_label(rules), fontsize=8.5)
        handles.append(Line2D([], [], color="crimson", lw=1.6, label="Pareto frontier"))
        if len(ns) > 1:
            handles += [Line2D([], [], ls="none", marker=markers[nval], color="0.4",
                               label=f"n = {nval:g}") for nval in ns]
        axes[0].set_ylabel(
            "exact match (majority vote of n samples)" if len(ns) > 1 else "exact match"
        )
        only = sets[0][0] if len(sets) == 1 else ""
        extra = f" — on {only}" if only and not only.startswith("all ") else ""
        fig.suptitle(figure_title("Accuracy vs inference compute", family, task, extra))
        fig.supxlabel(flops_rule_note(rules), fontsize=7.5, color="0.3")
        fig.legend(handles=handles, loc="outside right center", frameon=False, ncols=ncols,
                   title="size (colour; seeds share it)" if any(len(g) > 1 for g in
                   groups.values()) else "model")
    return fig


def _frontier(pts: pd.DataFrame) -> pd.DataFrame:
    if "on_frontier" in pts:
        f = pts[pts["on_frontier"].astype(bool)]
    else:  # compute it: strictly better accuracy than every cheaper point
        s = pts.sort_values(["flops", "maj_at_n"], ascending=[True, False])
        best = s["maj_at_n"].cummax().shift(fill_value=-math.inf)
        f = s[s["maj_at_n"] > best]
    return f.sort_values("flops")


def _runs(front: pd.DataFrame) -> list[pd.DataFrame]:
    """Split the frontier (sorted by compute) into runs of consecutive points that one label
    can name: one model's single samples over budgets, or one (model, budget) over n."""
    key = front["model"].astype(str)
    if "n" in front:
        key = key + "|" + np.where(front["n"] > 1, "T" + front["budget"].astype(str), "n1")
    run = (key != key.shift()).cumsum()
    return [g for _, g in front.groupby(run, sort=True)]


def _label_frontier(ax, front: pd.DataFrame, multi_n: bool) -> None:
    """One label per run of frontier points, placed at the first free spot around its first
    point (no overlap with other labels or frontier points); dropped if there is none (the
    report's frontier table lists every point)."""
    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # run the layout so that pixel positions are (nearly) final
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    pts = ax.transData.transform(front[["flops", "maj_at_n"]].to_numpy(float))
    taken = [mpl.transforms.Bbox.from_bounds(x - 5, y - 5, 10, 10) for x, y in pts]
    spots = [((-7, 6), "right", "bottom"), ((7, -6), "left", "top"),
             ((-7, -6), "right", "top"), ((7, 6), "left", "bottom"),
             ((7, 16), "left", "bottom"), ((-7, 16), "right", "bottom")]
    for grp in _runs(front):
        r0, r1 = grp.iloc[0], grp.iloc[-1]
        text = str(r0["model"])
        b0, b1 = r0["budget"], r1["budget"]
        text += f" T={b0:g}" if b0 == b1 else f" T={b0:g}…{b1:g}"
        if multi_n:
            n0, n1 = r0["n"], r1["n"]
            text += f" n={n0:g}" if n0 == n1 else f" n={n0:g}…{n1:g}"
        for offset, ha, va in spots:
            ann = ax.annotate(
                text, (r0["flops"], r0["maj_at_n"]), xytext=offset, textcoords="offset points",
                ha=ha, va=va, fontsize=7.5, color="0.1", zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
            )
            ann.set_in_layout(False)  # a label must not make the layout shrink the axes
            bb = ann.get_window_extent(renderer)
            inside = (
                bb.x0 >= box.x0 - 30
                and bb.x1 <= box.x1 + 5
                and box.y0 <= bb.y0
                and bb.y1 <= box.y1 + 5
            )
            if inside and not any(bb.overlaps(t) for t in taken):
                taken.append(bb)
                break
            ann.remove()


def _logistic_surface(fit, log2_n: np.ndarray, log2_x: np.ndarray) -> np.ndarray:
    """Fitted accuracy of an analysis ``exchange`` row on a grid (centred coordinates)."""
    u, v = log2_n - float(fit["at_log2_params"]), log2_x - float(fit["at_log2_x"])
    d = finite_or(fit.get("d"), 0.0)
    logit = float(fit["a"]) + float(fit["b"]) * u + float(fit["c"]) * v + d * u * v
    return 1 / (1 + np.exp(-logit))


def fit_region(fit: Mapping, points: pd.DataFrame | None = None) -> np.ndarray | None:
    """The polygon (log2 T, log2 N vertices) over which a surface fit read data: per size the
    range of levels it used, joined size to size; the measured boundary cells are its corners,
    so no cell the fit left out (past a model's plateau, or never run) lies inside it at a
    measured size. From the fit's ``cells`` ("params@level ..."); for an older table without
    it, from `points` cut at each model's plateau as the fit does. None with < 2 sizes."""
    cells = fit.get("cells") if hasattr(fit, "get") else None
    if isinstance(cells, str) and cells.strip():
        pairs = [c.split("@") for c in cells.split()]
        used = pd.DataFrame({"params": [float(p) for p, _ in pairs],
                             "level": [float(lv) for _, lv in pairs]})
    elif points is not None and not points.empty:
        from evalharness.analysis.buy import plateau_cut

        curves = points.assign(level=points["budget"].astype(float), y=points["exact_match"])
        used = pd.concat([plateau_cut(g) for _, g in curves.groupby("model", sort=True)])
    else:
        return None
    used = used[(used["params"] > 0) & (used["level"] > 0)]
    per = used.groupby("params")["level"].agg(["min", "max"]).sort_index()
    if len(per) < 2:
        return None
    y = np.log2(per.index.to_numpy(float))
    lo, hi = np.log2(per["min"].to_numpy(float)), np.log2(per["max"].to_numpy(float))
    return np.column_stack([np.r_[lo, hi[::-1]], np.r_[y, y[::-1]]])


def plot_iso_accuracy(
    fit: Mapping,
    points: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    levels: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9),
) -> Figure:
    """Iso-accuracy contours of the fitted surface logit(acc) = a + b·log₂N + c·log₂T over
    (thinking budget, parameters), drawn only inside the region the fit read data from
    (`fit_region`, outlined), with the measured (model, budget) points coloured by their
    accuracy on the same scale; measured points the fit left out (past a model's plateau) are
    hollow. Along a contour, one doubling of T trades for c/b doublings of N; the title gives
    that rate with its CI, or why it is not identifiable.

    `fit`: one analysis ``exchange`` row (axis "budget", with ``cells``); `points`: rows with
    model, params, budget and accuracy (analysis ``budgets`` of the family's greedy sweeps)."""
    from matplotlib.path import Path as MplPath

    with mpl.rc_context(STYLE):
        fig, (ax,) = new_figure(8.4, 5.0)
        pts = points[(points["budget"] > 0) & np.isfinite(points["params"].astype(float))]
        x = np.log2(pts["budget"].to_numpy(float))
        y = np.log2(pts["params"].to_numpy(float))
        gx = np.linspace(x.min() - 0.3, x.max() + 0.3, 160)
        gy = np.linspace(y.min() - 0.3, y.max() + 0.3, 160)
        mx, my = np.meshgrid(gx, gy)
        norm = mpl.colors.Normalize(0, 1)
        cmap = mpl.colormaps["RdYlBu"]
        region = fit_region(fit, pts)
        inside = np.ones(len(pts), bool)
        if region is not None:
            path = MplPath(region)
            # a hair of tolerance: the boundary cells themselves are inside
            inside = path.contains_points(np.column_stack([x, y]), radius=1e-6) | \
                path.contains_points(np.column_stack([x, y]), radius=-1e-6)
            ax.fill(2 ** region[:, 0], 2 ** region[:, 1], facecolor="0.5", alpha=0.06,
                    edgecolor="0.45", ls=":", lw=1.0, zorder=0,
                    label="region the fit read (contours only here)")
        if np.isfinite(finite_or(fit.get("b"), math.nan)):
            z = _logistic_surface(fit, my, mx)
            if region is not None:
                grid = np.column_stack([mx.ravel(), my.ravel()])
                keep = path.contains_points(grid, radius=1e-6) | path.contains_points(
                    grid, radius=-1e-6)
                z = np.ma.masked_where(~keep.reshape(z.shape), z)
            cs = ax.contour(2**mx, 2**my, z, levels=list(levels), cmap=cmap, norm=norm,
                            linewidths=1.4)
            ax.clabel(cs, fmt=lambda v: f"{100 * v:.0f}%", fontsize=8)
        acc = pts["exact_match"].to_numpy(float)
        sc = ax.scatter(2 ** x[inside], 2 ** y[inside], c=acc[inside], cmap=cmap, norm=norm,
                        s=60, edgecolors="0.2", linewidths=0.6, zorder=3,
                        label="measured, used by the fit")
        if (~inside).any():
            ax.scatter(2 ** x[~inside], 2 ** y[~inside], facecolors="none",
                       edgecolors=cmap(norm(acc[~inside])), s=60, linewidths=1.4, zorder=3,
                       label="measured, left out (past its plateau)")
        fig.colorbar(sc, ax=ax, label="measured accuracy (dots) · fitted contours (lines)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: format_params(v)))
        ax.set_xlabel("thinking budget T (tokens, log scale)")
        ax.set_ylabel("parameters N (log scale)")
        if fit.get("status") == "ok":
            extra = (f"one doubling of T ≈ {fmt2(fit['rate'])} doublings of N "
                     f"(95% CI {fmt2(fit['rate_lo'])}–{fmt2(fit['rate_hi'])})")
        else:
            extra = str(fit.get("status", ""))
        ax.set_title(extra, fontsize=9)
        add_legend(ax, loc="lower right", fontsize=7.5)
        fig.suptitle(figure_title("Iso-accuracy: parameters vs thinking", family, task))
    return fig


def _size_params(costs: pd.DataFrame, given: Mapping[str, float] | None) -> dict[str, float]:
    """size -> params for the cost lines, whose ``model`` is a size ("zoo/arith-h32") while
    the report's mapping names checkpoints ("zoo/arith-h32-s0"): the size's own entry, else
    its seeds' (a name that extends it by a separator), else its training FLOPs (which grow
    with size within one recipe), so the colour follows size and not the name's spelling."""
    given = dict(given or {})
    out = {}
    for m in costs["model"].unique():
        m = str(m)
        p = finite_or(given.get(m), math.nan)
        if not math.isfinite(p):
            seeds = [v for k, v in given.items() if k.startswith(m) and k[len(m):][:1] in "-_/."
                     and math.isfinite(finite_or(v, math.nan))]
            p = min(seeds) if seeds else math.nan
        out[m] = p
    if not all(math.isfinite(v) for v in out.values()):  # one scale for all: training FLOPs
        tf = costs.groupby("model", sort=False)["train_flops"].max()
        out = {str(m): finite_or(v, math.nan) for m, v in tf.items()}
    return out


def cost_label(row: Mapping) -> str:
    """A cost line's label: the configuration as analysis names it (size, T, n and the
    decoding: "greedy", "t=0.7", "t=0.7 top-p=0.9"), so a sampled and a greedy configuration
    of one size never read alike; older tables without ``config``: model, T, n."""
    cfg = row.get("config")
    if isinstance(cfg, str) and cfg:
        return cfg
    return f"{row['model']} (T={float(row['budget']):g}, n={int(row['n'])})"


def plot_cost_vs_queries(
    costs: pd.DataFrame,
    crossover: pd.DataFrame,
    *,
    task: str | None = None,
    family: str | None = None,
    params: Mapping[str, float] | None = None,
) -> Figure:
    """Total compute (training FLOPs + Q × inference FLOPs per query) vs query volume Q, one
    line per model that reaches the target (at its cheapest configuration, labelled with its
    decoding), one panel per target and problem set (configurations are compared only on
    problems all of them saw: a row of panels per set, named); the crossover Q where the
    preferred model changes is marked with its bootstrap CI.

    `costs`: analysis ``buy_costs`` rows of one task; `crossover`: its ``crossover`` rows."""
    costs = costs[np.isfinite(costs["train_flops"].astype(float))]
    targets = sorted(costs["target"].unique())
    sets = split_by_problem_set(costs)
    with mpl.rc_context(STYLE):
        ncols = max(len(targets), 1)
        fig = Figure(figsize=(4.6 * ncols + 1.6, 4.8 * len(sets)), dpi=DPI, layout="constrained")
        grid = fig.subplots(len(sets), ncols, squeeze=False)
        size_p = _size_params(costs, params)
        colors = model_colors(size_p)
        costs = costs.assign(_p=costs["model"].astype(str).map(size_p)).sort_values(
            "_p", kind="stable")  # legend in size order, small to large
        # Q range: two decades either side of where inference spending equals training
        q_eq = (costs["train_flops"] / costs["inference_flops"]).astype(float)
        q_eq = q_eq[np.isfinite(q_eq) & (q_eq > 0)]
        lo_q, hi_q = (q_eq.min() / 100, q_eq.max() * 100) if len(q_eq) else (1.0, 1e12)
        qs = np.logspace(math.log10(lo_q), math.log10(hi_q), 200)
        for axes, (desc, block) in zip(grid, sets, strict=True):
            xs = crossover
            if desc and "problem_set" in crossover:
                xs = crossover[crossover["problem_set"] == desc]
            for ax, target in zip(axes, targets, strict=False):
                _cost_panel(ax, block[block["target"] == target], xs[xs["target"] == target]
                            if not xs.empty else xs, qs, colors)
                title = f"target accuracy {100 * target:.0f}%"
                ax.set_title(title + (f"\non {desc}" if desc and len(sets) > 1 else ""),
                             fontsize=9)
            axes[0].set_ylabel("total FLOPs = training + Q × inference")
        only = sets[0][0] if len(sets) == 1 else ""
        extra = f" — on {only}" if only and not only.startswith("all ") else ""
        fig.suptitle(figure_title("Total cost vs query volume", family, task, extra))
    return fig


def _cost_panel(ax, c: pd.DataFrame, crossover: pd.DataFrame, qs: np.ndarray, colors) -> None:
    for _, r in c.iterrows():
        total = float(r["train_flops"]) + qs * float(r["inference_flops"])
        ax.plot(qs, total, color=colors.get(r["model"], "0.4"), lw=1.5, label=cost_label(r))
    if not crossover.empty:
        cr = crossover[crossover["status"] == "ok"]
        none = crossover[crossover["status"] != "ok"]
    else:
        cr = none = crossover
    for _, r in none.iterrows():
        if isinstance(r.get("from_model"), str):
            ax.text(0.98, 0.04, f"no crossover:\n{r['from_model']} cheapest at every Q",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5)
    for _, r in cr.iterrows():
        q, lo, hi = (float(r[k]) for k in ("q_star", "q_lo", "q_hi"))
        ax.axvline(q, color="crimson", lw=1.2, ls="--")
        ax.axvspan(max(lo, qs[0]), min(hi, qs[-1]), color="crimson", alpha=0.12)
        ax.annotate(f"Q* ≈ {sci_label(q)}\n{r['from_model']} → {r['to_model']}", (q, 0.04),
                    xycoords=("data", "axes fraction"), fontsize=7.5, rotation=90,
                    ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("queries served Q (log scale)")
    add_legend(ax, fontsize=7, loc="upper left")


def frontier_sets_note(comp: pd.DataFrame) -> str:
    """Caption words naming the problem sets the frontier panels are drawn on."""
    sets = [d for d, _ in split_by_problem_set(comp) if d]
    if len(sets) <= 1:
        return f"All points on {sets[0]}." if sets else ""
    return (f"One panel per problem set ({'; '.join(sets)}): points are compared only on "
            "problems all of them saw.")


@figure("iso_accuracy", "cost_vs_queries", order=70)
def buy_figures(v: TaskView) -> list[FigureSpec]:
    """The iso-accuracy surface (per family with a thinking-budget fit over >= 3 sizes) and
    the cost-vs-queries crossover figure of one task."""
    a, task, fam, P = v.analysis, v.task, v.family, v.params
    out: list[FigureSpec] = []
    ex = getattr(a, "exchange", pd.DataFrame())
    if not ex.empty:
        ex = ex[(ex["task"] == task) & (ex["axis"] == "budget") & (ex["bucket"] == "all")]
    for _, fit in ex.iterrows():
        if not math.isfinite(finite_or(fit["b"], math.nan)):
            continue  # too few levels to draw a surface
        bud = base_level(a.budgets[a.budgets["task"] == task])
        em = a.emergence
        members = set(em.loc[(em["task"] == task) & (em["family"] == fit["family"]), "model"])
        pts = bud[bud["model"].isin(members)] if members else bud
        out.append(FigureSpec(
            slug("iso_accuracy", fit["family"], task), "iso_accuracy", task, str(fit["family"]),
            "Iso-accuracy contours of the fitted logistic surface over thinking budget and "
            "parameters, drawn only inside the region the fit read data from (dotted outline: "
            "per size, the budgets up to its plateau), with the measured points (colour = "
            "accuracy; hollow: left out of the fit). Along a contour one doubling of T trades "
            "for c/b doublings of N.",
            plot_iso_accuracy(fit, pts, task=task, family=str(fit["family"])),
        ))
    costs = getattr(a, "buy_costs", pd.DataFrame())
    cross = getattr(a, "crossover", pd.DataFrame())
    if not costs.empty:
        costs = costs[(costs["task"] == task) & np.isfinite(costs["train_flops"].astype(float))]
    if not costs.empty and costs["model"].nunique() >= 2:
        cross = cross[cross["task"] == task] if not cross.empty else cross
        out.append(FigureSpec(
            slug("cost_vs_queries", task), "cost_vs_queries", task, fam,
            "Total compute = training FLOPs + Q × inference FLOPs per query, per model at its "
            "cheapest configuration reaching each target; dashed: the crossover query volume "
            "where the preferred model changes, shaded: its 95% bootstrap CI over problems. "
            "Lines are labelled with their configuration: size, T, n and decoding (greedy or "
            "t=temperature, top-p); configurations are compared only within one problem set.",
            plot_cost_vs_queries(costs, cross, task=task, family=fam, params=P),
        ))
    return out


@figure("flops_frontier", order=60)
def frontier_figures(v: TaskView) -> list[FigureSpec]:
    """Accuracy vs inference FLOPs with the Pareto frontier, where >= 2 points have FLOPs."""
    a, task = v.analysis, v.task
    comp = a.compute[a.compute["task"] == task] if not a.compute.empty else a.compute
    if comp.empty or np.isfinite(comp["flops"].astype(float)).sum() < 2:
        return []
    rules = comp.get("flops_rule", [])
    return [FigureSpec(
        slug("flops_frontier", task), "flops_frontier", task, v.family,
        "Accuracy vs inference FLOPs per problem for every (model, budget, n); the red "
        "step line is the Pareto frontier. "
        + frontier_sets_note(base_level(comp))
        + " " + flops_axis_label(rules)
        .replace("inference FLOPs", "Inference FLOPs").removesuffix(" (log scale)")
        + "; " + flops_rule_note(rules) + ".",
        plot_flops_frontier(base_level(comp), task=task, family=v.family, params=v.params),
    )]
