"""Tests of statebits.widgets in the kernel: inputs, Python-side brushing, thresholds and fallbacks.

Messages from the browser are simulated by writing the JupyterChart's
``_vl_selections`` trait the way its JavaScript does; tests/test_browser.py
drives a real browser.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

import statebits  # noqa: E402
from statebits.core.errors import NotFittedError, ValidationError  # noqa: E402
from statebits.widgets import AnomalyWidget, CollectionWidget, ForkTreeWidget, TimelineWidget  # noqa: E402
from statebits.widgets._base import FALLBACK_MAX_POINTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "statebits" / "datasets" / "data"  # the bundled copies of the real datasets


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# -- data ---------------------------------------------------------------------


def nab_frame(relative_path: str, identity: str, rows: int | None = None) -> pd.DataFrame:
    """Load a NAB series as a history frame."""
    raw = pd.read_csv(DATASETS / "nab" / relative_path, nrows=rows)
    timestamps = pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC")
    return pd.DataFrame(
        {
            "identity": identity,
            "step": np.arange(1, len(raw) + 1, dtype="int64"),
            "timestamp": timestamps,
            "to_value": raw["value"].astype("float64"),
            "reason": "sensor reading",
            "confidence": np.where(timestamps.dt.hour < 6, 0.6, 1.0),
            "tags": [["nab"]] * len(raw),
            "branch": "main",
        }
    )


def seasonal_scores(frame: pd.DataFrame, period: int) -> pd.Series:
    """Robust z-score of each value against the value one season earlier."""
    residual = frame["to_value"] - frame["to_value"].shift(period)
    centre = residual.median()
    spread = (residual - centre).abs().median() * 1.4826
    return ((residual - centre).abs() / spread).fillna(0.0)


def statebit_from(frame: pd.DataFrame, identity: str) -> statebits.Statebit:
    """Record a frame's values as transitions of a new Statebit, with their timestamps."""
    bit = statebits.Statebit(identity, float(frame["to_value"].iloc[0]), created_at=frame["timestamp"].iloc[0] - pd.Timedelta(minutes=1))
    for row in frame.itertuples():
        bit.transition(float(row.to_value), row.reason, confidence=float(row.confidence), tags=list(row.tags), timestamp=row.timestamp)
    return bit


@pytest.fixture(scope="module")
def taxi() -> pd.DataFrame:
    return nab_frame("realKnownCause/nyc_taxi.csv", "nyc_taxi")


@pytest.fixture(scope="module")
def taxi_week(taxi) -> pd.DataFrame:
    return taxi.iloc[:336].reset_index(drop=True)


@pytest.fixture(scope="module")
def speed_bit() -> statebits.Statebit:
    return statebit_from(nab_frame("realTraffic/speed_7578.csv", "traffic_speed", rows=150), "traffic_speed")


@pytest.fixture(scope="module")
def sensor_collection(speed_bit) -> statebits.StatebitsCollection:
    cpu = statebit_from(nab_frame("realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv", "ec2_cpu", rows=120), "ec2_cpu")
    return statebits.StatebitsCollection("sensors", [speed_bit, cpu])


def input_variants(frame, statebit, collection):
    return {"pandas": frame, "polars": pl.from_pandas(frame), "statebit": statebit, "collection": collection}


def browser_brush(widget, start: str | float | None, end: str | float | None) -> None:
    """Send a brush from the 'browser': the interval selection as JupyterChart's JavaScript reports it."""
    value = {} if start is None else {"time": [start, end]}
    widget._view._vl_selections = {"brush": {"value": value, "store": []}}


def browser_pick(widget, **fields) -> None:
    """Send a click on a point from the 'browser'."""
    value = {"vlPoint": {"or": [fields]}} if fields else None
    widget._view._vl_selections = {"pick": {"value": value, "store": []}}


def data_rows(widget) -> int:
    spec = widget._view.spec
    return sum(len(rows) for rows in spec.get("datasets", {}).values())


