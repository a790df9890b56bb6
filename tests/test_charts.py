"""Tests of statebits.charts on real datasets: specs, downsampling, time zones and static rendering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import polars as pl
import pytest

from statebits import charts
from statebits.core.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "statebits" / "datasets" / "data"  # the bundled copies of the real datasets



def nab_history(relative_path: str, identity: str) -> pd.DataFrame:
    """Load a NAB series as a history frame with every schema column."""
    raw = pd.read_csv(DATASETS / "nab" / relative_path)
    count = len(raw)
    values = raw["value"].astype("float64")
    timestamps = pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC")
    hours = timestamps.dt.hour.to_numpy()
    return pd.DataFrame(
        {
            "identity": identity,
            "step": np.arange(1, count + 1, dtype="int64"),
            "timestamp": timestamps,
            "recorded_at": timestamps + pd.Timedelta(minutes=1),
            "from_value": values.shift(1),
            "to_value": values,
            "reason": np.where(hours < 6, "night reading", "day reading"),
            "confidence": np.where(hours < 6, 0.6, 1.0),
            "tags": [["nab", "night"] if hour < 6 else ["nab"] for hour in hours],
            "metadata": [{} for _ in range(count)],
            "caused_by": [[] for _ in range(count)],
            "checksum": [f"{identity}-{step}" for step in range(1, count + 1)],
            "branch": "main",
        }
    )


@pytest.fixture(scope="module")
def taxi() -> pd.DataFrame:
    return nab_history("realKnownCause/nyc_taxi.csv", "nyc_taxi")


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    """Seattle's daily weather as a history of a categorical state."""
    raw = pd.read_csv(DATASETS / "noaa" / "seattle_weather_daily.csv")
    return pd.DataFrame(
        {
            "identity": "seattle",
            "step": np.arange(1, len(raw) + 1),
            "timestamp": pd.to_datetime(raw["date"], format="%Y/%m/%d").dt.tz_localize("UTC"),
            "to_value": raw["weather"],
            "reason": "daily observation",
            "confidence": 1.0,
            "tags": [["noaa"]] * len(raw),
        }
    )


def dataset_rows(spec: dict) -> list[list[dict]]:
    return list(spec.get("datasets", {}).values())


def shipped_rows(spec: dict) -> int:
    return sum(len(rows) for rows in dataset_rows(spec))


def layer_named(spec: dict, name: str) -> dict:
    for layer in spec["layer"]:
        if layer.get("name") == name:
            return layer
    raise KeyError(name)


# -- timeline -----------------------------------------------------------------


def test_timeline_spec_validates(taxi):
    spec = charts.timeline_chart(taxi.iloc[:500]).to_dict(validate=True)

    assert spec["params"][0]["name"] == "brush"
    assert spec["params"][0]["select"] == {"type": "interval", "encodings": ["x"]}
    points = layer_named(spec, "transitions")
    assert points["encoding"]["opacity"]["field"] == "confidence"
    tooltip_fields = [item["field"] for item in points["encoding"]["tooltip"]]
    assert {"reason", "tags", "confidence", "when"} <= set(tooltip_fields)
    assert shipped_rows(spec) == 500


def test_timeline_rows_carry_reason_and_tags(taxi):
    spec = charts.timeline_chart(taxi.iloc[:3]).to_dict()
    rows = dataset_rows(spec)[0]

    assert rows[0]["time"] == "2014-07-01T00:00:00.000Z"
    assert rows[0]["when"] == "2014-07-01 00:00:00 UTC"
    assert rows[0]["reason"] == "night reading"
    assert rows[0]["tags"] == "nab, night"
    assert rows[0]["confidence"] == 0.6
    assert rows[0]["value"] == 10844.0


def test_timeline_polars_matches_pandas(taxi):
    subset = taxi.iloc[:300].drop(columns=["metadata", "caused_by"])
    from_pandas = charts.timeline_chart(subset).to_dict()
    from_polars = charts.timeline_chart(pl.from_pandas(subset)).to_dict()

    assert from_polars == from_pandas


def test_timeline_downsamples_long_history():
    count = 100_000
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "identity": "walk",
            "step": np.arange(1, count + 1),
            "timestamp": pd.date_range("2024-01-01", periods=count, freq="min", tz="UTC"),
            "to_value": rng.normal(size=count).cumsum(),
            "reason": "tick",
            "confidence": 1.0,
        }
    )
    spec = charts.timeline_chart(frame, max_points=2000).to_dict(validate=True)
    values = [row["value"] for row in dataset_rows(spec)[0]]

    assert shipped_rows(spec) <= 2000
    assert "of 100,000 transitions shown" in spec["title"]["subtitle"][0]
    assert max(values) == pytest.approx(frame["to_value"].max())
    assert min(values) == pytest.approx(frame["to_value"].min())


