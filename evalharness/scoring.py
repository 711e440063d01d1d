"""Scoring: sample records in, one score row per record out.

Everything here is a pure function of ``samples.jsonl`` + ``manifest.json``: re-scoring never
regenerates. The hot path is vectorised: text work (extraction, grading) runs once per *distinct*
answer string / (prediction, reference) pair, and the per-token lists are reduced through flat
Arrow buffers instead of Python loops, so 10^6 records score in seconds.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import fields
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from evalharness.types import AnswerType, SampleRecord

log = logging.getLogger(__name__)

# Bump when the score columns or their meaning change: load_scores re-scores older files.
SCORES_VERSION = "1"
_VERSION_KEY = b"evalharness_scores_version"

NUMERIC_TYPES = frozenset({"integer", "number"})

# ---------------------------------------------------------------------------------------------
# Answer extraction
# ---------------------------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# "\boxed 5" (no braces) is legal LaTeX and some models emit it.
_BOXED_BARE = re.compile(r"\\boxed\s+([^\s{$]+)")
# Non-greedy up to a sentence end: a period followed by space/end (not the one in "3.5"),
# a newline, or the end of the text.
_ANSWER_CUE = re.compile(r"answer\s*(?:is|:)\s*:?", re.IGNORECASE)
_SENTENCE = re.compile(r"\s*(.+?)\s*(?:\.\s|\.?$|\n)", re.MULTILINE)
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
# Thousands separators only in groups of three, so "3,4" in a list stays two numbers.
_LETTERS = re.compile(r"[a-df-zA-DF-Z]")  # letters, but not the "e" of 1e3
_FRAC_CMD = re.compile(r"\\[dt]?frac")
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
# A choice letter standing alone: "(B)", "B)", "B.", "B" at the end; capitals only, so the
# article "a" and the pronoun "I" in running text are not votes.
_CHOICE = re.compile(r"(?:^|[\s(\[*])\(?([A-J])(?:\)|\]|\.|:|,|\*|$)(?=\s|$|[.,;:)*])")


def _balanced(text: str, start: int) -> str | None:
    """Content from `start` up to the brace that closes the one just before it, or None."""
    depth = 1
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None  # truncated generation: no closing brace


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (nested braces allowed), else None.

    For ``\\boxed{\\boxed{5}}`` the inner box is the last one, so the result is ``5``.
    """
    for m in reversed(list(_BOXED.finditer(text))):
        content = _balanced(text, m.end())
        if content is not None:
            return content
    bare = _BOXED_BARE.findall(text)
    return bare[-1] if bare else None


def _clean_span(span: str) -> str:
    """Strip what surrounds an answer in prose: math delimiters, bold, final punctuation."""
    s = span.strip()
    for _ in range(3):  # a few layers, e.g. "**$5$**."
        before = s
        s = s.strip().rstrip(".;,!").strip().strip("*").strip()  # "**Answer:** 12"
        if s.startswith("$$") and s.endswith("$$") and len(s) >= 4:
            s = s[2:-2]
        elif s.startswith("$") and s.endswith("$") and len(s) >= 2 and s.count("$") == 2:
            s = s[1:-1]
        if s.startswith("\\(") and s.endswith("\\)"):
            s = s[2:-2]
        if s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
        inner = last_boxed(s) if "\\boxed" in s else None
        if inner is not None:
            s = inner
        if s == before:
            break
    return s.strip()