# -- every widget from every input --------------------------------------------


@pytest.mark.parametrize("kind", ["pandas", "polars", "statebit", "collection"])
def test_timeline_widget_inputs(kind, taxi_week, speed_bit, sensor_collection):
    data = input_variants(taxi_week, speed_bit, sensor_collection)[kind]
    widget = TimelineWidget(data)
    expected = {"pandas": 336, "polars": 336, "statebit": 150, "collection": 270}[kind]

    assert len(widget.frame) == expected
    assert data_rows(widget) == expected
    assert widget._view.spec["params"][0]["name"] == "brush"


@pytest.mark.parametrize("kind", ["pandas", "polars", "statebit", "collection"])
def test_fork_tree_widget_inputs(kind, taxi_week, speed_bit, sensor_collection):
    data = input_variants(taxi_week, speed_bit, sensor_collection)[kind]
    widget = ForkTreeWidget(data)
    expected_lanes = 2 if kind == "collection" else 1

    assert len(widget.lanes) == expected_lanes
    assert widget.merges.empty


@pytest.mark.parametrize("kind", ["pandas", "polars", "statebit", "collection"])
def test_anomaly_widget_inputs(kind, taxi_week, speed_bit, sensor_collection):
    data = input_variants(taxi_week, speed_bit, sensor_collection)[kind]
    widget = AnomalyWidget(data, detector=RobustZDetector(period=12))

    assert widget.scores.notna().all()
    assert len(widget.flags) == len(widget.frame)
    assert widget._view.params.threshold == widget.threshold


@pytest.mark.parametrize("kind", ["pandas", "polars", "collection"])
def test_collection_widget_inputs(kind, taxi_week, speed_bit, sensor_collection):
    frame = pd.concat([taxi_week, nab_frame("realTraffic/speed_7578.csv", "traffic_speed", rows=50)])
    data = {"pandas": frame, "polars": pl.from_pandas(frame), "collection": sensor_collection}[kind]
    widget = CollectionWidget(data)
    expected = ["ec2_cpu", "traffic_speed"] if kind == "collection" else ["nyc_taxi", "traffic_speed"]

    assert list(widget.summary.index) == expected
    assert [value for _, value in widget._list.options] == expected


# -- timeline -----------------------------------------------------------------


def test_brush_from_python_selects_transitions(taxi):
    widget = TimelineWidget(taxi)
    widget.selected_range = ("2014-11-01", "2014-11-08")
    expected = taxi[(taxi["timestamp"] >= "2014-11-01") & (taxi["timestamp"] <= "2014-11-08")]

    assert len(widget.selected) == len(expected) == 337
    assert list(widget.selected["step"]) == list(expected["step"])
    assert widget.selected_range == (pd.Timestamp("2014-11-01", tz="UTC"), pd.Timestamp("2014-11-08", tz="UTC"))
    assert "337 transitions selected" in widget._status.value


def test_brush_from_python_moves_chart_brush(taxi_week):
    widget = TimelineWidget(taxi_week)
    widget.select("2014-07-02 06:00", "2014-07-03")
    brush = widget._view.spec["params"][0]

    assert brush["value"]["x"][0] == {"year": 2014, "month": 7, "date": 2, "hours": 6, "minutes": 0, "seconds": 0, "milliseconds": 0, "utc": True}
    assert brush["value"]["x"][1]["date"] == 3


def test_brush_from_browser_selects_transitions(taxi):
    widget = TimelineWidget(taxi)
    spec_before = widget._view.spec
    browser_brush(widget, "2014-12-01T00:00:00.000Z", "2014-12-02T00:00:00.000Z")

    assert len(widget.selected) == 49
    assert widget.selected["timestamp"].min() == pd.Timestamp("2014-12-01", tz="UTC")
    assert widget._view.spec is spec_before


