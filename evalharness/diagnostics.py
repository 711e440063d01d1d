"""Budget-control diagnostics: did forcing the end of thinking actually bite?

Budget forcing cuts thinking at T, forces the think-end marker (and an answer cue) and expects
a short answer. It fails silently when the model does not comply: it rambles until
``--max-answer-tokens`` (the answer is cut), opens thinking again (``<think>``, "Wait", the end
marker once more), gives nothing extractable, or the record is an engine error. The score
columns (`scoring/columns.py`: ``marker_found``, ``natural_end``, ``reopened``,
``answer_extracted``, ``answer_cut``, ``error``) say this per record; here they are counted per
run × budget (× extension level), and every run × budget where a control failed in more than
5% of its records gets one warning line. Pure: frames in, frames out (no file I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

KEYS = ["run_id", "model", "task", "extensions", "budget"]
WARN_SHARE = 0.05  # a control "did not bite" when it failed in more than this share


@dataclass(frozen=True)
class Failure:
    """One way a control did not bite: records counted in `count` out of `of`."""

    count: str  # column of the diagnostics table: records that failed
    of: str  # its denominator column: "forced" (forced ends) or "n" (all records)
    text: str  # the warning, after "12% (6/50) "


FAILURES = (
    Failure("forced_answer_cut", "forced",
            "of forced answers were cut by --max-answer-tokens (raise it)"),
    Failure("reopened", "forced",
            "of forced ends re-opened thinking (think marker or extension word in the answer)"),
    Failure("forced_no_answer", "forced", "of forced ends gave no extractable answer"),
    Failure("errors", "n", "of records are errors (see finish_reason)"),
)

BITE_RULE = (
    f"a control did not bite where more than {100 * WARN_SHARE:.0f}% of a run × budget's "
    "forced ends gave an answer cut by --max-answer-tokens, re-opened thinking (the answer "
    "contains the think-start or think-end marker or the extension word), or gave no "
    "extractable answer, or where more than that share of its records are errors"
)

COLUMNS = [
    *KEYS, "params", "n", "forced", "natural_end", "marker_found", "errors", "reopened",
    "forced_answer_cut", "forced_no_answer", "answer_cut", "forced_rate", "natural_rate",
    "marker_rate", "error_rate", "reopened_rate", "forced_answer_cut_rate",
    "forced_no_answer_rate", "answer_cut_rate",
]


def _flag(scores: pd.DataFrame, name: str) -> pd.Series:
    """A boolean score column; derived from the record columns where an older scores file
    lacks it (NaN where it cannot be derived: `reopened` needs the answer text)."""
    if name in scores:
        return scores[name].astype("boolean").fillna(False).astype(float)
    fr = scores["finish_reason"].astype(object) if "finish_reason" in scores else None
    cut = scores["cut"].astype("boolean").fillna(False) if "cut" in scores else None
    err = scores["error"].astype(bool) if "error" in scores else None
    derived = {
        "answer_cut": (fr == "length") if fr is not None else None,
        "natural_end": (~cut & ~err) if cut is not None and err is not None else None,
        "marker_found": (scores["natural_thinking_tokens"].notna() & ~cut)
        if cut is not None and "natural_thinking_tokens" in scores else None,
        "answer_extracted": (~scores["no_answer"].astype(bool) & ~err)
        if err is not None and "no_answer" in scores else None,
    }.get(name)
    if derived is None:
        return pd.Series(np.nan, index=scores.index)
    return derived.astype(float)


def _model_label(scores: pd.DataFrame) -> pd.Series:
    """The model as analysis labels it: a sampled run is "model (n=8, temp=0.7)", so a greedy
    sweep and a best-of-N run of one model stay apart here too."""
    model = scores["model"].astype(str)
    if "temperature" not in scores:
        return model
    temp = pd.to_numeric(scores["temperature"], errors="coerce").fillna(0.0)
    if not (temp > 0).any():
        return model
    n = scores.groupby("run_id")["sample"].transform("max") + 1
    label = model + " (n=" + n.astype(str) + ", temp=" + temp.astype(str) + ")"
    return model.where(temp == 0, label)


def budget_control(scores: pd.DataFrame) -> pd.DataFrame:
    """Per run × budget × extension level: how many records ended thinking by themselves (at
    the marker or by end of sequence), how many were forced, and how often a forced end did
    not bite (answer cut, thinking re-opened, no answer) or the record is an error.

    `scores`: score rows (`scoring.score_records` / `load_scores`). Counts are integers
    (NaN where the scores lack the column); rates of forced-end failures are over the forced
    records (NaN where none was forced), the others over all records (`n`)."""
    # nothing to say without knowing which records were forced at which budget (hand-built
    # frames given to `analyze` may lack the columns)
    if scores.empty or not {"model", "budget", "cut"} <= set(scores.columns):
        return pd.DataFrame(columns=COLUMNS)
    scores = scores.assign(**{k: v for k, v in (
        ("run_id", scores["model"]), ("task", ""), ("extensions", 0), ("sample", 0),
        ("error", False)) if k not in scores})
    cut = scores["cut"].astype("boolean").fillna(False).astype(bool)
    err = scores["error"].astype(bool)
    extracted = _flag(scores, "answer_extracted")
    answer_cut = _flag(scores, "answer_cut")
    df = pd.DataFrame({
        "run_id": scores["run_id"].astype(str),
        "model": _model_label(scores),
        "task": scores["task"].astype(str),
        "extensions": pd.to_numeric(scores["extensions"], errors="coerce").fillna(0).astype(int),
        "budget": scores["budget"].astype(int),
        "params": pd.to_numeric(scores["params"], errors="coerce") if "params" in scores
        else np.nan,
        "n": 1.0,
        "forced": cut.astype(float),
        "natural_end": _flag(scores, "natural_end"),
        "marker_found": _flag(scores, "marker_found"),
        "errors": err.astype(float),
        # reopened is only ever true after a forced end (see the column)
        "reopened": _flag(scores, "reopened"),
        "forced_answer_cut": answer_cut.where(cut, 0.0),
        # errors are counted on their own: "no answer" means the model answered nothing usable
        "forced_no_answer": (1.0 - extracted).where(cut & ~err, 0.0),
        "answer_cut": answer_cut,
    })
    for col, source in (("forced_answer_cut", answer_cut), ("forced_no_answer", extracted)):
        if source.isna().all():  # unknown, not zero
            df[col] = np.nan
    counts = ["n", "forced", "natural_end", "marker_found", "errors", "reopened",
              "forced_answer_cut", "forced_no_answer", "answer_cut"]
    g = df.groupby(KEYS, sort=True, observed=True, dropna=False)
    # min_count=1: a column the scores lack stays NaN instead of summing to 0
    out = g[counts].sum(min_count=1)
    out.insert(0, "params", g["params"].first())
    out = out.reset_index()
    forced = out["forced"].where(out["forced"] > 0)
    for rate, col, of in (
        ("forced_rate", "forced", out["n"]),
        ("natural_rate", "natural_end", out["n"]),
        ("marker_rate", "marker_found", out["n"]),
        ("error_rate", "errors", out["n"]),
        ("reopened_rate", "reopened", forced),
        ("forced_answer_cut_rate", "forced_answer_cut", forced),
        ("forced_no_answer_rate", "forced_no_answer", forced),
        ("answer_cut_rate", "answer_cut", out["n"]),
    ):
        out[rate] = out[col] / of
    for c in counts:
        if out[c].notna().all():
            out[c] = out[c].astype(np.int64)
    return out[COLUMNS]


def failures(row: pd.Series, share: float = WARN_SHARE) -> list[tuple[Failure, int, int]]:
    """The failures of one diagnostics row above `share`: (failure, count, denominator).

    Compared in integers (count * 100 > share% * of) so that exactly 5% never warns."""
    out = []
    for f in FAILURES:
        count, of = row.get(f.count), row.get(f.of)
        if count is None or of is None or pd.isna(count) or pd.isna(of) or of <= 0:
            continue
        if int(count) * 100 > round(100 * share) * int(of):
            out.append((f, int(count), int(of)))
    return out


def _pct(count: int, of: int) -> str:
    v = 100 * count / of
    return f"{v:.0f}%" if v >= 10 or v == int(v) else f"{v:.1f}%"


def warning_lines(diag: pd.DataFrame, share: float = WARN_SHARE) -> list[str]:
    """One line per run × budget where a control did not bite in more than `share` of its
    records, e.g. ``zoo/arith-h128-s0 add_sweep T=8: 12% of forced answers (6/50) were cut by
    --max-answer-tokens (raise it)``. `diag`: the `budget_control` table."""
    lines = []
    for _, r in diag.iterrows():
        found = failures(r, share)
        if not found:
            continue
        ext = f" (+{int(r['extensions'])} Wait)" if r["extensions"] else ""
        what = "; ".join(f"{_pct(c, of)} ({c}/{of}) {f.text}" for f, c, of in found)
        lines.append(f"{r['model']} {r['task']} T={int(r['budget'])}{ext}: {what}")
    return lines