def test_timeline_default_limit_ships_5000_rows(taxi):
    spec = charts.timeline_chart(taxi).to_dict(validate=True)

    assert shipped_rows(spec) <= charts.DEFAULT_MAX_POINTS
    assert spec["title"]["subtitle"][0].startswith("5,000 of 10,320 transitions shown")


def test_timeline_short_history_has_no_subtitle(taxi):
    spec = charts.timeline_chart(taxi.iloc[:100]).to_dict()

    assert "subtitle" not in spec["title"]
    assert spec["title"]["text"] == "nyc_taxi"


def test_max_points_above_altair_limit_is_clamped(taxi):
    with pytest.warns(UserWarning, match="exceeds the row limit"):
        chart = charts.timeline_chart(taxi, max_points=8000)

    assert shipped_rows(chart.to_dict()) <= 5000


def test_max_points_follows_raised_altair_limit(taxi):
    with alt.data_transformers.enable("default", max_rows=20_000):
        spec = charts.timeline_chart(taxi, max_points=20_000).to_dict()

    assert shipped_rows(spec) == len(taxi)


@pytest.mark.parametrize("bad", [0, 5, -1, 2.5, "many", True])
def test_invalid_max_points_rejected(taxi, bad):
    with pytest.raises(ValidationError, match="max_points"):
        charts.timeline_chart(taxi.iloc[:10], max_points=bad)


def test_missing_columns_named(taxi):
    with pytest.raises(ValidationError, match="to_value"):
        charts.timeline_chart(taxi[["timestamp", "reason"]])


def test_unsupported_input_rejected():
    with pytest.raises(ValidationError, match="got int"):
        charts.timeline_chart(42)


def test_unparseable_timestamps_rejected():
    frame = pd.DataFrame({"timestamp": ["yesterday-ish", "soon"], "to_value": [1, 2]})
    with pytest.raises(ValidationError, match="timestamp"):
        charts.timeline_chart(frame)


def test_minimal_frame_gets_defaults():
    frame = pd.DataFrame({"timestamp": ["2024-01-01T00:00:00", "2024-01-01T01:00:00"], "to_value": [1.5, 2.5]})
    rows = dataset_rows(charts.timeline_chart(frame).to_dict(validate=True))[0]

    assert [row["step"] for row in rows] == [1, 2]
    assert rows[0]["confidence"] == 1.0
    assert rows[0]["tags"] == ""
    assert rows[0]["time"] == "2024-01-01T00:00:00.000Z"


def test_nominal_values_use_nominal_axis(weather):
    spec = charts.timeline_chart(weather).to_dict(validate=True)
    rows = dataset_rows(spec)[0]

    assert layer_named(spec, "transitions")["encoding"]["y"]["type"] == "nominal"
    assert {row["value"] for row in rows} == set(weather["to_value"])


def test_missing_values_become_null(taxi):
    frame = taxi.iloc[:5].copy()
    frame.loc[2, "to_value"] = np.nan
    rows = dataset_rows(charts.timeline_chart(frame).to_dict())[0]

    assert rows[2]["value"] is None
    assert json.dumps(rows)


def test_several_identities_coloured(taxi):
    other = nab_history("realTraffic/speed_7578.csv", "traffic_speed")
    spec = charts.timeline_chart(pd.concat([taxi.iloc[:200], other.iloc[:200]])).to_dict(validate=True)

    assert layer_named(spec, "transitions")["encoding"]["color"]["field"] == "series"
    assert spec["title"]["text"] == "2 statebits"


def test_initial_selection_sets_brush_value(taxi):
    spec = charts.timeline_chart(taxi.iloc[:500], selection=("2014-07-02", "2014-07-03 12:00")).to_dict(validate=True)
    start, end = spec["params"][0]["value"]["x"]

    assert start == {"year": 2014, "month": 7, "date": 2, "hours": 0, "minutes": 0, "seconds": 0, "milliseconds": 0, "utc": True}
    assert end["date"] == 3
    assert end["hours"] == 12


def test_invalid_selection_rejected(taxi):
    with pytest.raises(ValidationError, match="selection"):
        charts.timeline_chart(taxi.iloc[:10], selection=("2014-07-02",))


