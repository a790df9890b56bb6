"""The default sections of a report.

A section function takes the :class:`ReportData` of a report and returns a
:class:`Section`, or None to leave the section out. ``render_report`` calls
them in order, so a new section (anomalies, forecasts) is one more function
in the list.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from statebits.charts import describe_duration
from statebits.reports._anomalies import anomalies_section
from statebits.reports._data import ReportData, Section
from statebits.reports._html import chart_figure, escape, facts_html, format_time, format_value, table_html

__all__ = [
    "overview_section",
    "integrity_section",
    "summary_section",
    "timelines_section",
    "changes_section",
    "reasons_section",
    "DEFAULT_SECTIONS",
    "POINTS_UP_TO",
    "MAX_TABLE_ROWS",
]

#: Histories with more transitions than this are drawn as a line without a
#: point per transition, because each point adds about 200 bytes of SVG.
POINTS_UP_TO = 500

#: Rows shown in the per-identity tables before the rest is summarised in a note.
MAX_TABLE_ROWS = 100


def overview_section(report: ReportData) -> Section:
    """Summarise the input: statebits, transitions, time span, integrity and source."""
    frame = report.frame
    facts: list[tuple[str, str]] = []
    if report.source:
        facts.append(("source", escape(report.source)))
    facts.append(("statebits", escape(f"{len(report.identities):,}")))
    facts.append(("transitions", escape(f"{len(frame):,}")))
    if len(frame):
        first, last = frame["timestamp"].min(), frame["timestamp"].max()
        # Python datetimes, because spans of over 292 years overflow a nanosecond Timedelta.
        seconds = (last.floor("us").to_pydatetime() - first.floor("us").to_pydatetime()).total_seconds()
        span = describe_duration(seconds) if last > first else "a single instant"
        facts.append(("time span", escape(f"{format_time(first, report.tz)} to {format_time(last, report.tz)} ({span})")))
    branches = frame["branch"].fillna("main").astype(str).nunique() if len(frame) else 0
    if branches > 1:
        facts.append(("branches", escape(f"{branches:,}")))
    facts.append(("integrity", _integrity_status(report)))
    return Section("Overview", facts_html(facts, raw=True), anchor="overview")


def integrity_section(report: ReportData) -> Section:
    """List the result of verifying each hash chain, failures first."""
    if report.integrity is None:
        body = f'<p><span class="status-failed">Not verified</span>: {escape(report.integrity_note)}.</p>'
        return Section("Integrity", body, anchor="integrity")

    results = pd.DataFrame(
        {
            "identity": [item.identity for item in report.integrity],
            "transitions checked": [item.checked for item in report.integrity],
            "result": ["verified" if item.ok else item.message for item in report.integrity],
        }
    )
    results["_failed"] = [not item.ok for item in report.integrity]
    results = results.sort_values(["_failed", "identity"], ascending=[False, True], kind="stable").drop(columns="_failed")
    failed = sum(not item.ok for item in report.integrity)
    checked = sum(item.checked for item in report.integrity)

    if failed:
        lead = (
            f'<p><span class="status-failed">{failed:,} of {count(len(report.integrity), "chain")} failed verification.</span> '
            "A failed chain means a transition at or before the step shown was changed after it was recorded.</p>"
        )
    else:
        lead = (
            f'<p><span class="status-ok">{_all(len(report.integrity), "chain")} verified</span> '
            f"({count(checked, 'transition')}): every SHA-256 checksum matches the recorded fields and the checksum before it.</p>"
        )
    return Section("Integrity", lead + _limited_table(results, "chains"), anchor="integrity")


def summary_section(report: ReportData) -> Section:
    """Tabulate each identity: transitions, first and last time, last value, range and confidence."""
    frame = report.frame
    if not len(frame):
        return Section("Summary", "<p>The input has no transitions.</p>", anchor="summary")

    grouped = frame.groupby("identity", sort=True)
    table = pd.DataFrame({"transitions": grouped.size(), "first": grouped["timestamp"].min(), "last": grouped["timestamp"].max()})
    # groupby.last() would skip missing values; the last row is the current value.
    table["last value"] = frame.drop_duplicates("identity", keep="last").set_index("identity")["to_value"]
    numbers = numeric_values(frame["to_value"])
    if numbers is not None:
        by_identity = numbers.groupby(frame["identity"], sort=True)
        table["min"] = by_identity.min()
        table["max"] = by_identity.max()
        table["mean"] = by_identity.mean()
    table["mean confidence"] = pd.to_numeric(frame["confidence"], errors="coerce").groupby(frame["identity"], sort=True).mean()
    table["reasons"] = grouped["reason"].nunique()
    if frame["branch"].nunique() > 1:
        table["branches"] = grouped["branch"].nunique()

    formats = {"first": lambda value: format_time(value, report.tz), "last": lambda value: format_time(value, report.tz)}
    return Section("Summary", _limited_table(table, "identities", index=True, formats=formats), anchor="summary")


def timelines_section(report: ReportData) -> Section:
    """Draw an overview of all identities and one value-over-time chart per identity."""
    from statebits.charts import collection_chart, timeline_chart

    frame = report.frame
    if not len(frame) or report.max_timelines == 0:
        return Section("Timelines", "<p>No timelines drawn.</p>", anchor="timelines")

    parts: list[str] = [
        f'<p class="note">Times are shown in {escape(report.tz or "UTC")}. Histories longer than '
        f"{report.max_points:,} transitions are downsampled to the lowest and highest value per time bucket "
        f"(the first and last transition for non-numeric values), and each chart's subtitle says how many "
        f"transitions it draws. Histories longer than {POINTS_UP_TO:,} transitions are drawn as a line "
        "without a point per transition.</p>"
    ]

    counts = frame["identity"].value_counts()
    if len(counts) > report.max_timelines:
        overview = collection_chart(frame, tz=report.tz, title="Transitions per identity over time", width=720)
        parts.append(chart_figure(overview, "Number of transitions per identity and time bucket."))

    # Identities with the most transitions first; ties in identity order.
    ranked = sorted(counts.index.tolist(), key=lambda identity: (-int(counts[identity]), identity))
    chosen = sorted(ranked[: report.max_timelines])
    if len(ranked) > len(chosen):
        parts.append(
            f'<p class="note">Timelines are drawn for the {len(chosen):,} identities with the most transitions; '
            f"the other {len(ranked) - len(chosen):,} are listed in the summary.</p>"
        )

    identities = frame["identity"]
    for identity in report.iterate(chosen, "timelines"):
        rows = frame[identities == identity]
        parts.append(f"<h3>{escape(identity)}</h3>")
        caption = f"Value of {identity} over time, {len(rows):,} transitions."

        # A missing number has no place on a value axis, so such rows are left
        # out of the chart and counted in its caption.
        numbers = numeric_values(rows["to_value"])
        if numbers is not None and numbers.isna().any():
            missing = int(numbers.isna().sum())
            rows = rows[numbers.notna()]
            caption += f" {count(missing, 'transition')} with a missing value not drawn."
        if not len(rows):
            parts.append(f'<p class="note">{escape(caption)}</p>')
            continue

        chart = timeline_chart(rows, tz=report.tz, max_points=report.max_points, title=identity, width=720, height=220)
        if len(rows) > POINTS_UP_TO:
            chart = _line_only(chart)
        parts.append(chart_figure(chart, caption))
    return Section("Timelines", "\n".join(parts), anchor="timelines")


def changes_section(report: ReportData) -> Section:
    """List the largest changes of numeric values with their reasons, or the latest transitions otherwise."""
    frame = report.frame
    if not len(frame) or report.top_changes == 0:
        return Section("Biggest changes", "<p>No transitions.</p>", anchor="biggest-changes")

    before = previous_values(frame)
    after = numeric_values(frame["to_value"])
    before_numbers = numeric_values(before)
    formats = {"time": lambda value: format_time(value, report.tz)}
    if after is None or before_numbers is None or before_numbers.isna().all():
        latest = frame.tail(report.top_changes).iloc[::-1]
        table = pd.DataFrame(
            {
                "identity": latest["identity"],
                "step": latest["step"],
                "time": latest["timestamp"],
                "from": before.loc[latest.index].map(format_value),
                "to": latest["to_value"].map(format_value),
                "reason": latest["reason"],
                "confidence": latest["confidence"],
            }
        )
        lead = "<p>The values are not numeric, so changes have no size; these are the latest transitions.</p>"
        return Section("Biggest changes", lead + table_html(table, formats=formats), anchor="biggest-changes")

    change = after - before_numbers
    known = change.dropna()
    # Identities measured on different scales are compared in standard
    # deviations of their own changes. With one identity this gives the same
    # order as the absolute change, which is then used directly.
    spread = known.groupby(frame.loc[known.index, "identity"]).transform("std")
    spread = spread.where(spread > 0)
    size = (known.abs() / spread).fillna(0.0)
    several = frame["identity"].nunique() > 1
    ranking = size if several else known.abs()
    # Largest first; equal sizes keep time order.
    top = ranking.sort_values(ascending=False, kind="stable").head(report.top_changes).index
    rows = frame.loc[top]
    columns = {
        "identity": rows["identity"],
        "step": rows["step"],
        "time": rows["timestamp"],
        "from": before_numbers.loc[top],
        "to": after.loc[top],
        "change": change.loc[top],
    }
    if several:
        columns["std devs"] = size.loc[top].round(1)
    columns["reason"] = rows["reason"]
    columns["confidence"] = rows["confidence"]
    table = pd.DataFrame(columns)
    measure = (
        "the largest change measured in standard deviations of each identity's own changes"
        if several
        else "the largest absolute change of value"
    )
    lead = f"<p>The {len(table):,} transitions with {measure}, out of {len(known):,} with a numeric value before and after.</p>"
    return Section("Biggest changes", lead + table_html(table, formats=formats), anchor="biggest-changes")


def reasons_section(report: ReportData) -> Section | None:
    """Count the most frequent reasons; left out when the input has no transitions."""
    frame = report.frame
    if not len(frame):
        return None
    counts = frame["reason"].fillna("").astype(str).value_counts()
    shown = counts.head(MAX_TABLE_ROWS // 5)
    table = pd.DataFrame(
        {
            "reason": shown.index,
            "transitions": shown.to_numpy(),
            "share": [f"{count / len(frame):.1%}" for count in shown.to_numpy()],
        }
    )
    note = f"The {len(shown):,} most frequent of {len(counts):,} distinct reasons." if len(counts) > len(shown) else ""
    return Section("Reasons", table_html(table, caption=note), anchor="reasons")


#: The sections of a report, in order. Pass a changed list as
#: ``render_report(..., sections=[*DEFAULT_SECTIONS, my_section])``.
DEFAULT_SECTIONS = (
    overview_section,
    integrity_section,
    summary_section,
    timelines_section,
    changes_section,
    anomalies_section,
    reasons_section,
)


# -- helpers --------------------------------------------------------------------


def numeric_values(values: pd.Series) -> pd.Series | None:
    """Return ``values`` as float64 when every present value is a number, else None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    present = values.notna()
    if not present.any():
        return None
    if values[present].map(lambda value: isinstance(value, bool)).any():
        return None
    converted = pd.to_numeric(values, errors="coerce")
    if converted[present].isna().any():
        return None
    return converted.astype("float64")


