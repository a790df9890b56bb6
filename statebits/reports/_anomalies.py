"""The anomalies section of a report: flagged transitions with their scores and reasons."""

from __future__ import annotations

import logging

import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import InsufficientDataError, MissingDependencyError
from statebits.reports._data import ReportData, Section
from statebits.reports._html import escape, format_time, format_value, table_html

__all__ = ["anomalies_section"]

logger = logging.getLogger(__name__)


def anomalies_section(report: ReportData) -> Section | None:
    """Score each numeric identity with the default ``AnomalyDetector`` and list the flagged transitions.

    Each identity gets its own detector, fitted on its own history, with the
    automatic threshold, so a clean series may have no flags at all.
    Identities with too few transitions or non-numeric values are named in
    a note instead. Returns None for an empty report.
    """
    frame = report.frame
    if not len(frame):
        return None
    from statebits.ml.anomaly import AnomalyDetector

    try:
        import_optional("sklearn.preprocessing", feature="anomaly detection")
    except MissingDependencyError as exc:
        body = f"<p>Anomaly detection needs scikit-learn, which is not installed here ({escape(exc)}).</p>"
        return Section("Anomalies", body, anchor="anomalies")

    flagged: list[pd.DataFrame] = []
    skipped: list[str] = []
    scored = 0
    for identity, rows in report.iterate(list(frame.groupby("identity", sort=False)), "scoring anomalies"):
        values = pd.to_numeric(rows["to_value"], errors="coerce")
        if values.notna().sum() < len(rows) or not pd.api.types.is_numeric_dtype(rows["to_value"]):
            skipped.append(f"{identity} (values are not numeric)")
            continue
        try:
            detector = AnomalyDetector().fit(rows)
        except InsufficientDataError as exc:
            skipped.append(f"{identity} ({exc})")
            continue
        result = detector.score_frame(rows)
        scored += 1
        hits = result[result["is_anomaly"]].copy()
        hits["threshold"] = detector.threshold_
        flagged.append(hits)

    hits = pd.concat(flagged) if flagged else frame.iloc[0:0].assign(anomaly_score=[], threshold=[])
    lead = (
        f"<p>{scored:,} identit{'y' if scored == 1 else 'ies'} scored with the default detector "
        f"(method {escape(AnomalyDetector().method)}, automatic threshold): "
        f"{len(hits):,} transition{'' if len(hits) == 1 else 's'} flagged.</p>"
    )
    parts = [lead]
    if len(hits):
        top = hits.sort_values("anomaly_score", ascending=False, kind="stable").head(max(report.top_changes, 10))
        table = pd.DataFrame(
            {
                "identity": top["identity"],
                "step": top["step"],
                "time": top["timestamp"],
                "value": top["to_value"].map(format_value),
                "score": top["anomaly_score"].round(3),
                "threshold": top["threshold"].round(3),
                "reason": top["reason"],
            }
        )
        parts.append(table_html(table, formats={"time": lambda value: format_time(value, report.tz)}))
        if len(hits) > len(top):
            parts.append(f"<p>The {len(top):,} highest scores of {len(hits):,} flags are shown.</p>")
    if skipped:
        parts.append("<p>Not scored: " + escape("; ".join(skipped)) + ".</p>")
    return Section("Anomalies", "".join(parts), anchor="anomalies")
