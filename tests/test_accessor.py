"""The ``.sb`` accessor: registration, schema check, and equal results on pandas and Polars."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

import statebits
from statebits import IntegrityError, Statebit, StatebitsCollection, TickingClock, ValidationError, use_clock
from statebits.frames import accessor as registration
from statebits.frames._pandas import PandasAccessor
from statebits.frames._polars import PolarsNamespace

BACKENDS = ("pandas", "polars")
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def sensors() -> StatebitsCollection:
    with use_clock(TickingClock("2024-01-01T00:00:00Z", step="1min")):
        temp = Statebit("temp", 20.0)
        door = Statebit("door", "closed")
        for minute in range(1, 9):
            moment = START + timedelta(minutes=10 * minute)
            temp.transition(20.0 + minute / 2, "reading", confidence=0.5 + minute / 20, tags=["sensor"] if minute % 2 else None, timestamp=moment)
            if minute % 3 == 0:
                door.transition("open" if minute % 2 else "closed", "door event", confidence=0.6, tags=["sensor", "door"], timestamp=moment)
    return StatebitsCollection("sensors", [temp, door])


def frame_of(collection: StatebitsCollection, backend: str):
    return collection.to_pandas() if backend == "pandas" else collection.to_polars()


def rows(frame) -> list[tuple[str, int]]:
    if isinstance(frame, pl.DataFrame):
        return list(zip(frame["identity"].to_list(), frame["step"].to_list()))
    return list(zip(frame["identity"].tolist(), frame["step"].tolist()))


def plain(value):
    """Return a value comparable across backends: missing entries become None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


# -- registration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [pd.DataFrame, pl.DataFrame])
def test_accessor_absent_on_other_frames(make):
    assert not hasattr(make(), "sb")
    assert not hasattr(make({"a": [1, 2]}), "sb")


def test_accessor_error_names_missing_columns():
    frame = pd.DataFrame({"identity": ["a"], "step": [1], "timestamp": [START]})
    with pytest.raises(AttributeError, match=r"missing: \['to_value', 'reason', 'confidence'\]"):
        frame.sb  # noqa: B018


def test_polars_error_names_missing_columns():
    # Polars replaces a failed attribute lookup's error with its own generic
    # AttributeError, so the message is checked on the namespace itself.
    assert not hasattr(pl.DataFrame({"x": [1]}), "sb")
    with pytest.raises(AttributeError, match="missing: \\['identity'"):
        PolarsNamespace(pl.DataFrame({"x": [1]}))


@pytest.mark.parametrize("backend", BACKENDS)
def test_accessor_on_empty_history_frame(sensors, backend):
    frame = frame_of(sensors, backend)
    empty = frame.head(0)
    assert hasattr(empty, "sb")
    assert empty.sb.verify().ok
    assert len(empty.sb.filter(tag="sensor")) == 0


def test_registration_is_silent_when_repeated():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registration.register_accessors()
        registration.register_accessors()
    assert pd.DataFrame.sb._statebits_accessor
    assert pl.DataFrame.sb._statebits_accessor


def test_accessor_instances_are_backend_classes(sensors):
    assert type(sensors.to_pandas().sb) is PandasAccessor
    assert type(sensors.to_polars().sb) is PolarsNamespace


@pytest.fixture
def foreign_sb():
    """Replace ``.sb`` with another library's attribute, and put ours back afterwards."""
    saved = {cls: cls.__dict__["sb"] for cls in (pd.DataFrame, pl.DataFrame)}
    for cls in saved:
        setattr(cls, "sb", property(lambda self: "someone else's"))
    yield
    for cls, descriptor in saved.items():
        setattr(cls, "sb", descriptor)


def test_registration_refuses_existing_attribute(foreign_sb):
    with pytest.warns(RuntimeWarning, match="already exists"):
        registration._register_pandas()
    with pytest.warns(RuntimeWarning, match="already exists"):
        registration._register_polars()
    assert pd.DataFrame({"a": [1]}).sb == "someone else's"
    assert pl.DataFrame({"a": [1]}).sb == "someone else's"


