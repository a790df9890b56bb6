"""Standalone HTML reports of statebit histories.

:func:`render_report` builds one HTML file with inline SVG charts that opens
without a network. A report is a list of section functions; each takes the
:class:`ReportData` and returns a :class:`Section` or None, so adding a
section is adding a function:

>>> from statebits.reports import DEFAULT_SECTIONS, Section, escape
>>> def rows_section(report):
...     return Section("Rows", f"<p>{escape(len(report.frame))} transitions</p>")
>>> sections = [*DEFAULT_SECTIONS, rows_section]
"""

from statebits.reports._data import ChainCheck, ReportData, Section
from statebits.reports._html import chart_figure, escape, format_time, format_value, table_html
from statebits.reports._render import SectionFunction, render_report
from statebits.reports._sections import (
    DEFAULT_SECTIONS,
    changes_section,
    integrity_section,
    overview_section,
    reasons_section,
    summary_section,
    timelines_section,
)

__all__ = [
    "render_report",
    "ReportData",
    "Section",
    "ChainCheck",
    "SectionFunction",
    "DEFAULT_SECTIONS",
    "overview_section",
    "integrity_section",
    "summary_section",
    "timelines_section",
    "changes_section",
    "reasons_section",
    "chart_figure",
    "table_html",
    "escape",
    "format_time",
    "format_value",
]
