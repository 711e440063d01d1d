"""Formatting and the blocks a report section is made of (`Table`, `Paragraph`, `Bullets`),
each rendered to both HTML and Markdown, plus the data helpers every topic module shares."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence

import pandas as pd

from evalharness import plots as pl

# ----------------------------------------------------------------------------- formatting


def _num(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def fmt_num(v, digits: int = 3) -> str:
    v = _num(v)
    if not math.isfinite(v):
        return "–"
    if v == 0:
        return f"{0:.{digits}f}"  # also -0.0
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}"


def fmt_pct(v, digits: int = 1) -> str:
    v = _num(v)
    return f"{100 * v:.{digits}f}%" if math.isfinite(v) else "–"


def fmt_ci(v, lo, hi, f: Callable = fmt_num) -> str:
    """``v [lo, hi]`` (the CI part only where both bounds are finite)."""
    s = f(v)
    if math.isfinite(_num(lo)) and math.isfinite(_num(hi)):
        s += f" [{f(lo)}, {f(hi)}]"
    return s


def fmt_pts(v) -> str:
    """A share difference in percentage points: ``0.143`` -> ``+14.3``."""
    v = _num(v)
    return f"{100 * v:+.1f}" if math.isfinite(v) else "–"


def fmt_flops(v) -> str:
    v = _num(v)
    return f"{v:.3g}" if math.isfinite(v) else "–"


def esc(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


# ----------------------------------------------------------------------------- tables


class Table:
    """A small table rendered to both HTML and Markdown (cells are already-formatted text)."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[object]],
                 numeric: Iterable[int] = (), caption: str = "", note: str = ""):
        self.columns = list(columns)
        self.rows = [[("" if c is None else str(c)) for c in r] for r in rows]
        self.numeric = set(numeric)
        self.caption = caption
        self.note = note

    def __len__(self) -> int:
        return len(self.rows)

    def html(self) -> str:
        def cls(i: int) -> str:
            return ' class="num"' if i in self.numeric else ""

        head = "".join(f"<th{cls(i)}>{esc(c)}</th>" for i, c in enumerate(self.columns))
        body = "\n".join(
            "<tr>" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>"
            for r in self.rows
        )
        cap = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        note = f'<p class="note">{esc(self.note)}</p>' if self.note else ""
        return (
            f'<div class="tablewrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>{note}"
        )

    def markdown(self) -> str:
        def cell(c: str) -> str:
            return c.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

        align = ["---:" if i in self.numeric else ":---" for i in range(len(self.columns))]
        lines = [
            "| " + " | ".join(cell(c) for c in self.columns) + " |",
            "| " + " | ".join(align) + " |",
        ]
        lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in self.rows]
        out = "\n".join(lines)
        if self.caption:
            out = f"**{self.caption}**\n\n" + out
        if self.note:
            out += f"\n\n_{self.note}_"
        return out

class Paragraph:
    """Plain text that sits among a section's tables (same interface as `Table`)."""

    def __init__(self, text: str, note: str = ""):
        self.text, self.note = text, note

    def __len__(self) -> int:
        return 1 if self.text else 0

    def html(self) -> str:
        note = f'<p class="note">{esc(self.note)}</p>' if self.note else ""
        return f"<p>{esc(self.text)}</p>{note}"

    def markdown(self) -> str:
        return self.text + (f"\n\n_{self.note}_" if self.note else "")


class Bullets:
    """Warning lines among a section's tables (same interface as `Table`)."""

    def __init__(self, lines: Sequence[str], prefix: str = "warning: "):
        self.lines, self.prefix = list(lines), prefix

    def __len__(self) -> int:
        return len(self.lines)

    def html(self) -> str:
        items = "".join(f"<li>{esc(self.prefix + s)}</li>" for s in self.lines)
        return f'<ul class="warn">{items}</ul>'

    def markdown(self) -> str:
        return "\n".join(f"- {self.prefix}{s}" for s in self.lines)


def fmt_pts_raw(v) -> str:
    v = _num(v)
    return f"{v:+.1f}" if math.isfinite(v) else "–"



def _params_map(an) -> dict[str, float]:
    return pl.analysis_params(an)


def _order(models: Iterable[str], params: dict[str, float]) -> list[str]:
    return sorted(set(models), key=lambda m: (pl.finite_or(params.get(m), math.inf), m))


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df else df


def _task(df: pd.DataFrame, task: str) -> pd.DataFrame:
    return df[df["task"] == task] if not df.empty and "task" in df else df.iloc[0:0]


def _ext_tag(row) -> str:
    e = row.get("extensions", 0) if hasattr(row, "get") else 0
    return f" (+{int(e)} Wait)" if _num(e) > 0 else ""

