"""The anomalies section of the HTML report, on a real labelled series."""

from __future__ import annotations

import re

import pytest

import statebits
from statebits.reports import render_report

pytest.importorskip("sklearn")


def test_report_lists_flagged_transitions():
    events = statebits.datasets.load("nyc_taxi")
    collection = statebits.from_events(events, identity="identity", value="value", time="timestamp")

    html = render_report(collection, title="taxi")
    section = html[html.index('id="anomalies"') : html.index('id="reasons"')]
    flagged = int(re.search(r"([\d,]+) transitions? flagged", section).group(1).replace(",", ""))

    assert flagged > 0
    assert "<table" in section
    assert "ecod" in section


def test_report_names_identities_not_scored():
    sb = statebits.Statebit("mood", "calm")
    sb.transition("tense", "deadline")
    sb.transition("calm", "shipped")

    html = render_report(sb, title="mood")
    section = html[html.index('id="anomalies"') : html.index('id="reasons"')]

    assert "Not scored: mood (values are not numeric)" in section