def extract_answer(
    text: str, answer_type: AnswerType | str = "string", pattern: str | re.Pattern | None = None
) -> str | None:
    """The answer a model gave in `text`, or None when it gave none.

    Tried in order, the first that matches wins:
    1. `pattern` (a task's own regex): its last match, group 1 if it has groups;
    2. the last complete ``\\boxed{...}``;
    3. the last "answer is X" / "answer: X" (up to the end of that sentence or line);
    4. the last ``#### X`` (GSM8K style);
    5. by type: the last number (integer/number/math), the last standalone option letter
       (choice), or the last non-empty line (string).
    Never raises: any input that is not a string gives None.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return _extract(text, str(answer_type), pattern)
    except Exception:  # a bad task regex must not take a whole scoring pass down
        log.exception("answer extraction failed; treating as no answer")
        return None


def _extract(text: str, answer_type: str, pattern: str | re.Pattern | None) -> str | None:
    if pattern is not None:
        matches = list(re.finditer(pattern, text))
        if matches:
            m = matches[-1]
            span = _tidy(m.group(1) if m.re.groups else m.group(0), answer_type)
            if span:
                return span
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if boxed is not None and (span := _tidy(boxed, answer_type)):
            return span
    if "nswer" in text or "NSWER" in text:  # cheap pre-check before the regex
        # The last cue, not the last non-overlapping match: in "Final Answer: The final answer
        # is $5$." the answer follows the second cue.
        cues = list(_ANSWER_CUE.finditer(text))
        found = _SENTENCE.match(text, cues[-1].end()) if cues else None
        if found and (span := _tidy(found.group(1), answer_type)):
            return span
    if "####" in text:
        found = _HASHES.findall(text)
        if found and (span := _tidy(found[-1], answer_type)):
            return span
    if answer_type == "choice":
        letters = _CHOICE.findall(text)
        return letters[-1] if letters else None
    if answer_type == "string":
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return _clean_span(lines[-1]) or None
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _tidy(span: str, answer_type: str) -> str | None:
    """Post-process an extracted span by type: a choice span becomes its letter; a numeric
    span that is prose around a number ("5 (since 2+3=5)") becomes its first number."""
    span = _clean_span(span)
    if not span:
        return None
    if answer_type == "choice":
        return _choice_letter(span) or span
    if answer_type in NUMERIC_TYPES:
        # "12 + 30 = 42" and "x = 5": the value is on the right of the last "=".
        tail = span.rsplit("=", 1)[1].strip() if "=" in span else span
        tail = tail.removeprefix("\\$").removeprefix("$").strip()
        if _to_number(tail) is not None and not _LETTERS.search(_FRAC_CMD.sub("", tail)):
            return tail
        numbers = _NUMBER.findall(tail)
        return numbers[0] if numbers else span
    return span


# ---------------------------------------------------------------------------------------------
# Normalisation and graders
# ---------------------------------------------------------------------------------------------

_LATEX_NOISE = re.compile(
    r"\\[,;:! ]|\\left|\\right|\{,\}|\\displaystyle|~|\^\s*\{?\\circ\}?|\u00b0"
)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}$")
_FRAC_SHORT = re.compile(r"^(-?)\\[dt]?frac\s*(\d)\s*(\d)$")  # \dfrac12
_NUM_CORE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?:/\d+)?$", re.IGNORECASE)
# Unit words / currency / percent that may trail or lead a number ("72 dollars", "$5", "5%").
_UNITS = re.compile(r"^(.*?\d\.?)\s*(?:%|[a-zA-Z][a-zA-Z. ]*)$")


@lru_cache(maxsize=1 << 16)  # references and common answers recur across many records
def _to_number(s: str | None) -> Fraction | None:
    """Exact value of a numeric answer string, tolerant of the ways people write numbers.

    Accepts commas as thousands separators, ``$``/``\\$``, ``%``, trailing unit words,
    ``x = 5``, leading zeros, trailing ``.0``, ``3/4`` and ``\\frac{3}{4}``. Fractions keep it
    exact, so 16-digit integers compare exactly (floats would not).
    """
    if s is None:
        return None
    t = _TEXT_CMD.sub(r" \1", s)
    t = _LATEX_NOISE.sub("", t).replace("\\$", "").replace("$", "").replace("\\%", "%")
    t = t.replace("\u2212", "-").strip().rstrip(".").strip()
    if "=" in t:  # "x = 5": the value is on the right
        t = t.rsplit("=", 1)[1].strip()
    m = _FRAC.match(t) or _FRAC_SHORT.match(t)
    if m:
        sign, num, den = m.groups()
        return None if int(den) == 0 else Fraction(int(num), int(den)) * (-1 if sign else 1)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t).replace(" ", "")
    m = _UNITS.match(t)
    if m and not _NUM_CORE.match(t):
        t = m.group(1)
    t = t.rstrip(".")
    if not _NUM_CORE.match(t):
        return None
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def _norm_string(s: str) -> str:
    """Normalised exact-match form: case, spacing, quotes and end punctuation don't count."""
    t = _TEXT_CMD.sub(r"\1", s)
    t = t.strip().strip("\"'`*").strip().rstrip(".!").strip().lower()
    return " ".join(t.split())