def previous_values(frame: pd.DataFrame) -> pd.Series:
    """Return the value before each transition: ``from_value``, or the previous ``to_value`` of the same series."""
    if "from_value" in frame.columns:
        return frame["from_value"]
    ordered = frame.sort_values(["identity", "branch", "step"], kind="stable")
    return ordered.groupby(["identity", "branch"], sort=False)["to_value"].shift().reindex(frame.index)


def count(number: int, noun: str) -> str:
    """Format a count with its noun, such as '1 chain' or '2,000 chains'."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _all(number: int, noun: str) -> str:
    return f"The {noun}" if number == 1 else f"All {number:,} {noun}s"


def _integrity_status(report: ReportData) -> str:
    if report.integrity is None:
        return f'<span class="status-failed">not verified</span>: {escape(report.integrity_note)}'
    checked = sum(item.checked for item in report.integrity)
    failed = [item for item in report.integrity if not item.ok]
    if not failed:
        return f'<span class="status-ok">verified</span>: {count(len(report.integrity), "chain")}, {count(checked, "transition")}'
    first = failed[0]
    return (
        f'<span class="status-failed">failed</span>: {len(failed):,} of {count(len(report.integrity), "chain")}; '
        f"{escape(first.identity)} first differs at step {escape(first.first_bad_step)}"
    )


def _limited_table(table: pd.DataFrame, noun: str, *, index: bool = False, formats: dict[str, Any] | None = None) -> str:
    shown = table.head(MAX_TABLE_ROWS)
    note = f"First {len(shown):,} of {len(table):,} {noun}." if len(table) > len(shown) else ""
    return table_html(shown, index=index, formats=formats, caption=note)


def _line_only(chart: Any) -> Any:
    """Keep only the step line of a timeline chart, so long histories stay small as SVG."""
    layers = getattr(chart, "layer", None)
    if not layers:
        return chart
    lines = [layer for layer in layers if getattr(layer, "name", None) == "steps"]
    if not lines:
        return chart
    copy = chart.copy(deep=False)
    copy.layer = lines
    return copy
