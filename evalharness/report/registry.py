"""The one registry of report sections.

A section is a title, a place in the page (`order`), the figure kinds it shows and a function
``(analysis, task) -> blocks`` (Table / Paragraph / Bullets). Optional parts put it on the
task's first screen (`lead`: verdict sentences, `lead_figure`: its first figure goes beside
them) and in summary.md (`summary`: the few blocks short enough for it, `csvs`: the analysis
tables that hold its details). Adding a section to the report is one decorated function::

    @section("Repeated sampling (best-of-N)", order=30, figures=("pass_maj_at_k",),
             csvs=("coverage", "coverage_fits"))
    def _sampling(an, task):
        return [sampling_table(an, task)]

The page and the summary are rendered from `sections()` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Build = Callable[[Any, str], list]  # (analysis, task) -> blocks with .html()/.markdown()/len()
Lead = Callable[[Any, str], list[str]]  # (analysis, task) -> verdict sentences


@dataclass(frozen=True)
class Section:
    title: str
    order: float
    build: Build
    figures: tuple[str, ...] = ()
    lead: Lead | None = None
    lead_figure: bool = False
    summary: Build | None = None
    csvs: tuple[str, ...] = ()


_SECTIONS: dict[str, Section] = {}


def section(title: str, *, order: float, figures: tuple[str, ...] = (), lead: Lead | None = None,
            lead_figure: bool = False, summary: Build | None = None,
            csvs: tuple[str, ...] = ()) -> Callable[[Build], Build]:
    """Register the decorated ``(analysis, task) -> blocks`` function as a report section
    (registering a title again replaces it, so a module reload does not duplicate it)."""

    def register(build: Build) -> Build:
        _SECTIONS[title] = Section(title, order, build, tuple(figures), lead, lead_figure,
                                   summary, tuple(csvs))
        return build

    return register


def unregister(title: str) -> None:
    _SECTIONS.pop(title, None)


def sections() -> list[Section]:
    """Every registered section in page order."""
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.title))