def test_brush_from_browser_accepts_epoch_milliseconds(taxi_week):
    widget = TimelineWidget(taxi_week)
    start = pd.Timestamp("2014-07-03", tz="UTC").value / 1e6
    browser_brush(widget, start, start + 3_600_000)

    assert list(widget.selected["timestamp"].dt.strftime("%H:%M")) == ["00:00", "00:30", "01:00"]


def test_brush_cleared_from_browser(taxi_week):
    widget = TimelineWidget(taxi_week)
    widget.select("2014-07-02", "2014-07-03")
    # After the spec changes, the browser redraws the chart and reports the brush it drew.
    browser_brush(widget, "2014-07-02T00:00:00.000Z", "2014-07-03T00:00:00.000Z")
    browser_brush(widget, None, None)

    assert widget.selected_range is None
    assert widget.selected.empty
    assert "No window selected" in widget._status.value


def test_browser_brush_after_python_brush(taxi_week):
    widget = TimelineWidget(taxi_week)
    widget.select("2014-07-02", "2014-07-03")
    browser_brush(widget, "2014-07-04T00:00:00.000Z", "2014-07-04T02:00:00.000Z")

    assert len(widget.selected) == 5


def test_brush_in_other_timezone(taxi_week):
    widget = TimelineWidget(taxi_week, tz="America/New_York")
    browser_brush(widget, "2014-07-01T00:00:00.000Z", "2014-07-01T01:00:00.000Z")

    assert widget.selected_range[0] == pd.Timestamp("2014-07-01 04:00", tz="UTC")
    assert len(widget.selected) == 3
    assert "EDT" in widget._status.value


def test_invalid_selected_range_rejected(taxi_week):
    widget = TimelineWidget(taxi_week)
    with pytest.raises(ValidationError, match="selected_range"):
        widget.selected_range = ("2014-07-02",)


def test_selected_is_a_copy(taxi_week):
    widget = TimelineWidget(taxi_week)
    widget.select("2014-07-02", "2014-07-03")
    selected = widget.selected
    selected["to_value"] = 0.0

    assert widget.selected["to_value"].max() > 0


def test_long_history_ships_at_most_max_points():
    count = 100_000
    frame = pd.DataFrame(
        {
            "identity": "walk",
            "timestamp": pd.date_range("2024-01-01", periods=count, freq="min", tz="UTC"),
            "to_value": np.random.default_rng(11).normal(size=count).cumsum(),
        }
    )
    widget = TimelineWidget(frame, max_points=3000)
    widget.select("2024-02-01", "2024-02-02")

    assert data_rows(widget) <= 3000
    assert len(widget.selected) == 1441
    assert "of 100,000 transitions shown" in widget.describe()


# -- fork tree ----------------------------------------------------------------


@pytest.fixture(scope="module")
def forked_speed():
    """Traffic speed with a what-if fork and a second fork merged back into main."""
    frame = nab_frame("realTraffic/speed_7578.csv", "traffic_speed", rows=60)
    clock = statebits.TickingClock("2024-01-01T00:00:00Z", "1min")
    with statebits.use_clock(clock):
        main = statebits.Statebit("traffic_speed", float(frame["to_value"].iloc[0]))
        for value in frame["to_value"].iloc[1:30]:
            main.transition(float(value), "sensor reading")
        slow = main.fork("what if the road closes", at=20, branch="closure")
        for value in frame["to_value"].iloc[30:40]:
            slow.transition(float(value) / 4, "closure scenario", confidence=0.5)
        fix = main.fork("recalibration", branch="recalibrated")
        for value in frame["to_value"].iloc[40:45]:
            fix.transition(float(value) + 2, "recalibrated reading")
        main.transition(float(frame["to_value"].iloc[45]), "sensor reading")
        main.merge(fix, strategy="latest")
    return main, slow, fix


