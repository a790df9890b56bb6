"""Tests of statebits.reports.render_report on real bundled data."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import polars as pl
import pytest

import statebits
from statebits import datasets
from statebits.reports import DEFAULT_SECTIONS, ReportData, Section, escape, render_report

# Attributes through which a page can load or link a resource.
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background", "manifest"}


class _Collector(HTMLParser):
    """Collect tag names and URL-bearing attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))
            if name == "id":
                self.ids.append(value)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def assert_offline(page: str) -> None:
    """Assert that the page loads and links nothing outside itself."""
    collector = parse(page)
    for tag, name, value in collector.urls:
        assert value.startswith("#") or value.startswith("data:"), (tag, name, value)
    for tag in ("script", "link", "iframe", "object", "embed", "img", "base"):
        assert tag not in collector.tags, tag
    assert "@import" not in page
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)


def event_history(name: str) -> statebits.StatebitsCollection:
    frame = datasets.load(name)
    reason = "reading" if "weather" not in frame.columns else "weather: " + frame["weather"]
    return statebits.from_events(frame.assign(reason=reason), identity="identity", value="value", time="timestamp", reason="reason")


@pytest.fixture(scope="module")
def seattle():
    with statebits.use_clock(statebits.TickingClock("2024-01-01T00:00:00Z", step="1s")):
        return event_history("seattle_weather")


@pytest.fixture(scope="module")
def seattle_page(seattle):
    with statebits.use_clock(statebits.TickingClock("2024-06-01T12:00:00Z", step="1s")):
        return render_report(seattle, title="Seattle weather", source="seattle_weather")


def test_report_is_standalone_html(seattle_page):
    assert seattle_page.startswith("<!DOCTYPE html>")
    assert "<title>Seattle weather</title>" in seattle_page
    assert seattle_page.rstrip().endswith("</html>")


def test_report_has_no_network_references(seattle_page):
    assert_offline(seattle_page)
    assert "http://" not in seattle_page
    assert "https://" not in seattle_page


def test_report_has_inline_svg_timelines(seattle_page):
    assert seattle_page.count("<svg") >= 4
    for identity in ("precipitation", "temp_max", "temp_min", "wind"):
        assert f"<h3>{identity}</h3>" in seattle_page


def test_report_sections_in_order(seattle_page):
    ids = parse(seattle_page).ids
    expected = ["overview", "integrity", "summary", "timelines", "biggest-changes", "reasons"]
    assert [anchor for anchor in ids if anchor in expected] == expected
    for anchor in expected:
        assert f'href="#{anchor}"' in seattle_page


def test_report_integrity_verified(seattle_page):
    assert "All 4 chains verified" in seattle_page
    assert "5,844 transitions" in seattle_page


def test_report_summary_values(seattle_page):
    # temp_max ranges from -1.6 to 35.6 degrees C over 2012-2015.
    summary = seattle_page.split('id="summary"')[1].split("</section>")[0]
    assert "<td>temp_max</td>" in summary
    assert ">-1.6<" in summary
    assert ">35.6<" in summary
    assert "2012-01-01 00:00:00 UTC" in summary


def test_report_biggest_changes_have_reasons(seattle_page):
    changes = seattle_page.split('id="biggest-changes"')[1].split("</section>")[0]
    assert changes.count("<tr>") == 11  # header and ten rows
    assert "weather: " in changes
    assert "standard deviations" in changes


def test_report_deterministic_under_fixed_clock(seattle, seattle_page):
    with statebits.use_clock(statebits.TickingClock("2024-06-01T12:00:00Z", step="1s")):
        again = render_report(seattle, title="Seattle weather", source="seattle_weather")

    assert again == seattle_page
    assert "Generated 2024-06-01 12:00:00 UTC" in again


def test_report_downsamples_long_history():
    history = event_history("machine_temperature")

    page = render_report(history, max_points=1500)

    assert "1,500 of 22,695 transitions shown" in page
    assert "downsampled" in page
    assert_offline(page)
    # A line without points keeps the inline SVG small.
    assert len(page) < 400_000


@pytest.mark.parametrize("name", datasets.names())
def test_report_every_dataset(name):
    history = event_history(name)

    page = render_report(history, max_timelines=1, title=name)

    assert f"<title>{name}</title>" in page
    assert "<svg" in page
    assert "verified" in page
    assert_offline(page)


def test_report_missing_values_not_drawn():
    page = render_report(event_history("co2"))

    assert "59 transitions with a missing value not drawn" in page
    assert "<h3>co2</h3>" in page