@pytest.mark.parametrize("first", ["statebits", "pandas", "statebits.frames._pandas", "statebits.frames._polars"])
def test_import_registers_accessors(first):
    code = textwrap.dedent(
        f"""
        import sys
        import {first}
        import statebits, pandas, polars
        assert "statebits" in sys.modules
        sb = statebits.Statebit("x", 1.0)
        sb.transition(2.0, "set")
        assert sb.to_pandas().sb.verify().ok
        assert sb.to_polars().sb.verify().ok
        assert type(sb.to_pandas().sb).__name__ == "PandasAccessor"
        assert pandas.__spec__.loader is pandas.__loader__
        assert type(pandas.__loader__).__name__ != "_CallbackLoader"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_import_statebits_imports_no_frame_library():
    code = "import sys, statebits; print(sorted(m for m in ('pandas', 'polars', 'pyarrow', 'altair') if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert output.stdout.strip() == "[]"


# -- verbs: equal results on both backends ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_passes_and_reports(sensors, backend):
    report = frame_of(sensors, backend).sb.verify()
    assert report.ok
    assert report.members == 2
    assert report.rows == 10
    assert "verified" in report.message


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_reports_tampered_row(sensors, backend):
    frame = frame_of(sensors, backend)
    if backend == "pandas":
        frame.loc[3, "confidence"] = 0.01
    else:
        frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(0.01).otherwise(pl.col("confidence")).alias("confidence"))
    report = frame.sb.verify()
    assert not report.ok
    assert report.problems[0].identity == "temp"
    assert report.problems[0].step == 4
    with pytest.raises(IntegrityError):
        frame.sb.verify(raise_on_error=True)


FILTERS = [
    {"tag": "sensor"},
    {"tag": "door"},
    {"tag": "missing"},
    {"min_confidence": 0.8},
    {"max_confidence": 0.6},
    {"min_confidence": 0.6, "max_confidence": 0.8},
    {"start": START + timedelta(minutes=30)},
    {"end": "2024-01-01T00:40:00"},
    {"start": START + timedelta(minutes=20), "end": START + timedelta(minutes=60), "tag": "sensor"},
    {},
]


@pytest.mark.parametrize("arguments", FILTERS)
def test_filter_same_on_both_backends(sensors, arguments):
    expected = rows(sensors.to_pandas().sb.filter(**arguments))
    assert rows(sensors.to_polars().sb.filter(**arguments)) == expected


def test_filter_matches_core_queries(sensors):
    frame = sensors.to_pandas()
    by_tag = [(item.identity, item.step) for item in sensors.get_transitions_by_tag("door")]
    assert rows(frame.sb.filter(tag="door")) == by_tag
    by_confidence = sorted((item.identity, item.step) for item in sensors.get_transitions_by_confidence(0.8))
    assert sorted(rows(frame.sb.filter(min_confidence=0.8))) == by_confidence
    start, end = START + timedelta(minutes=20), START + timedelta(minutes=50)
    by_time = sorted((item.identity, item.step) for item in sensors.get_transitions_in_range(start, end))
    assert sorted(rows(frame.sb.filter(start=start, end=end))) == by_time


@pytest.mark.parametrize("backend", BACKENDS)
def test_filter_keeps_frame_type(sensors, backend):
    frame = frame_of(sensors, backend)
    result = frame.sb.filter(tag="sensor")
    assert type(result) is type(frame)
    assert hasattr(result, "sb")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tag": 3}, "expected a string"),
        ({"min_confidence": 1.5}, "between 0.0 and 1.0"),
        ({"min_confidence": 0.9, "max_confidence": 0.1}, "above max_confidence"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "after end"),
        ({"start": "yesterday"}, "invalid time"),
    ],
)
def test_filter_rejects_invalid_arguments(sensors, backend, arguments, message):
    with pytest.raises(ValidationError, match=message):
        frame_of(sensors, backend).sb.filter(**arguments)


@pytest.mark.parametrize("minutes", [-5, 0, 10, 35, 60, 1000])
def test_value_at_same_on_both_backends_and_core(sensors, minutes):
    moment = START + timedelta(minutes=minutes)
    from_pandas = sensors.to_pandas().sb.value_at(moment)
    from_polars = sensors.to_polars().sb.value_at(moment)
    expected = sensors.values_at(moment)
    assert list(from_pandas.index) == ["temp", "door"]
    assert from_polars["identity"].to_list() == ["temp", "door"]
    assert [plain(value) for value in from_pandas.tolist()] == [expected["temp"], expected["door"]]
    assert [plain(value) for value in from_polars["value"].to_list()] == [expected["temp"], expected["door"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_at_one_identity(sensors, backend):
    frame = frame_of(sensors, backend)
    assert frame.sb.value_at(START + timedelta(minutes=35), identity="door") == "open"
    with pytest.raises(ValidationError, match="not found"):
        frame.sb.value_at(START, identity="window")


def test_summary_same_on_both_backends(sensors):
    from_pandas = sensors.to_pandas().sb.summary()
    from_polars = sensors.to_polars().sb.summary()
    assert list(from_pandas.columns) == from_polars.columns[1:]
    assert list(from_pandas.index) == from_polars["identity"].to_list()
    for column in from_pandas.columns:
        left = [plain(value) for value in from_pandas[column].tolist()]
        right = [plain(value) for value in from_polars[column].to_list()]
        assert left == right, column
    temp = from_pandas.loc["temp"]
    assert temp["transitions"] == 8
    assert temp["initial_value"] == 20.0
    assert temp["last_value"] == 24.0
    assert temp["reasons"] == 1
    assert from_pandas.loc["door", "last_value"] == "closed"


@pytest.mark.parametrize("backend", BACKENDS)
def test_to_statebits_and_collection(sensors, backend):
    frame = frame_of(sensors, backend)
    rebuilt = frame.sb.to_statebits()
    assert [sb.identity for sb in rebuilt] == ["temp", "door"]
    assert rebuilt[0].history[-1].checksum == sensors["temp"].history[-1].checksum
    collection = frame.sb.to_collection(name="copy")
    assert collection.name == "copy"
    assert collection.keys() == ["temp", "door"]


def test_pandas_accessor_is_rebuilt_on_each_access(sensors):
    frame = sensors.to_pandas()
    assert frame.sb is not frame.sb
    before = len(frame.sb.filter(tag="door"))
    frame.loc[frame["identity"] == "door", "tags"] = pd.Series([["x"]] * 2, index=frame.index[frame["identity"] == "door"])
    assert before == 2
    assert len(frame.sb.filter(tag="door")) == 0


def test_polars_namespace_reads_frame_on_each_call(sensors):
    frame = sensors.to_polars()
    namespace = frame.sb
    assert len(namespace.filter(tag="door")) == 2
    frame.drop_in_place("confidence")
    with pytest.raises(ValidationError, match="confidence"):
        namespace.filter(tag="door")


# -- verbs implemented in other modules -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeline_returns_chart(sensors, backend):
    chart = frame_of(sensors, backend).sb.timeline(title="sensors")
    assert chart.to_dict()["params"][0]["name"] == "brush"


@pytest.mark.parametrize("backend", BACKENDS)
def test_ml_verbs_forward_frame_and_arguments(sensors, backend, monkeypatch):
    from statebits.ml import verbs

    calls = []
    for name in ("anomalies", "clusters", "forecast", "explain"):
        monkeypatch.setattr(verbs, name, lambda frame, *args, _name=name, **kwargs: calls.append((_name, frame, args, kwargs)) or _name)
    frame = frame_of(sensors, backend)
    assert frame.sb.anomalies(method="zscore") == "anomalies"
    assert frame.sb.clusters(n_clusters=2) == "clusters"
    assert frame.sb.forecast(3, model="automl") == "forecast"
    assert frame.sb.explain(identity="temp") == "explain"
    assert [call[0] for call in calls] == ["anomalies", "clusters", "forecast", "explain"]
    assert all(call[1] is frame for call in calls)
    assert calls[0][3] == {"method": "zscore"}
    assert calls[2][2] == (3,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_anomalies_verb_runs(backend):
    rng = np.random.default_rng(7)
    with use_clock(TickingClock("2024-01-01T00:00:00Z", step="1min")):
        sb = Statebit("signal", 0.0)
        for value in rng.normal(size=80).tolist() + [25.0]:
            sb.transition(value, "reading")
    frame = sb.to_pandas() if backend == "pandas" else sb.to_polars()
    scored = frame.sb.anomalies(method="zscore")
    assert type(scored) is type(frame)
    flags = scored["is_anomaly"].to_list() if backend == "polars" else scored["is_anomaly"].tolist()
    assert flags[-1]


@pytest.mark.skipif(not hasattr(__import__("statebits.widgets").widgets, "widget_for"), reason="statebits.widgets.widget_for is not written yet")
@pytest.mark.parametrize("backend", BACKENDS)
def test_widget_verb(sensors, backend):
    assert frame_of(sensors, backend).sb.widget() is not None


def test_frame_verbs_exported():
    assert statebits.from_events.__module__ == "statebits.frames.ingest"
    assert statebits.read_parquet.__module__ == "statebits.frames.parquet"
