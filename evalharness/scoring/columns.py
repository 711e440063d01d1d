"""Score rows from sample records: one row per record, columns computed vectorised.

Text work (extraction, grading) runs once per *distinct* answer string / (prediction,
reference) pair, and the per-token lists are reduced through flat Arrow buffers instead of
Python loops, so 10^6 records score in seconds. Pure: frames in, frames out (no file I/O).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from evalharness.scoring.answers import (
    _choice_letter,
    extract_answer,
    grade_verdict,
    lm_eval_exact_match,
    lm_eval_filter,
)
from evalharness.scoring.tokens import _Ragged, batch_edit_distance
from evalharness.types import AnswerType

ID_COLUMNS = [
    "run_id", "model", "task", "problem_id", "sample", "seed", "budget", "extensions",
    "thinking_tokens", "natural_thinking_tokens", "cut", "prompt_tokens", "generated_tokens",
    "finish_reason",
]


@dataclass(frozen=True)
class Emergence:
    """How a score column shows in the emergence analysis, figure and report (one record of
    the registry, so a new metric is one `@column(...)` and no list elsewhere).

    `per_size`: how the emergence table aggregates it over one checkpoint's records: "mean"
    (over records) or "pooled:<length column>" (token-pooled: sum(value x length) / sum(length),
    so long answers weigh by their tokens). `rank`: position among the per-size columns of the
    emergence table (ties and unranked columns: registration order). `sharpness`: a sharpness
    row (with CI) per family; `span`: its rank among the rows of the where-EM-jumps table
    (None: no row). `panel`: the key of
    the emergence figure's panel it is drawn in (`plots.emergence.PANELS`; an unknown key gets
    a panel of its own) with legend `line` and line `style`. `report`: its header in the
    report's emergence table, formatted by `report_fmt` ("pct" or "num") at `report_rank`;
    `report_optional`: the header only where the family has a value (gold traces)."""

    per_size: str = "mean"
    rank: float = math.inf
    sharpness: bool = False
    span: float | None = None
    panel: str | None = None
    line: str | None = None
    style: str = "obs"
    report: str | None = None
    report_fmt: str = "num"
    report_rank: float = math.inf
    report_optional: bool = False

    @property
    def pooled_by(self) -> str | None:
        """The length column of a token-pooled ratio, None for a mean."""
        kind, _, length = self.per_size.partition(":")
        return length if kind == "pooled" else None


@dataclass(frozen=True)
class ScoreColumn:
    """One score column: how it is computed from the records, and how it is shown.

    `compute(ctx)` returns one value per record; it may read columns computed before it
    (``ctx.out``), so the registry's order is the computation order. `version`: bump it when
    the column's values change; the scores' cache version is derived from every column's
    name and version (`columns_fingerprint`). `emergence`: how it shows against model size
    (None: not in the emergence analysis).
    """

    name: str
    label: str
    compute: Callable[[_Context], np.ndarray]
    emergence: Emergence | None = None
    higher_is_better: bool = True
    version: str = "1"


@dataclass
class _Context:
    df: pd.DataFrame
    out: pd.DataFrame
    answer_type: str
    pattern: str | None
    options: dict[str, list[str]] | None = None  # choice tasks: problem id -> option texts
    # the run's reasoning format (manifest spec.format: think_start, think_end, extension, …);
    # None for callers that do not pass it: diagnostics then look for common markers
    markers: dict | None = None
    informative: str | None = None  # the task's informative-token regex (TaskSpec.informative)
    fallback: bool = False  # TaskSpec.answer_fallback: the default cascade where pattern misses
    # TaskSpec.exact_match (bridged lm-eval tasks): lm-eval's filter and exact_match settings;
    # answers are then extracted and graded as lm-eval does, not by answer type
    exact_match: dict | None = None
    cache: dict = field(default_factory=dict)  # values several columns share

    @property
    def n(self) -> int:
        return len(self.df)

    def ragged(self, name: str, value_type: pa.DataType) -> _Ragged:
        return _Ragged(self.df.get(name), self.n, value_type)


COLUMNS: dict[str, ScoreColumn] = {}


_Compute = Callable[["_Context"], np.ndarray]


def column(name: str, label: str, *, emergence: Emergence | None = None,
           higher_is_better: bool = True, version: str = "1") -> Callable[[_Compute], _Compute]:
    """Register a score column (decorator). Adding a metric = one decorated function: its
    computation, how it shows in the emergence table, figure and report (`Emergence`), and a
    `version` that invalidates cached scores when bumped."""

    def deco(fn: _Compute) -> _Compute:
        COLUMNS[name] = ScoreColumn(name, label, fn, emergence, higher_is_better, version)
        return fn

    return deco


def unregister(name: str) -> None:
    """Drop a registered column (tests that register a toy column clean up with it)."""
    COLUMNS.pop(name, None)


def score_columns() -> list[str]:
    """The score frame's columns: identity columns, then every registered column in order."""
    return ID_COLUMNS + list(COLUMNS)


