"""The loss scaling law over parameters N and training tokens D (frames in, frames out).

Held-out loss of a checkpoint is its mean teacher-forced log-loss per token on the gold traces
(thinking + answer) of a fixed problem set: L = sum_p nll_p / sum_p tokens_p over the problems
every checkpoint of the fit saw. It is fitted with Chinchilla's parametric form (Hoffmann et
al. 2022, approach 3)

    L(N, D) = E + A / N^alpha + B / D^beta

as log L = LSE(e, a - alpha ln N, b - beta ln D) (E = e^e, A = e^a, B = e^b) under a Huber loss
on the log residuals, from a grid of initialisations (`fit_loss_law`). Hoffmann et al. used
delta = 1e-3 for losses known to ~0.1%; checkpoint losses here scatter by 5-20% between seeds,
and a delta far below the noise turns the fit into a median regression that converges slowly
and loses efficiency, so delta = 0.1 (still robust to one diverged checkpoint). Minimising L at a fixed
training compute C = 6 N D gives the compute-optimal allocation

    N*(C) = G (C/6)^a_opt,  D*(C) = G^-1 (C/6)^b_opt,  G = (alpha A / (beta B))^(1/(alpha+beta)),
    a_opt = beta / (alpha + beta),  b_opt = alpha / (alpha + beta),

and D*/N* tokens per parameter, which depends on C unless alpha = beta, so it is read at a
stated C (the largest training compute in the data).

CIs: percentile bootstrap, problems resampled once per replicate for every checkpoint, and
training seeds resampled within each size (a seed's checkpoints along training move together);
every replicate is refitted (a batched Levenberg-Marquardt from the point estimate, so the
200-repetition coverage test runs in seconds). Seeds are few (3 per size in the zoo): a
bootstrap of n items underestimates the variance of their mean by (n-1)/n, so each size draws
n-1 of its n seeds, which makes it unbiased (`stats.seed_draw_counts`); and a variance from few
seeds calls for a t quantile, so the interval is Hesterberg's expanded percentile interval,
with levels Phi(-t_{0.975, df}) and its mirror, df = trajectories - sizes (`expanded_levels`).
Resampling problems and seeds together counts the problem x checkpoint noise twice (it is
part of the between-seed spread too): conservative where that noise rivals the seeds', as
it does not on the zoo, where seeds differ by 5-20% in loss.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import stats as sps

from evalharness.stats import resample_counts, seed_draw_counts

HUBER_DELTA = 0.1  # on log L; Hoffmann et al. used 1e-3 (see the module docstring)
MIN_LEVELS = 3  # of N and of D: a power law with an offset has 3 parameters per axis
MIN_PROBLEMS = 10
ALPHA_BOUNDS = (0.01, 3.0)  # for alpha and beta: at a bound, the exponent is not identified
CHINCHILLA = {"a": 0.5, "b": 0.5, "tokens_per_param": 20.0}
CHINCHILLA_NOTE = ("Chinchilla (Hoffmann et al. 2022), language models: a ~ b ~ 0.5, ~20 "
                   "tokens per parameter; a reference, not an expectation for this task")
LOSS_LAW_RULE = (
    "held-out loss per checkpoint = sum of -log p over the gold-trace tokens (thinking + "
    "answer) / their number, on the problems every checkpoint of the fit saw; fit: log L = "
    "LSE(e, a - alpha ln N, b - beta ln D) with Huber loss (delta 0.1) on log L from a grid of "
    "initialisations; a_opt = beta/(alpha+beta), b_opt = alpha/(alpha+beta), tokens/param = "
    "D*/N* at the largest training compute C of the data; CIs: expanded percentile bootstrap "
    "(levels Phi(-t_0.975,df), df = seeds - sizes) over problems and seeds within a size "
    "(n-1 of n seeds drawn); no fit when N or D has < 3 "
    "levels; not identifiable when alpha or beta sits at its bound or the data allow no fall "
    "of loss along N or D (lower CI of the fitted drop across the data's range < 0.001 in "
    "log loss), and then no estimate is reported; lack of fit: F test of the cell means "
    "(N, D) against pure error between seeds"
)

_STEP = re.compile(r"@step\d+")


# ---------------------------------------------------------------------------------------------
# The batched fit
# ---------------------------------------------------------------------------------------------
# theta columns: e, a', alpha, b', beta on centred logs u = ln N - mean, v = ln D - mean (the
# intercepts a' = a - alpha*mean ln N, b' = b - beta*mean ln D are far better conditioned).


def _model(th: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log L (R x n) and the softmax shares of the three terms (R x n x 3)."""
    t = np.stack([np.broadcast_to(th[:, :1], (th.shape[0], u.size)),
                  th[:, 1:2] - th[:, 2:3] * u, th[:, 3:4] - th[:, 4:5] * v], axis=-1)
    m = t.max(-1, keepdims=True)
    ex = np.exp(t - m)
    tot = ex.sum(-1, keepdims=True)
    return (m + np.log(tot))[..., 0], ex / tot