def test_fork_tree_from_statebits(forked_speed):
    main, slow, fix = forked_speed
    widget = ForkTreeWidget([main, slow, fix])
    lanes = widget.lanes.set_index("lane")

    assert list(widget.lanes["lane"]) == ["main", "closure", "recalibrated"]
    assert lanes.loc["closure", "parent"] == "main"
    assert lanes.loc["closure", "fork_point"] == 20
    assert lanes.loc["recalibrated", "fork_point"] == 29
    assert lanes.loc["closure", "transitions"] == 10
    assert len(widget.merges) == 1
    assert widget.merges.iloc[0]["source"] == "recalibrated"
    assert widget.merges.iloc[0]["target"] == "main"


def test_fork_tree_from_concatenated_frames(forked_speed):
    from_objects = ForkTreeWidget(list(forked_speed))
    from_frames = ForkTreeWidget(pd.concat([bit.to_pandas() for bit in forked_speed], ignore_index=True))

    assert from_frames.lanes.equals(from_objects.lanes)
    assert from_frames.merges.equals(from_objects.merges)
    assert len(from_frames.frame) == len(from_objects.frame)


def test_fork_tree_from_fork_includes_parent(forked_speed):
    _, slow, _ = forked_speed
    widget = ForkTreeWidget(slow)

    assert list(widget.lanes["lane"]) == ["main", "closure"]


def test_fork_tree_pick_from_python_and_browser(forked_speed):
    widget = ForkTreeWidget(list(forked_speed))
    widget.selected_transition = ("closure", 25)

    assert widget.selected["reason"].tolist() == ["closure scenario"]
    assert widget._view.spec["params"][0]["value"] == [{"lane": "closure", "step": 25}]
    browser_pick(widget, lane="main", step=3)
    assert widget.selected_transition == ("main", 3)
    assert widget.selected["step"].tolist() == [3]
    browser_pick(widget)
    assert widget.selected.empty


def test_fork_tree_rejects_unknown_lane(forked_speed):
    widget = ForkTreeWidget(list(forked_speed))
    with pytest.raises(ValidationError, match="selected_transition"):
        widget.selected_transition = ("nowhere", 1)


# -- anomalies ----------------------------------------------------------------