def _choice_letter(s: str) -> str | None:
    """Option letter in "B", "(B)", "b)", "Option B", "B. 42"; None when there is none."""
    t = _TEXT_CMD.sub(r"\1", s).strip().strip("*$").strip()
    t = re.sub(r"^(?:option|choice)\s*", "", t, flags=re.IGNORECASE)
    if len(t) == 1 and t.isalpha():
        return t.upper()
    m = re.match(r"^[(\[]?([A-Za-z])[)\]]?(?:$|[\s.:,)])", t)
    return m.group(1).upper() if m else None


def _norm_latex(s: str) -> str:
    """Cheap LaTeX canonical form for the string fast path before math-verify."""
    t = _LATEX_NOISE.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    t = t.replace("$", "").rstrip(".").strip()
    return "".join(t.split())


def canonical_answer(pred: str | None, answer_type: AnswerType | str) -> str | None:
    """A key under which equivalent answers collide (for majority voting), or None.

    Numbers map to their exact value (``"1,234.0"`` and ``"1234"`` give the same key); choice
    answers to their letter; strings to their normalised form; LaTeX to a whitespace-free form
    (a number when it is one). Equivalences only math-verify can see are not merged here.
    """
    if pred is None or (isinstance(pred, float) and math.isnan(pred)):
        return None
    pred = str(pred)
    if answer_type in NUMERIC_TYPES or answer_type == "math":
        value = _to_number(pred)
        if value is not None:
            return str(value)
        return _norm_latex(pred) if answer_type == "math" else _norm_string(pred)
    if answer_type == "choice":
        letter = _choice_letter(pred)
        return letter if letter is not None else _norm_string(pred)
    return _norm_string(pred)


def _mv_timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which only the main thread may set; elsewhere the
    library raises, so off the main thread we disable them (inputs are short extracted answers,
    capped in length, so a runaway parse is unlikely)."""
    return 5 if threading.current_thread() is threading.main_thread() else None


_MV_MAX_CHARS = 400  # longer "answers" are prose, not maths; don't hand them to sympy


@lru_cache(maxsize=1 << 16)
def _mv_parse(text: str, timeout: int | None) -> tuple:
    """math-verify's parse, cached: sympy parsing costs 10-100 ms, and the same reference (and
    many predictions) recur across samples and budgets."""
    from math_verify import parse  # imported lazily: it pulls in sympy (~1 s)

    try:
        # Wrapped in $...$ so the LaTeX extractor (not the plain-expression one) reads it:
        # bare "\dfrac12" or "(0,1]" parse to nothing or to the wrong object otherwise.
        return tuple(parse(f"${text}$", parsing_timeout=timeout))
    except Exception:  # sympy can raise nearly anything on odd input: unparsable
        return ()


def _math_verify(pred: str, reference: str) -> bool:
    from math_verify import verify

    if len(pred) > _MV_MAX_CHARS or len(reference) > _MV_MAX_CHARS:
        return False
    t = _mv_timeout()
    gold, target = _mv_parse(reference, t), _mv_parse(pred, t)
    if not gold or not target:
        return False
    try:
        return bool(verify(list(gold), list(target), timeout_seconds=t))
    except Exception:  # as above: an error in comparison means "not shown equal"
        return False


def _numbers_equal(a: Fraction, b: Fraction, answer_type: str) -> bool:
    if a == b:
        return True
    # "number" answers may be rounded decimals (0.333333 for 1/3); integers must be exact.
    return answer_type != "integer" and abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


def grade(pred: str | None, reference: str, answer_type: AnswerType | str) -> bool:
    """Whether `pred` (an extracted answer) is correct for `reference`.

    - integer/number: exact value after normalisation (commas, ``$``, units, ``.0``, leading
      zeros); "number" also accepts a relative error up to 1e-6;
    - math: normalised string equality, then numeric equality, then math-verify equivalence
      (``\\frac{1}{2}`` = ``0.5`` = ``\\dfrac12``; intervals, sets, tuples);
    - string: normalised exact match; choice: same option letter.
    """
    if pred is None or reference is None:
        return False
    if isinstance(pred, float) and math.isnan(pred):
        return False
    pred, reference = str(pred), str(reference)
    if answer_type in NUMERIC_TYPES:
        a, b = _to_number(pred), _to_number(reference)
        if a is not None and b is not None:
            return _numbers_equal(a, b, str(answer_type))
        return _norm_string(pred) == _norm_string(reference)
    if answer_type == "math":
        if _norm_latex(pred) == _norm_latex(reference):
            return True
        a, b = _to_number(pred), _to_number(reference)
        if a is not None and b is not None:
            return _numbers_equal(a, b, "number")
        return _math_verify(pred, reference)
    if answer_type == "choice":
        a, b = _choice_letter(pred), _choice_letter(reference)
        if a is not None and b is not None:
            return a == b
        return _norm_string(pred) == _norm_string(reference)
    return _norm_string(pred) == _norm_string(reference)


# ---------------------------------------------------------------------------------------------
# Token edit distance
# ---------------------------------------------------------------------------------------------


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two token id sequences (insert/delete/substitute = 1)."""
    off_a = np.array([0, len(a)])
    off_b = np.array([0, len(b)])
    return int(
        batch_edit_distance(np.asarray(a, np.int64), off_a, np.asarray(b, np.int64), off_b)[0]
    )