def _huber(r: np.ndarray, w: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return (w * np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))).sum(-1)


def _bounds(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([np.nanmin(y) - 12.0, -60.0, ALPHA_BOUNDS[0], -60.0, ALPHA_BOUNDS[0]])
    hi = np.array([np.nanmax(y) + 1.0, 60.0, ALPHA_BOUNDS[1], 60.0, ALPHA_BOUNDS[1]])
    return lo, hi


def _lm(u, v, y, w, th, delta, lo, hi, iters: int = 300):
    """Levenberg-Marquardt on the Huber objective (IRLS weights), one fit per row of `y`;
    rows that have converged drop out of the loop."""
    th = np.clip(th.astype(float), lo, hi)
    lam = np.full(th.shape[0], 1e-3)
    f, p = _model(th, u, v)
    r = y - f
    obj = _huber(r, w, delta)
    eye = np.eye(5)
    act = np.arange(th.shape[0])
    for _ in range(iters):
        if act.size == 0:
            break
        ra, pa, wa = r[act], p[act], w[act]
        a = np.abs(ra)
        ww = wa * np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-300))
        jac = np.stack([pa[..., 0], pa[..., 1], -u * pa[..., 1], pa[..., 2], -v * pa[..., 2]], -1)
        jw = jac * ww[..., None]
        jt = jw.transpose(0, 2, 1)
        h = jt @ jac
        g = (jt @ ra[..., None])[..., 0]
        d = np.diagonal(h, axis1=1, axis2=2)
        hd = h + (lam[act, None, None] * d[:, :, None] + 1e-12) * eye
        step = np.linalg.solve(hd, g[..., None])[..., 0]
        new = np.clip(th[act] + step, lo, hi)
        f2, p2 = _model(new, u, v)
        r2 = y[act] - f2
        obj2 = _huber(r2, wa, delta)
        ok = obj2 < obj[act] - 1e-15
        moved = np.abs(new - th[act]).max(-1)
        gain = obj[act] - obj2
        idx = act[ok]
        th[idx], r[idx], p[idx], obj[idx] = new[ok], r2[ok], p2[ok], obj2[ok]
        lam[act] = np.clip(np.where(ok, lam[act] / 3, lam[act] * 4), 1e-9, 1e9)
        # converged: an accepted step that gains < 1e-7 of the objective or moves < 1e-7, or
        # no step accepted even with heavy damping
        done = ((ok & ((gain <= 1e-7 * np.maximum(obj[act], 1e-12)) | (moved < 1e-7)))
                | (~ok & (lam[act] >= 1e6)))
        act = act[~done]
    return th, obj