# -- time zones ---------------------------------------------------------------


def test_tz_ships_wall_clock_times(taxi):
    spec = charts.timeline_chart(taxi.iloc[:3], tz="America/New_York").to_dict()
    rows = dataset_rows(spec)[0]

    assert rows[0]["time"] == "2014-06-30T20:00:00.000Z"
    assert rows[0]["when"] == "2014-06-30 20:00:00 EDT"
    assert layer_named(spec, "transitions")["encoding"]["x"]["title"] == "time (America/New_York)"
    assert layer_named(spec, "transitions")["encoding"]["x"]["scale"] == {"type": "utc"}


def test_invalid_tz_rejected(taxi):
    with pytest.raises(ValidationError, match="tz"):
        charts.timeline_chart(taxi.iloc[:10], tz="Mars/Olympus_Mons")


def test_chart_time_round_trip():
    clock = charts.ChartTime("Europe/Berlin")
    instant = pd.Timestamp("2024-07-01T10:15:00", tz="UTC")
    shipped = clock.to_chart(pd.Series([instant]))[0]

    assert shipped == "2024-07-01T12:15:00.000Z"
    assert clock.from_chart(shipped) == instant
    assert clock.from_chart(pd.Timestamp(shipped).value / 1e6) == instant


SPEC_SCRIPT = """
import json, sys
import pandas as pd
sys.path.insert(0, {root!r})
from statebits import charts
frame = pd.read_csv({path!r}).iloc[:200]
frame = frame.rename(columns={{"value": "to_value"}})
frame["timestamp"] = pd.to_datetime(frame["timestamp"])
specs = [charts.timeline_chart(frame).to_dict(), charts.timeline_chart(frame, tz="Asia/Tokyo").to_dict()]
print(json.dumps(specs, sort_keys=True))
"""


def test_spec_independent_of_machine_timezone():
    script = SPEC_SCRIPT.format(root=str(ROOT), path=str(DATASETS / "nab/realKnownCause/nyc_taxi.csv"))
    outputs = {}
    for zone in ("UTC", "America/Los_Angeles", "Asia/Kathmandu"):
        env = dict(os.environ, TZ=zone)
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs[zone] = result.stdout

    assert outputs["America/Los_Angeles"] == outputs["UTC"]
    assert outputs["Asia/Kathmandu"] == outputs["UTC"]
    assert '"2014-07-01T00:00:00.000Z"' in outputs["UTC"]


def test_static_svg_independent_of_machine_timezone():
    script = (
        "import sys; sys.path.insert(0, {root!r})\n"
        "import pandas as pd\n"
        "from statebits import charts\n"
        "frame = pd.DataFrame({{'timestamp': pd.date_range('2024-03-30', periods=48, freq='h', tz='UTC'), 'to_value': range(48)}})\n"
        "print(charts.chart_to_svg(charts.timeline_chart(frame)))\n"
    ).format(root=str(ROOT))
    svgs = []
    for zone in ("UTC", "Pacific/Chatham"):
        result = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, TZ=zone), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        svgs.append(result.stdout)

    assert svgs[0] == svgs[1]


# -- downsampling helpers -----------------------------------------------------


def test_reduce_rows_keeps_priority_rows():
    count = 10_000
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=count, freq="s", tz="UTC"),
            "series": "a",
            "value": np.sin(np.arange(count) / 50.0),
        }
    )
    priority = pd.Series(np.zeros(count))
    priority.iloc[[17, 4242, 9001]] = 10.0
    reduced = charts.reduce_rows(frame, 500, keep=priority)

    assert len(reduced.frame) <= 500
    assert {17, 4242, 9001} <= set(reduced.frame.index)
    assert reduced.frame["timestamp"].is_monotonic_increasing


def test_reduce_rows_leaves_short_frames_alone():
    frame = pd.DataFrame({"timestamp": pd.date_range("2024", periods=5, tz="UTC"), "series": "a", "value": range(5)})
    reduced = charts.reduce_rows(frame, 10)

    assert reduced.frame is frame
    assert reduced.note == ""
    assert not reduced.reduced


def test_reduce_rows_caps_many_series():
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024", periods=3000, freq="min", tz="UTC"),
            "series": [f"s{i % 1000}" for i in range(3000)],
            "value": np.arange(3000.0),
        }
    )
    reduced = charts.reduce_rows(frame, 100)

    assert len(reduced.frame) <= 100
    assert "every n-th" in reduced.note


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250 ms"), (30, "30 s"), (90, "1.5 min"), (7200, "2 h"), (86400 * 2.5, "2.5 d")],
)
def test_describe_duration(seconds, text):
    assert charts.describe_duration(seconds) == text


