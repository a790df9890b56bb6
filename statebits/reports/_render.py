"""render_report: a standalone HTML report of statebit histories."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from statebits.core.errors import ValidationError
from statebits.reports._data import ReportData, Section, build_report_data
from statebits.reports._html import format_time, page_html, slug
from statebits.reports._sections import DEFAULT_SECTIONS

__all__ = ["render_report", "SectionFunction"]

SectionFunction = Callable[[ReportData], "Section | None"]


def render_report(
    data: Any,
    title: str = "statebits report",
    path: str | os.PathLike[str] | None = None,
    *,
    sections: Sequence[SectionFunction] | None = None,
    source: str = "",
    tz: str | None = None,
    max_points: int = 2000,
    max_timelines: int = 8,
    top_changes: int = 10,
    progress: bool = False,
) -> str:
    """Render histories as a standalone HTML report that opens without a network.

    The report has an overview, the integrity result of every hash chain, a
    summary per identity, a timeline chart per identity, the biggest changes
    with their reasons, and the most frequent reasons. Charts are inline SVG
    rendered by vl-convert; the page loads no script, style sheet, font or
    image from anywhere else.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        The histories. A frame needs at least ``timestamp`` and ``to_value``;
        its chains are verified when it has a ``checksum`` column.
    title : str, default="statebits report"
        Title of the page.
    path : str or path-like, optional
        File to write the report to, as UTF-8. Its folder must exist.
    sections : sequence of callables, optional
        Section functions, called in order with the :class:`ReportData`; each
        returns a :class:`Section` or None to be left out. Defaults to
        :data:`DEFAULT_SECTIONS`.
    source : str, default=""
        Where the data came from, shown in the overview (such as a file name).
    tz : str, optional
        IANA time zone for times in tables and charts; None shows UTC.
    max_points : int, default=2000
        Maximum transitions drawn per timeline. Longer histories are
        downsampled, and each chart's subtitle states how many it draws.
    max_timelines : int, default=8
        Number of identities, those with the most transitions, that get a
        timeline chart.
    top_changes : int, default=10
        Rows of the biggest-changes table.
    progress : bool, default=False
        Show a progress bar on stderr while charts are rendered.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ValidationError
        For invalid input or options, or a section that does not return a
        Section or None.

    Examples
    --------
    >>> import statebits
    >>> from statebits.reports import render_report
    >>> sb = statebits.Statebit("pump_state", "off", created_at="2024-05-01")
    >>> _ = sb.transition("on", "pressure low", timestamp="2024-05-01T06:00:00Z")
    >>> page = render_report(sb, title="Pump")
    >>> page.startswith("<!DOCTYPE html>")
    True
    """
    functions = tuple(DEFAULT_SECTIONS if sections is None else sections)
    for function in functions:
        if not callable(function):
            raise ValidationError(f"invalid section {function!r}: expected a function that takes ReportData and returns a Section or None")

    report = build_report_data(
        data,
        title=title,
        source=source,
        tz=tz,
        max_points=max_points,
        max_timelines=max_timelines,
        top_changes=top_changes,
        progress=progress,
    )

    rendered: list[tuple[str, str, str]] = []
    used: set[str] = set()
    for function in functions:
        section = function(report)
        if section is None:
            continue
        if not isinstance(section, Section):
            name = getattr(function, "__name__", repr(function))
            raise ValidationError(f"section function {name} returned {type(section).__name__}; expected a Section or None")
        anchor = _unique_anchor(section.anchor or slug(section.title), used)
        rendered.append((anchor, section.title, section.body))

    from statebits import __version__

    generated = format_time(report.generated_at.replace(microsecond=0), tz)
    subtitle = f"Generated {generated} by statebits {__version__}"
    footer = (
        "This report is a single file: its charts are inline SVG and it loads nothing from the network. "
        "Times are UTC unless stated otherwise."
    )
    page = page_html(title, subtitle, rendered, footer)
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page


def _unique_anchor(anchor: str, used: set[str]) -> str:
    candidate = anchor
    number = 2
    while candidate in used:
        candidate = f"{anchor}-{number}"
        number += 1
    used.add(candidate)
    return candidate