def _grid_inits(u, v, y, w, k: int = 3) -> np.ndarray:
    """(R, k, 5): for each (alpha, beta) of a grid, E, A', B' by weighted least squares on L
    (relative errors; clipped positive), the `k` best by the log-space objective."""
    grid = np.array([(al, be) for al in (0.1, 0.3, 0.6, 1.0, 1.6)
                     for be in (0.1, 0.3, 0.6, 1.0, 1.6)])
    L = np.exp(y)  # R x n
    x1 = np.exp(-grid[:, :1] * u)  # G x n
    x2 = np.exp(-grid[:, 1:] * v)
    X = np.stack([np.ones_like(x1), x1, x2], -1)  # G x n x 3
    rel = w / np.maximum(L, 1e-300) ** 2  # R x n
    xtx = np.einsum("rn,gni,gnj->rgij", rel, X, X) + 1e-12 * np.eye(3)
    xty = np.einsum("rn,gni,rn->rgi", rel, X, L)
    coef = np.linalg.solve(xtx, xty[..., None])[..., 0]  # R x G x 3
    floor = 1e-6 * np.exp(np.nanmean(y, axis=1))[:, None, None]
    lc = np.log(np.maximum(coef, floor))
    th = np.concatenate([lc[..., :1], lc[..., 1:2], np.broadcast_to(grid[None, :, :1], lc[..., :1].shape),
                         lc[..., 2:3], np.broadcast_to(grid[None, :, 1:], lc[..., :1].shape)], -1)
    R, G = th.shape[:2]
    f, _ = _model(th.reshape(R * G, 5), u, v)
    obj = _huber(np.repeat(y, G, 0) - f, np.repeat(w, G, 0), HUBER_DELTA).reshape(R, G)
    best = np.argsort(obj, axis=1)[:, :k]
    return np.take_along_axis(th, best[..., None], 1)


def fit_batch(u, v, y, w=None, delta: float = HUBER_DELTA, start: np.ndarray | None = None):
    """Fit every row of `y` (R x n, log losses at centred logs u, v) with point weights `w`;
    from `start` (R x 5) when given, else from the best grid initialisations. Returns (theta
    R x 5, objective R)."""
    y = np.atleast_2d(np.asarray(y, float))
    w = np.ones_like(y) if w is None else np.atleast_2d(np.asarray(w, float))
    lo, hi = _bounds(y)
    if start is not None:
        return _lm(u, v, y, w, start, delta, lo, hi)
    inits = _grid_inits(u, v, y, w)
    R, k = inits.shape[:2]
    th, obj = _lm(u, v, np.repeat(y, k, 0), np.repeat(w, k, 0), inits.reshape(R * k, 5),
                  delta, lo, hi)
    best = np.argmin(obj.reshape(R, k), axis=1)
    return th.reshape(R, k, 5)[np.arange(R), best], obj.reshape(R, k)[np.arange(R), best]


def derived(th: np.ndarray, mu: float, mv: float, c_ref: float,
            n_range: tuple[float, float], d_range: tuple[float, float]) -> dict[str, np.ndarray]:
    """The law's parameters on the original scale and what follows from them, per row."""
    e, ap, al, bp, be = th.T
    a, b = ap + al * mu, bp + be * mv  # ln A, ln B
    s = al + be
    ln_g = (np.log(al) + a - np.log(be) - b) / s
    c6 = math.log(c_ref / 6.0)
    ln_n = ln_g + be / s * c6
    ln_d = -ln_g + al / s * c6

    def drop(lo_x, hi_x, on_n: bool):
        # the fitted fall of log L across the data's range of one axis, at the other's centre
        uu = np.array([math.log(lo_x) - mu, math.log(hi_x) - mu]) if on_n else np.zeros(2)
        vv = np.array([math.log(lo_x) - mv, math.log(hi_x) - mv]) if not on_n else np.zeros(2)
        f, _ = _model(th, uu, vv)
        return f[:, 0] - f[:, 1]

    return {"E": np.exp(e), "A": np.exp(a), "alpha": al, "B": np.exp(b), "beta": be,
            "a_opt": be / s, "b_opt": al / s, "N_opt": np.exp(ln_n), "D_opt": np.exp(ln_d),
            "tokens_per_param": np.exp(ln_d - ln_n),
            "drop_N": drop(*n_range, True), "drop_D": drop(*d_range, False)}