# -- fork tree ----------------------------------------------------------------


@pytest.fixture(scope="module")
def nile_family() -> pd.DataFrame:
    """Nile flow as a main branch, two forks that repeat the shared prefix, and one merge back."""
    raw = pd.read_csv(DATASETS / "statsmodels" / "nile_flow.csv")
    count = len(raw)
    main = pd.DataFrame(
        {
            "identity": "nile",
            "step": np.arange(1, count + 1),
            "timestamp": pd.to_datetime(raw["year"].astype(str) + "-01-01", utc=True),
            "to_value": raw["volume"].astype("float64"),
            "reason": "annual flow",
            "confidence": 1.0,
            "tags": [["nile"]] * count,
            "metadata": [{} for _ in range(count)],
            "checksum": [f"main-{i}" for i in range(count)],
            "branch": "main",
        }
    )
    no_dam = main.iloc[:40].copy()
    no_dam["branch"] = "no-dam"
    no_dam.loc[28:, "to_value"] *= 1.2
    no_dam.loc[28:, "checksum"] = [f"no-dam-{i}" for i in range(28, 40)]
    wet = main.iloc[:60].copy()
    wet["branch"] = "wet"
    wet.loc[50:, "checksum"] = [f"wet-{i}" for i in range(50, 60)]
    frame = pd.concat([main, no_dam, wet], ignore_index=True)
    merge_row = frame.index[(frame["branch"] == "main") & (frame["step"] == 70)][0]
    frame.at[merge_row, "metadata"] = {"merged_from": "nile", "merged_branch": "no-dam"}
    return frame


def test_fork_tree_infers_lanes_from_checksums(nile_family):
    tree = charts.fork_tree(nile_family)
    lanes = tree.lanes.set_index("lane")

    assert list(tree.lanes["lane"]) == ["main", "no-dam", "wet"]
    assert pd.isna(lanes.loc["main", "parent"])
    assert lanes.loc["no-dam", "parent"] == "main"
    assert lanes.loc["no-dam", "fork_point"] == 28
    assert lanes.loc["wet", "fork_point"] == 50
    assert lanes.loc["wet", "transitions"] == 10
    assert len(tree.frame) == 100 + 12 + 10


def test_fork_tree_finds_merges(nile_family):
    merges = charts.fork_tree(nile_family).merges

    assert merges.to_dict("records") == [{"source": "no-dam", "source_step": 40, "target": "main", "target_step": 70}]


def test_fork_tree_without_checksums_uses_first_step(nile_family):
    own_rows = nile_family[(nile_family["branch"] == "main") | (nile_family["checksum"].str.startswith(("no-dam", "wet")))]
    tree = charts.fork_tree(own_rows.drop(columns="checksum"))
    lanes = tree.lanes.set_index("lane")

    assert lanes.loc["no-dam", "fork_point"] == 28
    assert lanes.loc["wet", "parent"] == "main"


def test_fork_tree_chart_validates(nile_family):
    spec = charts.fork_tree_chart(nile_family).to_dict(validate=True)
    links = layer_named(spec, "links")

    assert spec["title"]["text"] == "nile: 3 branches"
    assert spec["title"]["subtitle"][0] == "2 forks, 1 merge"
    assert links["encoding"]["y2"]["field"] == "to_lane"
    assert spec["params"][0]["name"] == "pick"


def test_fork_tree_chart_keeps_fork_points_when_downsampled(nile_family):
    spec = charts.fork_tree_chart(nile_family, max_points=30).to_dict()
    transitions = next(rows for rows in dataset_rows(spec) if rows and "reason" in rows[0])
    drawn = {(row["lane"], row["step"]) for row in transitions}

    assert len(transitions) <= 30
    assert {("main", 28), ("main", 50), ("no-dam", 40), ("main", 70)} <= drawn


# -- anomalies ----------------------------------------------------------------


def robust_scores(frame: pd.DataFrame) -> pd.Series:
    """Score each value by its distance from the same half hour one week earlier, in robust z units."""
    values = frame["to_value"]
    residual = values - values.shift(336)
    spread = (residual - residual.median()).abs().median() * 1.4826
    return ((residual - residual.median()).abs() / spread).fillna(0.0)