def test_report_writes_file(tmp_path, seattle):
    target = tmp_path / "report.html"

    page = render_report(seattle, path=target, max_timelines=1)

    assert target.read_text(encoding="utf-8") == page


def test_report_limits_timelines(seattle):
    page = render_report(seattle, max_timelines=2)

    assert page.count("<h3>") == 2
    assert "the other 2 are listed in the summary" in page
    # Identities beyond the limit are still summarised, and an overview chart covers all.
    assert "Transitions per identity over time" in page


def test_report_escapes_text():
    sb = statebits.Statebit("<b>pump</b>", 0.0, created_at="2024-05-01")
    sb.transition(1.0, "<script>alert(1)</script> https://example.com", timestamp="2024-05-01T01:00:00Z")
    sb.transition(5.0, "pressure & flow", timestamp="2024-05-01T02:00:00Z")

    page = render_report(sb, title="<i>title</i>")

    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "<b>pump</b>" not in page
    assert "&lt;i&gt;title&lt;/i&gt;" in page
    assert "pressure &amp; flow" in page
    assert_offline(page)


def test_report_nominal_values_list_latest():
    sb = statebits.Statebit("door", "closed", created_at="2024-05-01")
    for hour, state in enumerate(["open", "closed", "open", "locked"], start=1):
        sb.transition(state, f"sensor event {hour}", timestamp=f"2024-05-01T0{hour}:00:00Z")

    page = render_report(sb)

    changes = page.split('id="biggest-changes"')[1].split("</section>")[0]
    assert "not numeric" in changes
    assert changes.index("sensor event 4") < changes.index("sensor event 1")
    assert "<svg" in page


def test_report_single_chain_wording():
    page = render_report(event_history("nile"), max_timelines=0)

    assert "The chain verified" in page
    assert "1 chain, 100 transitions" in page


def test_report_frame_without_checksum_not_verified():
    frame = datasets.load("nile").rename(columns={"value": "to_value"})

    page = render_report(frame, title="Nile")

    assert "Not verified" in page
    assert "no checksum column" in page
    assert "<h3>nile</h3>" in page


def test_report_accepts_polars_history(seattle):
    frame = pl.from_pandas(seattle.to_pandas()[["identity", "step", "timestamp", "to_value", "reason", "confidence", "branch"]])

    page = render_report(frame, max_timelines=1)

    assert "5,844" in page
    assert "<svg" in page


def test_report_verifies_history_frame(seattle):
    frame = seattle.to_pandas()

    page = render_report(frame, max_timelines=0)

    assert "All 4 chains verified" in page


def test_report_shows_tampered_frame():
    frame = event_history("nile").to_pandas()
    frame.loc[frame["step"] == 30, "to_value"] = 999.0

    page = render_report(frame, max_timelines=0)

    assert "1 of 1 chain failed verification" in page
    assert "checksum mismatch at step 30" in page


def test_report_time_zone(seattle):
    page = render_report(seattle, tz="America/Los_Angeles", max_timelines=1)

    assert "2011-12-31 16:00:00 PST" in page
    assert "Times are shown in America/Los_Angeles" in page


def test_report_custom_section_appended(seattle):
    def row_count(report: ReportData) -> Section:
        return Section("Row count", f"<p>{escape(len(report.frame))} rows</p>")

    def skipped(report: ReportData) -> None:
        return None

    page = render_report(seattle, sections=[*DEFAULT_SECTIONS[:2], row_count, skipped])

    ids = parse(page).ids
    assert ids[-1] == "row-count"
    assert "<p>5844 rows</p>" in page
    assert 'id="timelines"' not in page


def test_report_duplicate_anchors_renamed(seattle):
    def note(report: ReportData) -> Section:
        return Section("Note", "<p>x</p>")

    page = render_report(seattle, sections=[note, note])

    assert parse(page).ids == ["note", "note-2"]


def test_report_rejects_bad_section(seattle):
    def wrong(report):
        return "<p>not a section</p>"

    with pytest.raises(statebits.ValidationError, match="wrong returned str"):
        render_report(seattle, sections=[wrong])


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_points", 1), ("max_timelines", -1), ("top_changes", "5"), ("tz", "Mars/Base")],
)
def test_report_invalid_options(seattle, option, value):
    with pytest.raises(statebits.ValidationError, match=option):
        render_report(seattle, **{option: value})


def test_report_empty_history():
    sb = statebits.Statebit("idle", 0, created_at="2024-05-01")

    page = render_report(sb)

    assert "no transitions" in page.lower()
    assert_offline(page)