def levels(x: np.ndarray, tol_log2: float = 0.1) -> np.ndarray:
    """Level index per value: sorted log2 values split where the gap exceeds `tol_log2` (the
    checkpoints of one step differ by a few tokens across seeds)."""
    lx = np.log2(np.asarray(x, float))
    order = np.argsort(lx)
    lab = np.empty(lx.size, dtype=int)
    lab[order] = np.concatenate([[0], np.cumsum(np.diff(lx[order]) > tol_log2)]) if lx.size else []
    return lab


def lack_of_fit(y: np.ndarray, f: np.ndarray, cells: np.ndarray, n_par: int = 5) -> dict:
    """F test of the cell means against the law (pure error: replicates within a cell)."""
    df = pd.DataFrame({"y": y, "f": f, "c": cells})
    g = df.groupby("c")
    n_cells, n = g.ngroups, len(df)
    ss_pe = float(((df["y"] - g["y"].transform("mean")) ** 2).sum())
    ss_lof = float((g.size() * (g["y"].mean() - g["f"].mean()) ** 2).sum())
    df_lof, df_pe = n_cells - n_par, n - n_cells
    rmse = float(np.sqrt(np.mean((y - f) ** 2)))
    if df_lof < 1 or df_pe < 1 or ss_pe <= 0:
        return {"lof_F": math.nan, "lof_p": math.nan, "rmse_log": rmse,
                "lack_of_fit": "not testable: " + ("no replicate seeds" if df_pe < 1
                                                    else "too few (N, D) cells")}
    F = (ss_lof / df_lof) / (ss_pe / df_pe)
    p = float(sps.f.sf(F, df_lof, df_pe))
    return {"lof_F": F, "lof_p": p, "rmse_log": rmse,
            "lack_of_fit": f"F({df_lof}, {df_pe}) = {F:.3g}, p = {p:.3g}"
            + (": the law misses the cell means" if p < 0.05 else "")}


# ---------------------------------------------------------------------------------------------
# From problems x checkpoints to the table row
# ---------------------------------------------------------------------------------------------

ESTIMATES = ("E", "A", "alpha", "B", "beta", "a_opt", "b_opt", "N_opt", "D_opt",
             "tokens_per_param", "drop_N", "drop_D")


def law_intervals(params, tokens, nll, ntok, traj, size, n_boot: int = 400,
                  alpha: float = 0.05, seed: int | None = 0,
                  delta: float = HUBER_DELTA) -> dict[str, np.ndarray]:
    """Point estimates and percentile CIs of the law for S data sets at once: `nll`, `ntok`
    are (S x checkpoints x problems) (or 2-D for one set); per checkpoint N `params`, D
    `tokens`, training trajectory `traj` (size, seed) and `size`. Returns per estimate k
    arrays ``k``, ``k_lo``, ``k_hi`` (length S), and ``theta``, ``u``, ``v``, ``loss``,
    ``c_ref``. The same problem and seed draws serve every data set (they are independent
    data sets, so sharing draws does not couple their intervals' coverage)."""
    N, D = np.asarray(params, float), np.asarray(tokens, float)
    nll, ntok = np.asarray(nll, float), np.asarray(ntok, float)
    if nll.ndim == 2:
        nll = nll[None]
    S, n, P = nll.shape
    ntok = np.broadcast_to(ntok, nll.shape)
    loss = nll.sum(-1) / ntok.sum(-1)  # S x n
    mu, mv = float(np.log(N).mean()), float(np.log(D).mean())
    u, v = np.log(N) - mu, np.log(D) - mv
    y = np.log(loss)
    th, _ = fit_batch(u, v, y, delta=delta)
    c_ref = float((6 * N * D).max())
    rng_n, rng_d = (float(N.min()), float(N.max())), (float(D.min()), float(D.max()))
    point = derived(th, mu, mv, c_ref, rng_n, rng_d)
    rng = np.random.default_rng(seed)
    wp = resample_counts(P, n_boot, rng)  # B x P
    wt = seed_draw_counts(np.asarray(size), np.asarray(traj), n_boot, rng)  # B x n
    with np.errstate(invalid="ignore", divide="ignore"):
        yb = np.log(np.einsum("bp,snp->sbn", wp, nll) / np.einsum("bp,snp->sbn", wp, ntok))
    yb = yb.reshape(S * n_boot, n)
    wb = np.tile(wt, (S, 1))
    good = np.all(np.isfinite(yb) | (wb == 0), axis=1)
    yb = np.where(np.isfinite(yb), yb, 0.0)
    thb, _ = fit_batch(u, v, yb, wb, delta=delta, start=np.repeat(th, n_boot, 0))
    reps = derived(thb, mu, mv, c_ref, rng_n, rng_d)
    out: dict[str, np.ndarray] = {"theta": th, "u": u, "v": v, "loss": loss,
                                  "c_ref": np.full(S, c_ref), "n_boot": good.reshape(S, -1).sum(1)}
    q = expanded_levels(alpha, seed_df(size, traj))
    out["levels"] = np.full(S, q[0])
    for k, x in reps.items():
        r = np.where(good, x, np.nan).reshape(S, n_boot)
        out[k] = point[k]
        with np.errstate(invalid="ignore"):
            out[f"{k}_lo"] = np.nanquantile(r, q[0], axis=1, method="lower")
            out[f"{k}_hi"] = np.nanquantile(r, q[1], axis=1, method="higher")
    return out