class RobustZDetector:
    """A stand-in for statebits.ml.AnomalyDetector: seasonal robust z-scores, fitted on demand."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.fit_calls = 0

    def fit(self, frame):
        self.fit_calls += 1
        self.threshold_ = 3.5
        return self

    def score_frame(self, frame):
        if not hasattr(self, "threshold_"):
            raise NotFittedError("RobustZDetector is not fitted")
        scored = frame.copy()
        scored["anomaly_score"] = seasonal_scores(frame, self.period).to_numpy()
        scored["is_anomaly"] = scored["anomaly_score"] > self.threshold_
        return scored


def test_threshold_slider_changes_flags(taxi):
    scored = taxi.assign(anomaly_score=seasonal_scores(taxi, 336))
    widget = AnomalyWidget(scored, threshold=3.0)
    before = int(widget.flags.sum())
    widget._slider.value = 6.0
    after = int(widget.flags.sum())

    assert before == int((scored["anomaly_score"] > 3.0).sum())
    assert after == int((scored["anomaly_score"] > 6.0).sum())
    assert after < before
    assert widget.threshold == 6.0
    assert widget._view.params.threshold == 6.0
    assert len(widget.flagged) == after
    assert f"{after:,} of 10,320 transitions flagged" in widget._status.value


def test_threshold_from_python_moves_slider(taxi_week):
    scored = taxi_week.assign(anomaly_score=seasonal_scores(taxi_week, 48))
    widget = AnomalyWidget(scored)
    top = float(scored["anomaly_score"].max())
    widget.threshold = top + 5

    assert widget._slider.value == top + 5
    assert widget._slider.max == top + 5
    assert widget.flags.sum() == 0


def test_threshold_defaults(taxi_week):
    scored = taxi_week.assign(anomaly_score=seasonal_scores(taxi_week, 48))
    flagged = scored.assign(is_anomaly=scored["anomaly_score"] > 2.5)

    assert AnomalyWidget(scored).threshold == pytest.approx(np.quantile(scored["anomaly_score"], 0.99))
    assert AnomalyWidget(flagged).flags.equals(flagged["is_anomaly"].rename("flagged"))


def test_detector_fitted_when_needed(taxi_week):
    detector = RobustZDetector(period=48)
    widget = AnomalyWidget(taxi_week, detector=detector)

    assert detector.fit_calls == 1
    assert widget.threshold == 3.5
    assert widget.flags.sum() == int((seasonal_scores(taxi_week, 48) > 3.5).sum())


def test_score_column_parameter(taxi_week):
    scored = taxi_week.assign(seasonal_z=seasonal_scores(taxi_week, 48))
    widget = AnomalyWidget(scored, score_column="seasonal_z", threshold=2.0)

    assert widget.flags.sum() == int((scored["seasonal_z"] > 2.0).sum())
    with pytest.raises(ValidationError, match="no score column `anomaly_score`"):
        AnomalyWidget(scored)


def test_detector_without_score_frame_rejected(taxi_week):
    with pytest.raises(ValidationError, match="score_frame"):
        AnomalyWidget(taxi_week, detector=object())


def test_anomaly_widget_with_statebits_ml(taxi):
    ml = pytest.importorskip("statebits.ml")
    pytest.importorskip("sklearn")
    detector = ml.AnomalyDetector(method="zscore", contamination=0.01).fit(taxi)
    widget = AnomalyWidget(taxi, detector=detector)

    assert widget.threshold == pytest.approx(detector.threshold_)
    assert widget.flags.sum() == detector.score_frame(taxi)["is_anomaly"].sum()


# -- collections --------------------------------------------------------------


def test_collection_pick_opens_timeline(sensor_collection):
    widget = CollectionWidget(sensor_collection)
    assert widget.timeline is None

    widget.identity = "ec2_cpu"
    assert isinstance(widget.timeline, TimelineWidget)
    assert set(widget.timeline.frame["identity"]) == {"ec2_cpu"}
    assert widget._detail.children == (widget.timeline,)
    assert widget._list.value == "ec2_cpu"
    assert widget._view.spec["params"][0]["value"] == [{"identity": "ec2_cpu"}]


def test_collection_pick_from_browser_and_list(sensor_collection):
    widget = CollectionWidget(sensor_collection)
    browser_pick(widget, identity="traffic_speed")
    assert widget.identity == "traffic_speed"
    assert widget._list.value == "traffic_speed"
    assert len(widget.timeline.frame) == 150

    widget._list.value = "ec2_cpu"
    assert widget.identity == "ec2_cpu"
    # The browser redraws the chart with the new pick and reports it, then the user clicks empty space.
    browser_pick(widget, identity="ec2_cpu")
    browser_pick(widget)
    assert widget.timeline is None


def test_collection_rejects_unknown_identity(sensor_collection):
    widget = CollectionWidget(sensor_collection)
    with pytest.raises(ValidationError, match="identity"):
        widget.identity = "nowhere"


# -- display ------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_widget(taxi_week, forked_speed, sensor_collection):
    scored = taxi_week.assign(anomaly_score=seasonal_scores(taxi_week, 48))
    collection = CollectionWidget(sensor_collection)
    collection.identity = "ec2_cpu"
    return [TimelineWidget(taxi_week), ForkTreeWidget(list(forked_speed)), AnomalyWidget(scored), collection]


def test_mimebundle_has_static_fallback(every_widget):
    for widget in every_widget:
        bundle = widget._repr_mimebundle_()
        name = type(widget).__name__

        assert bundle[WIDGET_VIEW]["model_id"] == widget.model_id, name
        assert bundle["text/html"].startswith('<figure class="statebits-static-chart"'), name
        assert "<svg" in bundle["text/html"], name
        assert bundle["text/plain"].startswith(name), name


def test_text_repr_has_no_memory_address(every_widget):
    for widget in every_widget:
        for text in (repr(widget), widget._repr_mimebundle_()["text/plain"]):
            assert not re.search(r"0x[0-9a-f]{6,}", text), text


def test_repr_describes_content(taxi_week):
    widget = TimelineWidget(taxi_week)

    assert repr(widget) == (
        "<TimelineWidget of nyc_taxi: value over time, 336 transitions from 2014-07-01 00:00:00 UTC "
        "to 2014-07-07 23:30:00 UTC. No window selected: drag across the chart to select transitions.>"
    )


def test_static_fallback_shows_python_brush(taxi_week):
    widget = TimelineWidget(taxi_week)
    widget.select("2014-07-02", "2014-07-03")
    html = widget._repr_html_()

    assert 'class="mark-rect role-mark brush_brush_bg"' in html
    assert "49 transitions selected" in html


def test_fallback_png_and_none(taxi_week):
    as_png = TimelineWidget(taxi_week, fallback="png")._repr_mimebundle_()
    without = TimelineWidget(taxi_week, fallback=None)._repr_mimebundle_()

    assert 'src="data:image/png;base64,' in as_png["text/html"]
    assert "text/html" not in without
    with pytest.raises(ValidationError, match="fallback"):
        TimelineWidget(taxi_week, fallback="gif")


def test_static_fallback_keeps_fewer_points(taxi):
    html = TimelineWidget(taxi)._repr_html_()
    group = html.split('class="mark-symbol role-mark transitions_marks"', 1)[1].split("</g>", 1)[0]

    assert group.count("<path ") <= FALLBACK_MAX_POINTS


def test_closed_widget_falls_back_to_html(taxi_week):
    widget = TimelineWidget(taxi_week)
    widget.close()

    assert widget._repr_mimebundle_ is None
    assert "<svg" in widget._repr_html_()


def test_chart_javascript_is_bundled_offline(taxi_week):
    widget = TimelineWidget(taxi_week)

    assert "esm.sh" not in widget._view._esm
    assert "https://" not in widget._view._esm.split("\n", 5)[0]
    assert len(widget._view._esm) > 100_000


# -- imports ------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_import_statebits_imports_no_widget_dependency():
    result = run_python(
        "import sys, statebits, statebits.widgets\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'anywidget', 'altair', 'vl_convert')))"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_ipywidgets_names_extra():
    result = run_python(
        "import sys\n"
        "sys.modules['ipywidgets'] = None\n"
        "from statebits.core.errors import MissingDependencyError\n"
        "try:\n"
        "    from statebits.widgets import TimelineWidget\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )

    assert result.returncode == 0, result.stderr
    assert "statebits[widgets]" in result.stdout
    assert "ipywidgets" in result.stdout


def test_widget_for_picks_by_identities(taxi_week, sensor_collection):
    from statebits.widgets import widget_for

    assert isinstance(widget_for(taxi_week), TimelineWidget)
    assert isinstance(widget_for(sensor_collection), CollectionWidget)
    assert isinstance(widget_for(taxi_week, kind="fork_tree"), ForkTreeWidget)
    assert widget_for(taxi_week, max_points=100)._prepared.drawn.frame.shape[0] <= 100
    with pytest.raises(ValidationError, match="kind"):
        widget_for(taxi_week, kind="pie")


def test_frame_accessor_widget(taxi_week):
    assert isinstance(taxi_week.sb.widget(), TimelineWidget)
    assert taxi_week.sb.timeline().to_dict()["params"][0]["name"] == "brush"


def test_unknown_widget_name_raises_attribute_error():
    import statebits.widgets

    with pytest.raises(AttributeError, match="NoSuchWidget"):
        statebits.widgets.NoSuchWidget  # noqa: B018