def _ceil_log2(x: np.ndarray) -> np.ndarray:
    return np.ceil(np.log2(np.maximum(x, 1))).astype(np.int64)


def _padded(vals: np.ndarray, starts: np.ndarray, lens: np.ndarray, width: int, fill: int):
    cols = np.arange(width)
    pos = starts[:, None] + cols[None, :]
    inside = cols[None, :] < lens[:, None]
    if vals.size == 0:
        return np.full(pos.shape, fill, dtype=np.int64)
    return np.where(inside, vals[np.minimum(pos, vals.size - 1)], fill)


def batch_edit_distance(
    a_vals: np.ndarray, a_off: np.ndarray, b_vals: np.ndarray, b_off: np.ndarray
) -> np.ndarray:
    """Levenshtein distance for every row of two ragged int arrays (values + offsets).

    Row-wise DP vectorised over rows: with ``tmp[j] = min(D[i-1][j] + 1, D[i-1][j-1] + cost)``
    the in-row recurrence ``D[i][j] = min(tmp[j], D[i][j-1] + 1)`` is a running minimum of
    ``tmp[k] + (j - k)``, i.e. ``cummin(tmp - k) + j``. Rows are bucketed by (power-of-two)
    lengths so padding costs at most 2x, and right-padding never reaches the cells we read.
    """
    la = np.diff(a_off).astype(np.int64)
    lb = np.diff(b_off).astype(np.int64)
    out = np.where(la == 0, lb, np.where(lb == 0, la, -1)).astype(np.int64)
    todo = np.nonzero(out < 0)[0]
    if todo.size == 0:
        return out
    # Loop over the shorter side: distance is symmetric and the Python loop runs once per
    # token of the looped side.
    swap = la[todo] > lb[todo]
    key = _ceil_log2(np.minimum(la[todo], lb[todo])) * 64 + _ceil_log2(
        np.maximum(la[todo], lb[todo])
    )
    key = key * 2 + swap
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    bounds = np.flatnonzero(np.diff(key_sorted)) + 1
    for group in np.split(todo[order], bounds):
        sw = bool(la[group[0]] > lb[group[0]])
        (xv, xo, xl), (yv, yo, yl) = (b_vals, b_off, lb), (a_vals, a_off, la)
        if not sw:
            (xv, xo, xl), (yv, yo, yl) = (a_vals, a_off, la), (b_vals, b_off, lb)
        # Chunk rows so each step touches a few MB at most.
        width_y = int(yl[group].max())
        step = max(1, 2_000_000 // (width_y + 1))
        for s in range(0, group.size, step):
            rows = group[s : s + step]
            out[rows] = _levenshtein_block(xv, xo[rows], xl[rows], yv, yo[rows], yl[rows], width_y)
    return out


def _levenshtein_block(xv, xs, xl, yv, ys, yl, width_y: int) -> np.ndarray:
    width_x = int(xl.max())
    x = _padded(xv, xs, xl, width_x, -1)
    y = _padded(yv, ys, yl, width_y, -2)
    j = np.arange(width_y + 1)
    prev = np.broadcast_to(j, (len(xs), width_y + 1)).copy()
    result = np.zeros(len(xs), dtype=np.int64)
    rows = np.arange(len(xs))
    tmp = np.empty_like(prev)
    for i in range(1, width_x + 1):
        cost = (x[:, i - 1 : i] != y).astype(np.int64)
        tmp[:, 0] = i
        np.minimum(prev[:, 1:] + 1, prev[:, :-1] + cost, out=tmp[:, 1:])
        cur = np.minimum.accumulate(tmp - j, axis=1) + j
        done = xl == i
        if done.any():
            result[done] = cur[rows[done], yl[done]]
        prev = cur
    return result


# ---------------------------------------------------------------------------------------------
# Ragged (list) columns
# ---------------------------------------------------------------------------------------------


class _Ragged:
    """A list column as flat values + per-row lengths; null rows have length 0 and valid=False."""

    def __init__(self, col: pd.Series | None, n: int, value_type: pa.DataType):
        if col is None:
            self.values = np.zeros(0, dtype=value_type.to_pandas_dtype())
            self.lengths = np.zeros(n, dtype=np.int64)
            self.valid = np.zeros(n, dtype=bool)
        else:
            arr = _as_arrow_list(col, value_type)
            self.valid = arr.is_valid().to_numpy(zero_copy_only=False)
            lengths = pc.fill_null(pc.list_value_length(arr), 0)
            self.lengths = lengths.to_numpy(zero_copy_only=False).astype(np.int64)
            flat = pc.list_flatten(arr)
            if flat.null_count:  # a null inside a list: count it as a miss / log p = 0
                flat = pc.fill_null(
                    flat, pa.scalar(0, value_type) if value_type != pa.bool_() else pa.scalar(False)
                )
            self.values = flat.to_numpy(zero_copy_only=False)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.parent = np.repeat(np.arange(n), self.lengths)
        self.n = n

    def sum(self, values: np.ndarray | None = None) -> np.ndarray:
        v = self.values if values is None else values
        return np.bincount(self.parent, weights=v.astype(np.float64), minlength=self.n)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.lengths > 0, self.sum() / self.lengths, np.nan)