def seed_df(size, traj) -> int | None:
    """Degrees of freedom of the between-seed variance: trajectories minus sizes (None: one
    seed per size, so only problems are resampled)."""
    t = pd.DataFrame({"s": np.asarray(size).astype(str), "t": np.asarray(traj).astype(str)})
    df = t.drop_duplicates()["t"].size - t["s"].nunique()
    return df if df > 0 else None


def expanded_levels(alpha: float, df: int | None) -> tuple[float, float]:
    """Quantile levels of the expanded percentile interval (Hesterberg 2015): the bootstrap
    percentile interval is as narrow as a z interval, while a variance from few seeds calls
    for a t quantile; so the levels are Phi(-t_{1-alpha/2, df}) and its mirror (df None: the
    plain alpha/2)."""
    if df is None:
        return alpha / 2, 1 - alpha / 2
    lo = float(sps.norm.cdf(-sps.t.ppf(1 - alpha / 2, df)))
    return lo, 1 - lo


def fit_loss_law(params, tokens, nll, ntok, traj, size, n_boot: int = 400,
                 alpha: float = 0.05, seed: int | None = 0,
                 delta: float = HUBER_DELTA) -> dict:
    """One loss law: checkpoints (rows) x problems (columns) of summed -log p `nll` and gold
    tokens `ntok`; per checkpoint N `params`, D `tokens`, its training trajectory `traj` (size,
    seed) and `size`. Returns the table row's numbers (status, estimates with _lo/_hi, lack of
    fit) and ``fitted``/``loss`` per checkpoint; "no fit: <reason>" / "not identifiable:
    <reason>" in ``status`` where the data do not support the numbers (`LOSS_LAW_RULE`)."""
    N, D = np.asarray(params, float), np.asarray(tokens, float)
    nll, ntok = np.asarray(nll, float), np.asarray(ntok, float)
    ln, ld = levels(N), levels(D)
    out: dict = {"n_points": int(N.size), "n_sizes": int(ln.max() + 1) if N.size else 0,
                 "n_token_levels": int(ld.max() + 1) if D.size else 0,
                 "n_problems": int(nll.shape[1]) if nll.ndim == 2 else 0}
    for name, k in (("N", out["n_sizes"]), ("D", out["n_token_levels"])):
        if k < MIN_LEVELS:
            return {**out, "status": f"no fit: {name} has {k} level{'s' * (k != 1)} "
                    f"(< {MIN_LEVELS})"}
    if out["n_problems"] < MIN_PROBLEMS:
        return {**out, "status": f"no fit: {out['n_problems']} common problems with gold "
                f"traces (< {MIN_PROBLEMS})"}
    if not np.all(nll.sum(1) > 0):
        return {**out, "status": "no fit: a checkpoint has zero held-out loss"}
    res = law_intervals(N, D, nll, ntok, traj, size, n_boot, alpha, seed, delta)
    for k in ESTIMATES:
        out.update({k: float(res[k][0]), f"{k}_lo": float(res[f"{k}_lo"][0]),
                    f"{k}_hi": float(res[f"{k}_hi"][0])})
    th, y = res["theta"], np.log(res["loss"][0])
    f = _model(th, res["u"], res["v"])[0][0]
    out.update(lack_of_fit(y, f, ln * (ld.max() + 1) + ld))
    eps = 1e-3
    at_bound = [nm for nm in ("alpha", "beta")
                if out[nm] <= ALPHA_BOUNDS[0] + eps or out[nm] >= ALPHA_BOUNDS[1] - eps]
    flat = [ax for ax in ("N", "D") if not res[f"drop_{ax}_lo"][0] >= 1e-3]
    if at_bound:
        status = ("not identifiable: " + " and ".join(at_bound) + " at the bound of "
                  f"[{ALPHA_BOUNDS[0]}, {ALPHA_BOUNDS[1]}] (no power law over this range)")
    elif flat:
        status = ("not identifiable: the data allow no fall of loss along "
                  + " or ".join(flat) + " over their range")
    else:
        status = "ok"
    fitted = np.exp(f)
    if status != "ok":  # numbers of a law the data do not determine are not reported
        out.update({k: math.nan for k in ESTIMATES if not k.startswith("drop_")})
        out.update({f"{k}_{e}": math.nan for k in ESTIMATES if not k.startswith("drop_")
                    for e in ("lo", "hi")})
        fitted = np.full_like(fitted, math.nan)
    out.update(status=status, c_ref=float(res["c_ref"][0]), n_boot=int(res["n_boot"][0]),
               E_at_floor=bool(th[0, 0] <= _bounds(y[None])[0][0] + 1e-6),
               loss=res["loss"][0], fitted=fitted)
    return out


