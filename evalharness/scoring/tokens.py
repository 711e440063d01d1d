"""Token-level metrics over ragged (list) columns: edit distance, sums and means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