def test_anomaly_chart_threshold_param(taxi):
    scored = taxi.assign(anomaly_score=robust_scores(taxi))
    spec = charts.anomaly_chart(scored, threshold=4.0).to_dict(validate=True)

    assert spec["params"] == [{"name": "threshold", "value": 4.0}]
    assert spec["title"]["subtitle"][0] == "red: score in column 'anomaly_score' above the threshold (dashed line)"
    assert "datum.score > threshold" in json.dumps(spec)
    assert shipped_rows(spec) <= charts.DEFAULT_MAX_POINTS + 1


def test_anomaly_chart_keeps_highest_scores(taxi):
    scored = taxi.assign(anomaly_score=robust_scores(taxi))
    spec = charts.anomaly_chart(scored, max_points=500).to_dict()
    rows = max(dataset_rows(spec), key=len)
    top = scored["anomaly_score"].nlargest(50)

    assert len(rows) <= 500
    assert set(top.round(9)) <= {round(row["score"], 9) for row in rows}


def test_anomaly_chart_needs_score_column(taxi):
    with pytest.raises(ValidationError, match="no score column `anomaly_score`"):
        charts.anomaly_chart(taxi.iloc[:50])


def test_default_threshold_is_99th_percentile():
    scores = pd.Series(np.arange(1001, dtype="float64"))

    assert charts.default_threshold(scores) == pytest.approx(990.0)


# -- collections --------------------------------------------------------------


@pytest.fixture(scope="module")
def nab_collection() -> pd.DataFrame:
    return pd.concat(
        [
            nab_history("realKnownCause/machine_temperature_system_failure.csv", "machine_temperature"),
            nab_history("realKnownCause/ambient_temperature_system_failure.csv", "ambient_temperature"),
            nab_history("realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv", "ec2_cpu"),
            nab_history("realTraffic/speed_7578.csv", "traffic_speed"),
        ],
        ignore_index=True,
    )


def test_collection_summary_one_row_per_identity(nab_collection):
    summary = charts.collection_summary(nab_collection)

    assert list(summary.index) == ["ambient_temperature", "ec2_cpu", "machine_temperature", "traffic_speed"]
    assert summary.loc["machine_temperature", "transitions"] == 22_695
    assert summary.loc["traffic_speed", "transitions"] == 1_127
    assert str(summary["first"].dtype) == "datetime64[ns, UTC]"


def test_collection_chart_aggregates(nab_collection):
    spec = charts.collection_chart(nab_collection, buckets=50).to_dict(validate=True)
    rows = dataset_rows(spec)[0]

    assert sum(row["count"] for row in rows) == len(nab_collection)
    assert len(rows) <= 4 * 50
    assert spec["params"][0]["select"]["fields"] == ["identity"]


def test_collection_chart_limits_identities(nab_collection):
    spec = charts.collection_chart(nab_collection, max_identities=2).to_dict()

    assert {row["identity"] for row in dataset_rows(spec)[0]} == {"ambient_temperature", "ec2_cpu"}
    assert spec["title"]["subtitle"][-1] == "first 2 of 4 identities shown"


def test_collection_chart_selected_identity(nab_collection):
    spec = charts.collection_chart(nab_collection, selected="ec2_cpu").to_dict(validate=True)

    assert spec["params"][0]["value"] == [{"identity": "ec2_cpu"}]


# -- static rendering ---------------------------------------------------------


def test_chart_to_svg_draws_marks(taxi):
    svg = charts.chart_to_svg(charts.timeline_chart(taxi.iloc[:120]))

    assert svg.startswith("<svg")
    group = svg.split('class="mark-symbol role-mark transitions_marks"', 1)[1].split("</g>", 1)[0]
    assert group.count("<path ") == 120


def test_chart_to_png_is_png(taxi):
    png = charts.chart_to_png(charts.timeline_chart(taxi.iloc[:50]))

    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_to_html_formats(taxi):
    chart = charts.timeline_chart(taxi.iloc[:50])
    svg_html = charts.chart_to_html(chart, caption="taxi <first day>")
    png_html = charts.chart_to_html(chart, image_format="png")

    assert '<svg role="img" aria-label="taxi &lt;first day&gt;"' in svg_html
    assert "<figcaption>taxi &lt;first day&gt;</figcaption>" in svg_html
    assert 'src="data:image/png;base64,' in png_html
    with pytest.raises(ValidationError, match="image_format"):
        charts.chart_to_html(chart, image_format="gif")


def test_import_charts_imports_no_altair():
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import statebits.charts; print(sorted(m for m in sys.modules if m.split('.')[0] in ('altair', 'vl_convert', 'ipywidgets', 'anywidget')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