def gold_loss_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Per (checkpoint, problem) of the greedy records with a gold trace: summed -log p over
    its gold tokens (``nll``) and their number (``ntok``), with the law's grouping columns.
    The gold trace is teacher-forced once per problem, so budgets and samples of one problem
    carry the same values: the first is taken."""
    need = ("gold_think_logprob", "gold_answer_logprob", "gold_think_len", "gold_answer_len")
    if df.empty or not all(c in df for c in need):
        return pd.DataFrame()
    # greedy records where a family has any (teacher forcing is the same under any decoding,
    # but sampled runs are families of their own and would repeat the law)
    base = (df["base_family"] if "base_family" in df else df["family"]).astype(str)
    has_greedy = df.groupby([base.map(lambda s: _STEP.sub("", s)), df["task"]])[
        "greedy"].transform("any")
    g = df[(df["greedy"] | ~has_greedy) & df["gold_think_logprob"].notna()
           & df["gold_answer_logprob"].notna()]
    if g.empty:
        return pd.DataFrame()
    g = g.assign(nll=-(g["gold_think_logprob"] + g["gold_answer_logprob"]),
                 ntok=g["gold_think_len"] + g["gold_answer_len"],
                 law_family=g["family"].astype(str).map(lambda s: _STEP.sub("", s)),
                 trajectory=g["size"].astype(str).map(lambda s: _STEP.sub("", s)) + " seed "
                 + g["model_seed"].astype(str),
                 law_size=g["size"].astype(str).map(lambda s: _STEP.sub("", s)),
                 train_tokens=pd.to_numeric(g.get("train_tokens"), errors="coerce"))
    # a family of one checkpoint per seedless model: the model is its own trajectory
    g.loc[g["model_seed"].isna(), "trajectory"] = g["model"].astype(str).map(
        lambda s: _STEP.sub("", s))
    keys = ["law_family", "task", "model", "problem_id"]
    return g.groupby(keys, sort=True, observed=True).agg(
        nll=("nll", "first"), ntok=("ntok", "first"), params=("params", "first"),
        train_tokens=("train_tokens", "first"), trajectory=("trajectory", "first"),
        law_size=("law_size", "first"), model_seed=("model_seed", "first"),
        run_id=("run_id", lambda r: ";".join(sorted(set(map(str, r)))))).reset_index()


def loss_law_tables(df: pd.DataFrame, n_boot: int = 400, alpha: float = 0.05,
                    seed: int | None = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(loss_law: one row per (family, task) of greedy records, loss_points: one row per
    checkpoint with its held-out loss, CI over problems, and the law's fitted value)."""
    rows = gold_loss_rows(df)
    laws, points = [], []
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    for (family, task), g in rows.groupby(["law_family", "task"], sort=True):
        ident = {"family": family, "task": task}
        no_d = sorted(g.loc[~np.isfinite(g["train_tokens"]), "model"].unique())
        g = g[np.isfinite(g["train_tokens"]) & np.isfinite(g["params"])]
        ckpts = sorted(g["model"].unique())
        # the problems every checkpoint saw: one fixed held-out set for all of them
        seen = g.groupby("model")["problem_id"].agg(set)
        common = set.intersection(*seen) if ckpts else set()
        g = g[g["problem_id"].isin(common)]
        meta = g.groupby("model", sort=True).agg(
            params=("params", "first"), train_tokens=("train_tokens", "first"),
            trajectory=("trajectory", "first"), size=("law_size", "first"),
            model_seed=("model_seed", "first")).reindex(ckpts)
        nll = g.pivot(index="model", columns="problem_id", values="nll").reindex(ckpts)
        ntok = g.pivot(index="model", columns="problem_id", values="ntok").reindex(ckpts)
        res = fit_loss_law(meta["params"], meta["train_tokens"], nll.to_numpy(float),
                           ntok.to_numpy(float), meta["trajectory"].to_numpy(),
                           meta["size"].to_numpy(), n_boot, alpha, seed) if ckpts else {
            "status": "no fit: no checkpoint with training tokens", "n_points": 0}
        runs = ";".join(sorted({r for x in g["run_id"] for r in x.split(";")}))
        res.pop("loss", None)  # loss_points computes it with its CI
        fitted = res.pop("fitted", None)
        laws.append({**ident, **res, "seeds": _seed_counts(meta),
                     "without_train_tokens": ", ".join(no_d), "problems": len(common),
                     "runs": runs, "reference": CHINCHILLA_NOTE, "rule": LOSS_LAW_RULE})
        if ckpts:
            m = meta.reset_index()
            lo, hi = _loss_ci(nll.to_numpy(float), ntok.to_numpy(float), n_boot, alpha, seed)
            m = m.assign(**ident, train_flops=6 * m["params"] * m["train_tokens"],
                         loss=nll.sum(axis=1).to_numpy() / ntok.sum(axis=1).to_numpy(), loss_lo=lo,
                         loss_hi=hi, fitted=fitted if fitted is not None else np.nan,
                         problems=len(common),
                         runs=g.groupby("model")["run_id"].first().reindex(ckpts).to_numpy())
            points.append(m)
    pts = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    if not pts.empty:
        first = ["family", "task", "model", "size", "model_seed", "params", "train_tokens",
                 "train_flops", "loss", "loss_lo", "loss_hi", "fitted", "problems", "runs"]
        pts = pts[first + [c for c in pts if c not in first]]
    return pd.DataFrame(laws), pts


def _seed_counts(meta: pd.DataFrame) -> str:
    k = meta.groupby("size")["model_seed"].nunique(dropna=False)
    return "" if k.empty else (f"{k.min()}" if k.min() == k.max() else f"{k.min()}–{k.max()}")


def _loss_ci(nll, ntok, n_boot, alpha, seed):
    """Per checkpoint: percentile CI of the token-pooled loss over problem resamples."""
    wp = resample_counts(nll.shape[1], n_boot, np.random.default_rng(seed))
    reps = (wp @ nll.T) / (wp @ ntok.T)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
    return lo, hi