def _as_arrow_list(col: pd.Series, value_type: pa.DataType) -> pa.Array:
    target = pa.list_(value_type)
    if isinstance(col.dtype, pd.ArrowDtype):
        arr = pa.array(col.array)
    else:
        # Python lists / numpy arrays / None / NaN as they come from json or hand-made frames.
        arr = pa.array(col.to_list(), type=target, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != target:
        arr = arr.cast(target)
    return arr


# ---------------------------------------------------------------------------------------------
# score_records / score_run / load_scores
# ---------------------------------------------------------------------------------------------

ID_COLUMNS = [
    "run_id", "model", "task", "problem_id", "sample", "seed", "budget", "extensions",
    "thinking_tokens", "natural_thinking_tokens", "cut", "prompt_tokens", "generated_tokens",
]  # fmt: skip
SCORE_COLUMNS = ID_COLUMNS + [
    "pred", "correct", "ref_len", "ref_logprob_sum", "ref_logprob_mean", "ref_prob",
    "ref_token_acc", "edit_distance", "answer_logprob_mean", "brier",
    "gold_think_acc", "gold_answer_acc", "gold_token_acc", "gold_answer_logprob",
    "gold_answer_len", "gold_think_len",
]  # fmt: skip


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


def score_records(
    df: pd.DataFrame, answer_type: AnswerType | str, pattern: str | None = None
) -> pd.DataFrame:
    """One score row per record (columns: `SCORE_COLUMNS`).

    `df` has the `SampleRecord` fields as columns; list fields may be Python lists or Arrow
    lists. Optional fields (choice_logprobs, gold_*) may be absent. ``ref_len`` (reference
    tokens) is kept because predicted exact match = per-token accuracy ** length needs it.
    """
    n = len(df)
    out = pd.DataFrame({c: df[c].to_numpy() if c in df else None for c in ID_COLUMNS})
    if n == 0:
        return pd.DataFrame(columns=SCORE_COLUMNS)

    answers = df["answer"].astype(object)
    pred = _map_unique(answers, lambda a: extract_answer(a, answer_type, pattern))
    out["pred"] = pd.Series(pred, dtype=object)

    # Grade each distinct (prediction, reference) pair once.
    p_codes, p_uniq = pd.factorize(out["pred"])
    r_codes, r_uniq = pd.factorize(df["reference"].astype(object))
    width = len(r_uniq) + 1
    pairs, inverse = np.unique((p_codes + 1) * width + (r_codes + 1), return_inverse=True)
    graded = np.array(
        [
            grade(
                p_uniq[pc_ - 1] if (pc_ := int(c) // width) > 0 else None,
                r_uniq[rc_ - 1] if (rc_ := int(c) % width) > 0 else None,
                answer_type,
            )
            for c in pairs
        ],
        dtype=bool,
    )
    out["correct"] = graded[inverse.reshape(-1)]

    ref_lp = _Ragged(df["ref_logprobs"], n, pa.float64())
    ref_hits = _Ragged(df["ref_hits"], n, pa.bool_())
    out["ref_len"] = ref_lp.lengths
    out["ref_logprob_sum"] = np.where(ref_lp.valid, ref_lp.sum(), np.nan)
    out["ref_logprob_mean"] = ref_lp.mean()
    out["ref_prob"] = np.exp(out["ref_logprob_sum"].to_numpy())
    out["ref_token_acc"] = ref_hits.mean()

    answer_ids = _Ragged(df["answer_ids"], n, pa.int64())
    ref_ids = _Ragged(df["ref_ids"], n, pa.int64())
    out["edit_distance"] = batch_edit_distance(
        answer_ids.values, answer_ids.offsets, ref_ids.values, ref_ids.offsets
    )
    out["answer_logprob_mean"] = _Ragged(df["answer_logprobs"], n, pa.float64()).mean()

    choice = _Ragged(df.get("choice_logprobs"), n, pa.float64())
    out["brier"] = _brier(choice, df["reference"].astype(object))

    think_hits = _Ragged(df.get("gold_think_hits"), n, pa.bool_())
    ans_hits = _Ragged(df.get("gold_answer_hits"), n, pa.bool_())
    ans_lp = _Ragged(df.get("gold_answer_logprobs"), n, pa.float64())
    gold = ans_hits.valid | think_hits.valid
    total = think_hits.lengths + ans_hits.lengths
    with np.errstate(invalid="ignore", divide="ignore"):
        out["gold_think_acc"] = np.where(think_hits.valid, think_hits.mean(), np.nan)
        out["gold_answer_acc"] = np.where(ans_hits.valid, ans_hits.mean(), np.nan)
        out["gold_token_acc"] = np.where(
            gold & (total > 0), (think_hits.sum() + ans_hits.sum()) / total, np.nan
        )
    out["gold_answer_logprob"] = np.where(ans_lp.valid, ans_lp.sum(), np.nan)
    out["gold_answer_len"] = np.where(ans_hits.valid, ans_hits.lengths, np.nan)
    out["gold_think_len"] = np.where(think_hits.valid, think_hits.lengths, np.nan)
    return out[SCORE_COLUMNS]


_FIELD_TYPES: dict[str, pa.DataType] = {
    "run_id": pa.string(), "model": pa.string(), "task": pa.string(),
    "problem_id": pa.string(), "sample": pa.int64(), "seed": pa.int64(),
    "budget": pa.int64(), "extensions": pa.int64(), "thinking_tokens": pa.int64(),
    "natural_thinking_tokens": pa.int64(), "cut": pa.bool_(), "thinking": pa.string(),
    "answer": pa.string(), "answer_ids": pa.list_(pa.int64()),
    "answer_logprobs": pa.list_(pa.float64()), "reference": pa.string(),
    "ref_ids": pa.list_(pa.int64()), "ref_logprobs": pa.list_(pa.float64()),
    "ref_hits": pa.list_(pa.bool_()), "prompt_tokens": pa.int64(),
    "generated_tokens": pa.int64(), "finish_reason": pa.string(), "time_s": pa.float64(),
    "choice_logprobs": pa.list_(pa.float64()),
    "gold_think_hits": pa.list_(pa.bool_()), "gold_think_logprobs": pa.list_(pa.float64()),
    "gold_answer_hits": pa.list_(pa.bool_()), "gold_answer_logprobs": pa.list_(pa.float64()),
}  # fmt: skip
assert set(_FIELD_TYPES) == {f.name for f in fields(SampleRecord)}, "types.py changed"
_SCHEMA = pa.schema(list(_FIELD_TYPES.items()))


def _arrow_lists_only(t: pa.DataType):
    return pd.ArrowDtype(t) if pa.types.is_list(t) else None


def read_samples(path: Path) -> pd.DataFrame:
    """samples.jsonl as a DataFrame (list fields as Arrow lists); unparsable lines are skipped.

    Fast path: Arrow's JSON reader over the whole file. A half-written trailing line (a run
    that is still going, or was killed) is dropped first; anything else the fast reader rejects
    (e.g. ``-Infinity`` log-probs) falls back to parsing line by line.
    """
    data = Path(path).read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        try:
            json.loads(data[cut + 1 :])
            data += b"\n"  # complete, just unterminated
        except ValueError:
            data = data[: cut + 1]  # half-written: drop it
    if not data.strip():
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _FIELD_TYPES})
    try:
        table = pj.read_json(
            io.BytesIO(data),
            parse_options=pj.ParseOptions(
                explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"
            ),
            read_options=pj.ReadOptions(block_size=1 << 24),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        rows = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        df = pd.DataFrame(rows)
        for name in _FIELD_TYPES:
            if name not in df:
                df[name] = None
        for name in ("run_id", "model", "task", "problem_id"):  # ids are strings everywhere
            df[name] = df[name].astype(str)
        return df
    return table.to_pandas(types_mapper=_arrow_lists_only)


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _answer_regex(manifest: dict) -> str | None:
    settings = manifest.get("settings") or {}
    return manifest.get("answer_regex") or settings.get("answer_regex")


def score_run(run_dir: Path) -> Path:
    """Score one run directory; writes and returns ``<run_dir>/scores.parquet``.

    The grader comes from the manifest's ``answer_type``; a task regex, if the manifest has
    ``answer_regex`` (top level or in settings), is tried first by the extractor.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    samples = read_samples(run_dir / "samples.jsonl")
    scores = score_records(
        samples, manifest.get("answer_type", "string"), pattern=_answer_regex(manifest)
    )
    table = pa.Table.from_pandas(scores, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_VERSION_KEY] = SCORES_VERSION.encode()
    out = run_dir / "scores.parquet"
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(out)  # atomic: a reader never sees half a file
    return out


def _is_stale(run_dir: Path) -> bool:
    scores, samples = run_dir / "scores.parquet", run_dir / "samples.jsonl"
    if not scores.exists():
        return True
    if samples.stat().st_mtime > scores.stat().st_mtime:
        return True
    meta = pq.read_schema(scores).metadata or {}
    return meta.get(_VERSION_KEY) != SCORES_VERSION.encode()


MANIFEST_COLUMNS = ("params", "family", "engine", "answer_type")


def load_scores(results_dir: Path) -> pd.DataFrame:
    """All runs' scores in one frame, scoring runs whose scores are missing or stale.

    `results_dir` is ``results/`` (runs under ``results/runs/``) or the runs folder itself.
    Adds the manifest columns params (float, NaN if unknown), family, engine, answer_type.
    """
    results_dir = Path(results_dir)
    runs_root = results_dir / "runs" if (results_dir / "runs").is_dir() else results_dir
    frames = []
    for run_dir in sorted(p for p in runs_root.iterdir() if (p / "samples.jsonl").exists()):
        if _is_stale(run_dir):
            score_run(run_dir)
        scores = pd.read_parquet(run_dir / "scores.parquet")
        manifest = read_manifest(run_dir)
        params = manifest.get("params")
        scores["params"] = float(params) if params is not None else np.nan
        scores["family"] = manifest.get("family") or manifest.get("model") or run_dir.name
        scores["engine"] = manifest.get("engine")
        scores["answer_type"] = manifest.get("answer_type", "string")
        sweep = (manifest.get("settings") or {}).get("sweep") or {}
        scores["temperature"] = float(sweep.get("temperature") or 0.0)
        frames.append(scores)
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS + list(MANIFEST_COLUMNS))
    return pd.concat(frames, ignore_index=True)
