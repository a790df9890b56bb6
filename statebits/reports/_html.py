"""HTML building blocks of the report: tables, chart figures and the page.

Everything here produces self-contained markup: styles are inline in the
page, charts are inline SVG, and nothing refers to another host, so a report
opens without a network.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["escape", "format_value", "format_time", "table_html", "facts_html", "chart_figure", "svg_of", "page_html"]

# Namespace declarations are the only URLs in vl-convert's SVG output. Inline
# SVG in an HTML page takes its namespaces from the HTML parser, so they are
# removed and the report then contains no URL at all.
_SVG_NAMESPACES = re.compile(r'\s+xmlns(?::xlink)?="http://www\.w3\.org/[^"]*"')

_STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bad: #b42318; --good: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
header, main, footer { max-width: 1040px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 20px 0 4px; }
.meta, .note, figcaption { color: var(--muted); font-size: 0.9em; }
nav ul { list-style: none; padding: 0; margin: 12px 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a, a { color: #0969da; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.9em; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.status-ok { color: var(--good); font-weight: 600; }
.status-failed { color: var(--bad); font-weight: 600; }
figure { margin: 12px 0 20px; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
footer { margin-top: 40px; padding-bottom: 24px; border-top: 1px solid var(--line); }
@media print { nav { display: none; } figure { break-inside: avoid; } }
"""


def escape(text: Any) -> str:
    """Escape any value for use as HTML text or as an attribute value."""
    return html.escape(str(text), quote=True)


def format_value(value: Any) -> str:
    """Format a cell value as short plain text; missing values become an empty string."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value)
    if isinstance(value, np.ndarray):
        return ", ".join(format_value(item) for item in value.tolist())
    return str(value)


def format_time(value: Any, tz: tzinfo | str | None = None) -> str:
    """Format a timestamp as ``YYYY-MM-DD HH:MM:SS`` plus its zone; missing times become ''."""
    if value is None or value is pd.NaT:
        return ""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        return ""
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    stamp = stamp.tz_convert(tz or "UTC")
    text = stamp.strftime("%Y-%m-%d %H:%M:%S")
    if stamp.microsecond:
        text += f".{stamp.microsecond:06d}".rstrip("0")
    return f"{text} {stamp.tzname()}"


def table_html(
    frame: pd.DataFrame,
    *,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    index: bool = False,
    caption: str = "",
) -> str:
    """Render a frame as an HTML table, escaping every cell.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to show; callers cut long frames first.
    formats : mapping of column name to callable, optional
        Formatter per column, returning plain text. Other columns use
        :func:`format_value`, or :func:`format_time` for datetime columns.
    index : bool, default=False
        Whether to show the index as the first column.
    caption : str, default=""
        Plain text shown under the table.
    """
    formats = dict(formats or {})
    if index:
        frame = frame.reset_index()
    numeric = {name for name in frame.columns if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name])}
    times = {name for name in frame.columns if isinstance(frame[name].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(frame[name])}

    header = "".join(f"<th>{escape(name)}</th>" for name in frame.columns)
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for name, value in zip(frame.columns, record):
            if name in formats:
                text = formats[name](value)
            elif name in times:
                text = format_time(value)
            else:
                text = format_value(value)
            css = ""
            if name in numeric:
                css = ' class="number"'
            elif name in times:
                css = ' class="time"'
            cells.append(f"<td{css}>{escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    note = f'<p class="note">{escape(caption)}</p>' if caption else ""
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"


def facts_html(facts: Iterable[tuple[str, str]], *, raw: bool = False) -> str:
    """Render (label, text) pairs as a definition list; ``raw=True`` trusts the texts as HTML."""
    items = "".join(f"<dt>{escape(label)}</dt><dd>{text if raw else escape(text)}</dd>" for label, text in facts)
    return f'<dl class="facts">{items}</dl>'


def svg_of(chart: Any) -> str:
    """Render an Altair chart or a Vega-Lite spec to inline SVG with vl-convert, without a network."""
    from statebits.charts import chart_to_svg

    # ARIA descriptions repeat every tooltip in the markup and about double the size of the SVG.
    if hasattr(chart, "configure"):
        chart = chart.configure(aria=False)
    svg = chart_to_svg(chart)
    return _SVG_NAMESPACES.sub("", svg)


def chart_figure(chart: Any, caption: str = "") -> str:
    """Render a chart as an HTML figure holding inline SVG and an optional caption."""
    svg = svg_of(chart)
    if caption:
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(caption)}" ', 1)
        return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
    return f"<figure>{svg}</figure>"


def page_html(title: str, subtitle: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """Assemble the standalone page from (anchor, heading, body HTML) triples."""
    links = "".join(f'<li><a href="#{escape(anchor)}">{escape(heading)}</a></li>' for anchor, heading, _ in sections)
    bodies = "\n".join(
        f'<section id="{escape(anchor)}">\n<h2>{escape(heading)}</h2>\n{body}\n</section>' for anchor, heading, body in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<header>\n<h1>{escape(title)}</h1>\n<p class="meta">{escape(subtitle)}</p>\n<nav><ul>{links}</ul></nav>\n</header>\n'
        f"<main>\n{bodies}\n</main>\n"
        f'<footer><p class="meta">{escape(footer)}</p></footer>\n'
        "</body>\n</html>\n"
    )


def is_datetime(values: pd.Series) -> bool:
    """Return whether ``values`` has a datetime dtype, with or without a zone."""
    return isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values)


def slug(text: str) -> str:
    """Turn a heading into an HTML id such as ``biggest-changes``."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned or "section"


def now_utc() -> datetime:
    """Return the statebits clock's current time, so a fixed clock makes reports reproducible."""
    from statebits.core.clock import from_ns, now_ns

    return from_ns(now_ns())