def emergence_columns() -> dict[str, Emergence]:
    """name -> emergence view of every registered column shown against model size."""
    return {c.name: c.emergence for c in COLUMNS.values() if c.emergence is not None}


def columns_fingerprint() -> str:
    """A digest of the registered columns' names, order and versions: cached scores made by
    another registry are stale."""
    text = "|".join(f"{c.name}={c.version}" for c in COLUMNS.values())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _map_unique(values: pd.Series, fn: Callable[[object], object]) -> np.ndarray:
    """Apply `fn` once per distinct value (answers repeat a lot across samples and budgets)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [fn(None)], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing fn(None)


def _choice_index(reference: str | None) -> float:
    letter = _choice_letter(reference) if isinstance(reference, str) else None
    return float(ord(letter) - ord("A")) if letter is not None else np.nan


def _brier(choice: _Ragged, references: pd.Series) -> np.ndarray:
    """Multiple-choice Brier score: sum_i (softmax(choice_logprobs)_i - 1[i == correct])^2."""
    out = np.full(choice.n, np.nan)
    has = choice.lengths > 0
    if not has.any():
        return out
    correct = _map_unique(references, _choice_index).astype(float)
    starts = choice.offsets[:-1]
    row_max = np.full(choice.n, -np.inf)
    row_max[has] = np.maximum.reduceat(choice.values.astype(float), starts[has])
    e = np.exp(choice.values - row_max[choice.parent])
    p = e / np.bincount(choice.parent, weights=e, minlength=choice.n)[choice.parent]
    pos = np.arange(choice.values.size) - starts[choice.parent]
    target = (pos == correct[choice.parent]).astype(float)
    sq = np.bincount(choice.parent, weights=(p - target) ** 2, minlength=choice.n)
    ok = has & ~np.isnan(correct) & (correct < choice.lengths)
    out[ok] = sq[ok]
    return out


def _softmax_argmax(lp: _Ragged, scale: np.ndarray | None = None) -> np.ndarray:
    """Per row, the index of the largest (optionally scaled) value; NaN for empty rows."""
    out = np.full(lp.n, np.nan)
    has = lp.lengths > 0
    if not has.any():
        return out
    v = lp.values.astype(float) if scale is None else lp.values / scale
    starts = lp.offsets[:-1]
    row_max = np.full(lp.n, -np.inf)
    row_max[has] = np.maximum.reduceat(v, starts[has])
    pos = np.arange(v.size) - starts[lp.parent]
    # the first position reaching the row maximum (lm-eval's np.argmax picks the first too)
    first = np.where(v == row_max[lp.parent], pos, np.iinfo(np.int64).max)
    best = np.full(lp.n, np.iinfo(np.int64).max)
    np.minimum.at(best, lp.parent, first)
    out[has] = best[has]
    return out


def _choice_acc(ctx: _Context, normalise: bool) -> np.ndarray:
    lp = ctx.ragged("prompt_choice_logprobs", pa.float64())
    scale = None
    if normalise:
        chars = ctx.ragged("choice_chars", pa.int64())
        if chars.values.size != lp.values.size:
            return np.full(ctx.n, np.nan)
        scale = np.maximum(chars.values.astype(float), 1.0)
    picked = _softmax_argmax(lp, scale)
    correct = _map_unique(ctx.df["reference"].astype(object), _choice_index).astype(float)
    ok = ~np.isnan(picked) & ~np.isnan(correct)
    return np.where(ok, (picked == correct).astype(float), np.nan)


# -- the registry, in computation order ------------------------------------------------------


@column("error", "engine error or prompt too long (no answer was generated)", higher_is_better=False)
def _error(ctx: _Context) -> np.ndarray:
    fr = ctx.df["finish_reason"].astype(object) if "finish_reason" in ctx.df else None
    if fr is None:
        return np.zeros(ctx.n, dtype=bool)
    return fr.map(lambda v: isinstance(v, str) and v.startswith("error")).to_numpy(dtype=bool)


@column("pred", "extracted answer")
def _pred(ctx: _Context) -> np.ndarray:
    answers = ctx.df["answer"].astype(object)
    if ctx.exact_match is not None:
        return _map_unique(answers, lambda a: lm_eval_filter(a, ctx.pattern))
    pred = _map_unique(answers, lambda a: extract_answer(a, ctx.answer_type, ctx.pattern,
                                                         ctx.fallback))
    if ctx.answer_type == "choice" and ctx.options:
        # a model that answers with an option's text instead of its letter chose that option
        for k, (pid, text, p) in enumerate(zip(ctx.df["problem_id"], answers, pred, strict=True)):
            if p is None or _choice_letter(str(p)) is None:
                letter = _option_by_text(text, ctx.options.get(pid))
                if letter is not None:
                    pred[k] = letter
    return pred


def _option_by_text(text: object, options: list[str] | None) -> str | None:
    """The letter of the one option whose text the answer is (normalised), else None."""
    if not isinstance(text, str) or not options:
        return None
    said = " ".join(text.strip().split()).lower()
    hits = [k for k, o in enumerate(options) if " ".join(str(o).split()).lower() == said]
    return chr(ord("A") + hits[0]) if len(hits) == 1 else None


@column("no_answer", "no answer could be extracted (not an error)", higher_is_better=False)
def _no_answer(ctx: _Context) -> np.ndarray:
    return (pd.isna(ctx.out["pred"]).to_numpy() & ~ctx.out["error"].to_numpy(dtype=bool))


@column("exact_match", "exact match", version="2")
def _correct(ctx: _Context) -> np.ndarray:
    # grade each distinct (prediction, reference) pair once
    p_codes, p_uniq = pd.factorize(ctx.out["pred"])
    r_codes, r_uniq = pd.factorize(ctx.df["reference"].astype(object))
    width = len(r_uniq) + 1
    pairs, inverse = np.unique((p_codes + 1) * width + (r_codes + 1), return_inverse=True)
    if ctx.exact_match is not None:
        settings = ctx.exact_match

        def judge(p, r, _type):
            return lm_eval_exact_match(p, r, settings)
    else:
        judge = grade_verdict
    verdicts = [
        judge(
            p_uniq[pc_ - 1] if (pc_ := int(c) // width) > 0 else None,
            r_uniq[rc_ - 1] if (rc_ := int(c) % width) > 0 else None,
            ctx.answer_type,
        )
        for c in pairs
    ]
    undecided = np.array([v is None for v in verdicts], dtype=bool)
    ctx.cache["undecided"] = undecided[inverse.reshape(-1)]
    graded = np.array([v is True for v in verdicts], dtype=bool)
    return graded[inverse.reshape(-1)]


@column("grade_timeout", "grading ran out of time (no verdict; counted as not correct)",
        higher_is_better=False)
def _grade_timeout(ctx: _Context) -> np.ndarray:
    # A verdict the grader could not reach in time (math-verify on a starved machine) is not a
    # wrong answer: it is counted here, shown beside accuracy, and a re-score may decide it.
    return ctx.cache["undecided"]


# Ranks: the emergence table's historical column order (the reference-answer block reads
# accuracy first), which differs from the computation order here.
@column("ref_len", "reference tokens", emergence=Emergence(rank=15))
def _ref_len(ctx: _Context) -> np.ndarray:
    # kept because predicted exact match = per-token accuracy ** length needs it
    return ctx.ragged("ref_logprobs", pa.float64()).lengths


@column("ref_logprob_sum", "log p(reference answer)", emergence=Emergence(
    rank=12, sharpness=True, panel="logprob", line="log p(answer) = Σ token log-probs",
    report="log p(answer)", report_rank=2))
def _ref_logprob_sum(ctx: _Context) -> np.ndarray:
    lp = ctx.ragged("ref_logprobs", pa.float64())
    return np.where(lp.valid, lp.sum(), np.nan)


@column("ref_logprob_mean", "mean log p per reference token", emergence=Emergence(
    rank=11, sharpness=True, span=4, report="mean log p/token", report_rank=3))
def _ref_logprob_mean(ctx: _Context) -> np.ndarray:
    return ctx.ragged("ref_logprobs", pa.float64()).mean()


@column("ref_prob", "p(reference answer)", emergence=Emergence(rank=13))
def _ref_prob(ctx: _Context) -> np.ndarray:
    return np.exp(ctx.out["ref_logprob_sum"].to_numpy(dtype=float))


@column("ref_token_acc", "per-token accuracy (answer)", emergence=Emergence(
    rank=10, sharpness=True, span=1, panel="token_acc", line="reference answer tokens",
    report="per-token acc", report_fmt="pct", report_rank=1))
def _ref_token_acc(ctx: _Context) -> np.ndarray:
    return ctx.ragged("ref_hits", pa.bool_()).mean()


@column("edit_distance", "token edit distance", higher_is_better=False, emergence=Emergence(
    rank=14, sharpness=True, report="edit distance", report_rank=4))
def _edit_distance(ctx: _Context) -> np.ndarray:
    a = ctx.ragged("answer_ids", pa.int64())
    r = ctx.ragged("ref_ids", pa.int64())
    return batch_edit_distance(a.values, a.offsets, r.values, r.offsets)


@column("answer_logprob_mean", "mean log p per generated answer token")
def _answer_logprob_mean(ctx: _Context) -> np.ndarray:
    return ctx.ragged("answer_logprobs", pa.float64()).mean()


@column("brier", "Brier score over the options (after thinking)", higher_is_better=False)
def _brier_col(ctx: _Context) -> np.ndarray:
    return _brier(ctx.ragged("choice_logprobs", pa.float64()), ctx.df["reference"].astype(object))


@column("acc", "option log-likelihood accuracy (lm-eval acc)")
def _acc(ctx: _Context) -> np.ndarray:
    return _choice_acc(ctx, normalise=False)


@column("acc_norm", "length-normalised option accuracy (lm-eval acc_norm)")
def _acc_norm(ctx: _Context) -> np.ndarray:
    return _choice_acc(ctx, normalise=True)


def _gold(ctx: _Context) -> tuple[_Ragged, _Ragged]:
    return ctx.ragged("gold_think_hits", pa.bool_()), ctx.ragged("gold_answer_hits", pa.bool_())


@column("gold_think_acc", "per-token accuracy (gold thinking)", emergence=Emergence())
def _gold_think_acc(ctx: _Context) -> np.ndarray:
    think, _ = _gold(ctx)
    return np.where(think.valid, think.mean(), np.nan)


@column("gold_answer_acc", "per-token accuracy (gold answer)",
        emergence=Emergence(sharpness=True, span=3))
def _gold_answer_acc(ctx: _Context) -> np.ndarray:
    _, ans = _gold(ctx)
    return np.where(ans.valid, ans.mean(), np.nan)


@column("gold_token_acc", "per-token accuracy (gold trace)", emergence=Emergence(
    sharpness=True, span=2, panel="token_acc", line="gold trace tokens (thinking + answer)",
    style="obs2", report="gold-trace token acc", report_fmt="pct", report_rank=5,
    report_optional=True))
def _gold_token_acc(ctx: _Context) -> np.ndarray:
    think, ans = _gold(ctx)
    total = think.lengths + ans.lengths
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((ans.valid | think.valid) & (total > 0),
                        (think.sum() + ans.sum()) / total, np.nan)


@column("gold_answer_logprob", "log p(gold answer | gold thinking)", emergence=Emergence())
def _gold_answer_logprob(ctx: _Context) -> np.ndarray:
    lp = ctx.ragged("gold_answer_logprobs", pa.float64())
    return np.where(lp.valid, lp.sum(), np.nan)


# with gold_answer_logprob and the two lengths: the held-out loss of the scaling law
# (analysis.scaling), mean -log p per gold token over thinking + answer
@column("gold_think_logprob", "log p(gold thinking | prompt), summed")
def _gold_think_logprob(ctx: _Context) -> np.ndarray:
    lp = ctx.ragged("gold_think_logprobs", pa.float64())
    return np.where(lp.valid, lp.sum(), np.nan)


@column("gold_answer_len", "gold answer tokens", emergence=Emergence())
def _gold_answer_len(ctx: _Context) -> np.ndarray:
    _, ans = _gold(ctx)
    return np.where(ans.valid, ans.lengths, np.nan)


@column("gold_think_len", "gold thinking tokens", emergence=Emergence())
def _gold_think_len(ctx: _Context) -> np.ndarray:
    think, _ = _gold(ctx)
    return np.where(think.valid, think.lengths, np.nan)


# -- informative tokens and the whole scratchpad -------------------------------------------
# Per-token accuracy over a whole gold trace is dominated by tokens every model gets right
# (formatting, separators); the task names the ones that carry the computation.


def informative_mask(tokens: list[str], pattern: str | None) -> np.ndarray:
    """Which tokens of a gold trace are informative: those overlapping a group of `pattern`
    (or a whole match when it has no groups), searched over the joined token texts."""
    if pattern is None:
        return np.ones(len(tokens), dtype=bool)
    text = "".join(tokens)
    marked = np.zeros(len(text) + 1, dtype=np.int64)
    rx = re.compile(pattern)
    for m in rx.finditer(text):
        spans = [m.span(g) for g in range(1, rx.groups + 1)] if rx.groups else [m.span()]
        for a, b in spans:
            if a >= 0 and b > a:
                marked[a] += 1
                marked[b] -= 1
    covered = np.cumsum(marked)[:-1] > 0
    ends = np.cumsum([len(t) for t in tokens])
    starts = ends - np.array([len(t) for t in tokens], dtype=np.int64)
    return np.array([bool(covered[a:b].any()) for a, b in zip(starts, ends, strict=True)],
                    dtype=bool)


def _is_list(v) -> bool:
    return isinstance(v, list | tuple | np.ndarray)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _flat(arrs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    off = np.concatenate([[0], np.cumsum([a.size for a in arrs])]).astype(np.int64)
    return (np.concatenate(arrs) if arrs else np.zeros(0, np.int64)), off


def _gold_rows(ctx: _Context):
    """Per record with a gold trace: (row, hits, logprobs, token texts) over thinking + answer."""
    if "gold_think_tokens" not in ctx.df:
        return
    cols = [ctx.df[c].tolist() if c in ctx.df else [None] * ctx.n for c in (
        "gold_think_tokens", "gold_answer_tokens", "gold_think_hits", "gold_answer_hits",
        "gold_think_logprobs", "gold_answer_logprobs")]
    for row, (tt, ta, ht, ha, lt, la) in enumerate(zip(*cols, strict=True)):
        if not all(_is_list(v) for v in (tt, ta, ht, ha)):
            continue
        yield (row, np.concatenate([np.asarray(ht, bool), np.asarray(ha, bool)]),
               np.concatenate([np.asarray(lt, float), np.asarray(la, float)]),
               [*tt, *ta])


def _info(ctx: _Context) -> pd.DataFrame:
    if "info" in ctx.cache:
        return ctx.cache["info"]
    acc, lp, n = np.full(ctx.n, np.nan), np.full(ctx.n, np.nan), np.full(ctx.n, np.nan)
    for row, hits, logprobs, tokens in _gold_rows(ctx):
        mask = informative_mask(tokens, ctx.informative)
        n[row] = mask.sum()
        if mask.any():
            acc[row] = hits[mask].mean()
            lp[row] = logprobs[mask].mean()
    ctx.cache["info"] = pd.DataFrame({"acc": acc, "lp": lp, "n": n})
    return ctx.cache["info"]


@column("gold_info_acc", "per-token accuracy (informative gold tokens)",
        emergence=Emergence(sharpness=True))
def _gold_info_acc(ctx: _Context) -> np.ndarray:
    return _info(ctx)["acc"].to_numpy()


@column("gold_info_logprob", "mean log p per informative gold token",
        emergence=Emergence(sharpness=True))
def _gold_info_logprob(ctx: _Context) -> np.ndarray:
    return _info(ctx)["lp"].to_numpy()


@column("gold_info_len", "informative gold tokens", emergence=Emergence())
def _gold_info_len(ctx: _Context) -> np.ndarray:
    return _info(ctx)["n"].to_numpy()


@column("scratch_edit_distance", "edit distance, whole scratchpad (characters, / gold length)",
        emergence=Emergence(sharpness=True), higher_is_better=False)
def _scratch_edit_distance(ctx: _Context) -> np.ndarray:
    """Levenshtein distance between the generated thinking + answer and the gold thinking +
    answer, in characters (= tokens for the zoo's one-token-per-character tokenizer), divided
    by the gold length; markers and end-of-sequence tokens are left out of both."""
    out = np.full(ctx.n, np.nan)
    if "gold_think_tokens" not in ctx.df:
        return out
    thinking = ctx.df["thinking"].tolist() if "thinking" in ctx.df else [""] * ctx.n
    answers = ctx.df["answer"].tolist() if "answer" in ctx.df else [""] * ctx.n
    rows, gen, gold = [], [], []
    for row, tt, ta in zip(range(ctx.n), ctx.df["gold_think_tokens"].tolist(),
                           ctx.df.get("gold_answer_tokens", pd.Series([None] * ctx.n)).tolist(),
                           strict=True):
        if not (_is_list(tt) and _is_list(ta)):
            continue
        # the gold think tokens end with the think-end marker, the answer with end-of-sequence
        g = "".join(tt[:-1]) + "".join(ta[:-1])
        rows.append(row)
        gen.append(_codepoints(str(thinking[row] or "") + str(answers[row] or "")))
        gold.append(_codepoints(g))
    if not rows:
        return out
    gv, go = _flat(gen)
    rv, ro = _flat(gold)
    dist = batch_edit_distance(gv, go, rv, ro)
    lengths = np.diff(ro)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[rows] = np.where(lengths > 0, dist / lengths, np.nan)
    return out


# -- budget-control diagnostics: did the forced end of thinking bite? -----------------------
# (aggregated per run x budget by `evalharness.diagnostics`)

# markers that re-open thinking when the run's format is not known: the think tags most
# reasoning models use and s1's extension word
FALLBACK_MARKERS = ("<think>", "</think>", "Wait")


def _marker_pattern(markers: dict | None) -> re.Pattern | None:
    """One regex matching any think-start, think-end or extension string of the format.

    Word-like ends only match at word boundaries, so "Wait" does not match "Waiting" or
    "await"; markers are matched case-sensitively (they are exact strings the model emits)."""
    if markers is None:
        texts = list(FALLBACK_MARKERS)
    else:
        texts = [markers.get(k) for k in ("think_start", "think_end", "extension")]
    parts = []
    for t in {str(t).strip() for t in texts if t and str(t).strip()}:
        pat = re.escape(t)
        if re.match(r"\w", t):
            pat = r"(?<!\w)" + pat
        if re.search(r"\w$", t):
            pat += r"(?!\w)"
        parts.append(pat)
    return re.compile("|".join(sorted(parts))) if parts else None


def _bool_col(ctx: _Context, name: str) -> np.ndarray:
    if name not in ctx.df:
        return np.zeros(ctx.n, dtype=bool)
    return ctx.df[name].fillna(False).to_numpy(dtype=bool)


@column("marker_found", "thinking ended at the think-end marker within the budget")
def _marker_found(ctx: _Context) -> np.ndarray:
    # the sweep records the natural length only where the marker came within this budget
    if "natural_thinking_tokens" not in ctx.df:
        return np.zeros(ctx.n, dtype=bool)
    return ctx.df["natural_thinking_tokens"].notna().to_numpy() & ~_bool_col(ctx, "cut")


@column("natural_end", "the model ended thinking itself within the budget (marker or eos)")
def _natural_end(ctx: _Context) -> np.ndarray:
    # not cut and not an error: the marker, or an end of sequence before the budget
    return ~_bool_col(ctx, "cut") & ~ctx.out["error"].to_numpy(dtype=bool)


@column("reopened", "thinking re-opened after a forced end (think marker or 'Wait' in the "
        "answer)", higher_is_better=False)
def _reopened(ctx: _Context) -> np.ndarray:
    cut = _bool_col(ctx, "cut")
    pattern = _marker_pattern(ctx.markers)
    if pattern is None or not cut.any():
        return np.zeros(ctx.n, dtype=bool)
    found = _map_unique(ctx.df["answer"].astype(object),
                        lambda a: isinstance(a, str) and pattern.search(a) is not None)
    return cut & found.astype(bool)


@column("answer_extracted", "an answer could be extracted (not an error, not no-answer)")
def _answer_extracted(ctx: _Context) -> np.ndarray:
    return ~ctx.out["no_answer"].to_numpy(dtype=bool) & ~ctx.out["error"].to_numpy(dtype=bool)


@column("answer_cut", "the answer was cut by --max-answer-tokens", higher_is_better=False)
def _answer_cut(ctx: _Context) -> np.ndarray:
    if "finish_reason" not in ctx.df:
        return np.zeros(ctx.n, dtype=bool)
    return (ctx.df["finish_reason"].astype(object) == "length").to_numpy(dtype=bool)


# the built-in registry's columns, for callers that read them as constants; code that must see
# columns registered later (plugins, tests) calls `score_columns()` / `emergence_columns()`
SCORE_COLUMNS = score_columns()
EMERGENCE_COLUMNS = tuple(n for n, e in emergence_columns().items() if e.sharpness)


def score_records(
    df: pd.DataFrame, answer_type: AnswerType | str, pattern: str | None = None,
    options: dict[str, list[str]] | None = None,
    markers: dict | None = None,
    informative: str | None = None,
    fallback: bool = False,
    exact_match: dict | None = None,
) -> pd.DataFrame:
    """One score row per record (columns: `SCORE_COLUMNS`, computed by the `COLUMNS` registry).

    `df` has the `SampleRecord` fields as columns; list fields may be Python lists or Arrow
    lists. Optional fields (choice_logprobs, gold_*) may be absent. `options`: for choice
    tasks, each problem's option texts, so an answer that is an option's text counts as that
    option's letter. `markers`: the run's reasoning format (manifest ``spec.format``), for the
    re-opened-thinking diagnostic. `pattern` is authoritative (no match: no answer) unless
    `fallback` (the task's `answer_fallback`). `exact_match`: lm-eval's exact_match settings
    of a bridged task: extraction and grading are then lm-eval's (`lm_eval_filter`,
    `lm_eval_exact_match`).
    """
    columns = score_columns()
    if len(df) == 0:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame({c: df[c].to_numpy() if c in df else None for c in ID_COLUMNS})
    ctx = _Context(df, out, str(answer_type), pattern, options=options, markers=markers,
                   informative=informative, fallback=fallback,
                   exact_match=exact_match)
    for name, col in COLUMNS.items():
        values = col.compute(ctx)
        out[name] = pd.Series(values, dtype=object) if name == "pred" else values
    return out[columns]
