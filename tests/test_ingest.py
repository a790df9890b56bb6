"""statebits.from_events: event tables into histories."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import statebits
from statebits import TickingClock, ValidationError, from_events, use_clock

BACKENDS = ("pandas", "polars")


def table(data: dict, backend: str):
    frame = pd.DataFrame(data)
    return frame if backend == "pandas" else pl.from_pandas(frame)


@pytest.fixture
def events() -> dict:
    return {
        "sensor": ["b", "a", "b", "a", "a"],
        "reading": [2.0, 1.0, 1.5, float("nan"), 3.0],
        "at": ["2024-01-01T00:05:00Z", "2024-01-01T00:03:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:04:00Z", "2024-01-01T00:03:00Z"],
        "why": ["read", "read", "boot", "glitch", "read"],
        "sure": [1.0, 0.9, 0.5, 0.1, 0.95],
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_statebit_per_identity(events, backend):
    collection = from_events(table(events, backend), identity="sensor", value="reading", time="at", reason="why", confidence="sure", name="plant")
    assert collection.name == "plant"
    assert collection.keys() == ["b", "a"]
    a = collection["a"]
    # Sorted by time; the two rows at 00:03 keep their table order.
    assert [item.to_value for item in a.history][:2] == [1.0, 3.0]
    assert math.isnan(a.history[2].to_value)
    assert [item.reason for item in a.history] == ["read", "read", "glitch"]
    assert [item.confidence for item in a.history] == [0.9, 0.95, 0.1]
    assert a.initial_value is None
    assert a.history[0].from_value is None
    assert a.created_at == datetime(2024, 1, 1, 0, 3, tzinfo=timezone.utc)
    assert [item.to_value for item in collection["b"].history] == [1.5, 2.0]
    assert all(sb.verify_integrity() for sb in collection)


def test_same_checksums_from_pandas_and_polars(events):
    with use_clock(TickingClock("2024-06-01T00:00:00Z")):
        from_pandas = from_events(table(events, "pandas"), identity="sensor", value="reading", time="at", reason="why")
    with use_clock(TickingClock("2024-06-01T00:00:00Z")):
        from_polars = from_events(table(events, "polars"), identity="sensor", value="reading", time="at", reason="why")
    for key in from_pandas.keys():
        assert [item.checksum for item in from_pandas[key].history] == [item.checksum for item in from_polars[key].history]


def test_recorded_at_is_ingest_time(events):
    with use_clock(TickingClock("2030-01-01T00:00:00Z")):
        collection = from_events(table(events, "pandas"), identity="sensor", value="reading", time="at")
    recorded = {item.recorded_at for sb in collection for item in sb.history}
    assert recorded == {datetime(2030, 1, 1, tzinfo=timezone.utc)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_defaults(events, backend):
    collection = from_events(table(events, backend), value="reading", time="at", duplicates="keep")
    assert collection.keys() == ["reading"]
    sb = collection["reading"]
    assert len(sb.history) == 5
    assert {item.reason for item in sb.history} == {"ingested from reading"}
    assert {item.confidence for item in sb.history} == {1.0}
    assert {item.tags for item in sb.history} == {()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_identity_reason_confidence_tags(events, backend):
    collection = from_events(
        table(events, backend), identity="boiler", value="reading", time="at", reason="hourly poll", confidence=0.7, tags=["poll", "boiler"]
    )
    sb = collection["boiler"]
    assert len(sb.history) == 5
    assert {item.reason for item in sb.history} == {"hourly poll"}
    assert {item.confidence for item in sb.history} == {0.7}
    assert {item.tags for item in sb.history} == {("poll", "boiler")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_identity_equal_to_value_column_is_a_name(events, backend):
    collection = from_events(table(events, backend), identity="reading", value="reading", time="at")
    assert collection.keys() == ["reading"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_tags_and_metadata_columns(backend):
    data = {
        "id": ["x", "x", "x"],
        "v": [1, 2, 3],
        "t": pd.date_range("2024-01-01", periods=3, freq="h"),
        "labels": [["a"], [], ["a", "b"]],
        "unit": ["C", "C", "F"],
    }
    collection = from_events(table(data, backend), identity="id", value="v", time="t", tags="labels", metadata=["unit"])
    sb = collection["x"]
    assert [item.tags for item in sb.history] == [("a",), (), ("a", "b")]
    assert [dict(item.metadata) for item in sb.history] == [{"unit": "C"}, {"unit": "C"}, {"unit": "F"}]
    assert [type(item.to_value) for item in sb.history] == [int, int, int]


def test_metadata_column_of_dicts():
    data = pd.DataFrame({"v": [1.0, 2.0], "t": ["2024-01-01", "2024-01-02"], "meta": [{"k": [1]}, None]})
    sb = from_events(data, value="v", time="t", metadata="meta")["v"]
    assert dict(sb.history[0].metadata) == {"k": [1]}
    assert sb.history[1].metadata == {}
    data["meta"].iloc[0]["k"].append(2)
    assert sb.history[0].metadata["k"] == [1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([True, False], [True, False]),
        (["on", "off"], ["on", "off"]),
        ([Decimal("1.10"), Decimal("2")], [Decimal("1.10"), Decimal("2")]),
        ([{"a": 1}, [1, 2]], [{"a": 1}, [1, 2]]),
        ([2**63 - 1, -(2**63)], [2**63 - 1, -(2**63)]),
    ],
)
def test_value_types_kept(values, expected):
    data = pd.DataFrame({"v": pd.Series(values, dtype=object if isinstance(values[0], (Decimal, dict)) else None), "t": ["2024-01-01", "2024-01-02"]})
    sb = from_events(data, value="v", time="t")["v"]
    assert [item.to_value for item in sb.history] == expected
    assert [type(item.to_value) for item in sb.history] == [type(value) for value in expected]


def test_missing_values_become_none_or_nan():
    data = pd.DataFrame(
        {
            "ints": pd.array([1, None], dtype="Int64"),
            "text": pd.array(["a", None], dtype="str"),
            "floats": pd.array([1.5, None], dtype="Float64"),
            "t": ["2024-01-01", "2024-01-02"],
        }
    )
    assert [item.to_value for item in from_events(data, value="ints", time="t")["ints"].history] == [1, None]
    assert [item.to_value for item in from_events(data, value="text", time="t")["text"].history] == ["a", None]
    floats = [item.to_value for item in from_events(data, value="floats", time="t")["floats"].history]
    assert floats[0] == 1.5
    assert math.isnan(floats[1])
    polars_ints = pl.DataFrame({"v": [1, None], "t": ["2024-01-01", "2024-01-02"]})
    assert [item.to_value for item in from_events(polars_ints, value="v", time="t")["v"].history] == [1, None]


def test_number_identities_become_text():
    data = pd.DataFrame({"id": [7, 8, 7], "v": [1.0, 2.0, 3.0], "t": ["2024-01-01", "2024-01-01", "2024-01-02"]})
    assert from_events(data, identity="id", value="v", time="t").keys() == ["7", "8"]


def test_initial_value_applies_to_every_statebit(events):
    collection = from_events(table(events, "pandas"), identity="sensor", value="reading", time="at", initial_value=0.0)
    assert {sb.initial_value for sb in collection} == {0.0}
    assert collection["a"].history[0].from_value == 0.0


def test_times_naive_read_as_utc_and_aware_converted():
    naive = pd.DataFrame({"v": [1.0], "t": [datetime(2024, 1, 1, 12)]})
    aware = pd.DataFrame({"v": [1.0], "t": [pd.Timestamp("2024-01-01T14:00:00+02:00")]})
    text = pd.DataFrame({"v": [1.0], "t": ["2024-01-01T14:00:00+02:00"]})
    noon = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    for data in (naive, aware, text, pl.from_pandas(naive), pl.from_pandas(text)):
        assert from_events(data, value="v", time="t")["v"].history[0].timestamp == noon


def test_nanosecond_times_kept():
    data = pd.DataFrame({"v": [1.0], "t": [pd.Timestamp("2024-01-01T00:00:00.123456789Z")]})
    assert from_events(data, value="v", time="t")["v"].history[0].timestamp_ns % 1_000_000_000 == 123_456_789


def test_other_time_formats_parsed():
    data = pd.DataFrame({"v": [1.0, 2.0], "t": ["2012/01/01", "2012/01/02"]})
    sb = from_events(data, value="v", time="t")["v"]
    assert sb.history[1].timestamp == datetime(2012, 1, 2, tzinfo=timezone.utc)


def test_arrow_table_and_lazy_frame_accepted(events):
    arrow_table = pa.Table.from_pandas(pd.DataFrame(events), preserve_index=False)
    assert len(from_events(arrow_table, identity="sensor", value="reading", time="at")["a"].history) == 3
    lazy = pl.DataFrame(events).lazy()
    assert len(from_events(lazy, identity="sensor", value="reading", time="at")["a"].history) == 3


def test_empty_table_gives_empty_collection():
    empty = pd.DataFrame({"v": pd.Series([], dtype=float), "t": pd.Series([], dtype="datetime64[ns]")})
    assert len(from_events(empty, value="v", time="t")) == 0
    with pytest.raises(ValidationError, match="not found"):
        from_events(empty, value="missing", time="t")


def test_many_identities_in_one_pass():
    rng = np.random.default_rng(3)
    count = 20_000
    data = pl.DataFrame(
        {
            "id": rng.integers(0, 500, count).astype(str),
            "v": rng.normal(size=count),
            "t": pl.datetime_range(datetime(2024, 1, 1), datetime(2024, 1, 1) + timedelta(seconds=count - 1), "1s", eager=True),
        }
    )
    collection = from_events(data.sample(fraction=1.0, shuffle=True, seed=1), identity="id", value="v", time="t")
    assert len(collection) == 500
    assert sum(len(sb.history) for sb in collection) == count
    for sb in list(collection)[:20]:
        times = [item.timestamp_ns for item in sb.history]
        assert times == sorted(times)
        assert sb.verify_integrity()


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("parameter", ["value", "time"])
def test_missing_column_lists_columns(events, backend, parameter):
    arguments = {"value": "reading", "time": "at", parameter: "nope"}
    with pytest.raises(ValidationError, match=r"column 'nope' not found; the table has the columns \['sensor', 'reading', 'at'"):
        from_events(table(events, backend), **arguments)


def test_missing_tags_column_suggests_list(events):
    with pytest.raises(ValidationError, match=r"Pass a list such as \['nope'\]"):
        from_events(table(events, "pandas"), value="reading", time="at", tags="nope")


@pytest.mark.parametrize("backend", BACKENDS)
def test_unparseable_time_named(backend):
    data = table({"v": [1.0, 2.0], "t": ["2024-01-01", "not a time"]}, backend)
    with pytest.raises(ValidationError, match="'not a time' at row 1 is not a time"):
        from_events(data, value="v", time="t")


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_naive_and_aware_times_rejected(backend):
    data = table({"v": [1.0, 2.0], "t": ["2024-01-01T00:00:00", "2024-01-01T01:00:00+01:00"]}, backend)
    with pytest.raises(ValidationError, match="mixes naive times"):
        from_events(data, value="v", time="t")


def test_mixed_datetime_objects_rejected():
    data = pd.DataFrame({"v": [1.0, 2.0], "t": pd.Series([datetime(2024, 1, 1), datetime(2024, 1, 2, tzinfo=timezone.utc)], dtype=object)})
    with pytest.raises(ValidationError, match="mixes naive times"):
        from_events(data, value="v", time="t")


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_time_rejected(backend):
    data = table({"v": [1.0, 2.0], "t": [pd.Timestamp("2024-01-01"), pd.NaT]}, backend)
    with pytest.raises(ValidationError, match="row 1 has no time"):
        from_events(data, value="v", time="t")


@pytest.mark.parametrize("backend", BACKENDS)
def test_numeric_time_rejected(backend):
    data = table({"v": [1.0], "t": [1_700_000_000]}, backend)
    with pytest.raises(ValidationError, match="convert it first"):
        from_events(data, value="v", time="t")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("confidence", "message"), [(float("nan"), "nan at row 1"), (1.5, "1.5 at row 1"), (-0.1, "-0.1 at row 1")])
def test_invalid_confidence_column(backend, confidence, message):
    data = table({"v": [1.0, 2.0], "t": ["2024-01-01", "2024-01-02"], "c": [0.5, confidence]}, backend)
    with pytest.raises(ValidationError, match=message):
        from_events(data, value="v", time="t", confidence="c")


def test_invalid_constant_confidence():
    data = pd.DataFrame({"v": [1.0], "t": ["2024-01-01"]})
    with pytest.raises(ValidationError, match="between 0.0 and 1.0"):
        from_events(data, value="v", time="t", confidence=2.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("reason", "message"), [(None, "row 1 is missing"), ("  ", "expected a non-empty string")])
def test_invalid_reason_cells(backend, reason, message):
    data = table({"v": [1.0, 2.0], "t": ["2024-01-01", "2024-01-02"], "r": ["ok", reason]}, backend)
    with pytest.raises(ValidationError, match=message):
        from_events(data, value="v", time="t", reason="r")


def test_missing_identity_rejected():
    data = pd.DataFrame({"id": ["a", None], "v": [1.0, 2.0], "t": ["2024-01-01", "2024-01-02"]})
    with pytest.raises(ValidationError, match="`identity` column 'id': row 1 is missing"):
        from_events(data, identity="id", value="v", time="t")


def test_invalid_tags_cell_rejected():
    data = pd.DataFrame({"v": [1.0], "t": ["2024-01-01"], "tags": ["not-a-list"]})
    with pytest.raises(ValidationError, match="expected a list of strings"):
        from_events(data, value="v", time="t", tags="tags")


def test_invalid_metadata_cell_rejected():
    data = pd.DataFrame({"v": [1.0], "t": ["2024-01-01"], "meta": ["text"]})
    with pytest.raises(ValidationError, match="expected a dict or None"):
        from_events(data, value="v", time="t", metadata="meta")


def test_invalid_events_type_rejected():
    with pytest.raises(ValidationError, match="expected a pandas or Polars DataFrame"):
        from_events([{"v": 1}], value="v", time="t")


def test_invalid_duplicates_option_rejected(events):
    with pytest.raises(ValidationError, match="duplicates"):
        from_events(table(events, "pandas"), value="reading", time="at", duplicates="ignore")


@pytest.fixture
def repeated() -> dict:
    return {
        "id": ["a", "a", "a", "a", "b"],
        "v": [1.0, 2.0, 1.0, float("nan"), 1.0],
        "t": ["2024-01-01T00:00Z", "2024-01-01T00:00Z", "2024-01-01T00:00Z", "2024-01-01T00:01Z", "2024-01-01T00:00Z"],
        "r": ["x", "x", "x", "x", "x"],
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_raise_by_default(repeated, backend):
    with pytest.raises(ValidationError, match="found 1 duplicate events .* first at rows 0 and 2"):
        from_events(table(repeated, backend), identity="id", value="v", time="t", reason="r")


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_drop_keeps_first(repeated, backend):
    collection = from_events(table(repeated, backend), identity="id", value="v", time="t", reason="r", duplicates="drop")
    assert [item.to_value for item in collection["a"].history][:2] == [1.0, 2.0]
    assert len(collection["a"].history) == 3
    assert len(collection["b"].history) == 1


def test_duplicates_keep_records_all(repeated):
    collection = from_events(table(repeated, "pandas"), identity="id", value="v", time="t", reason="r", duplicates="keep")
    assert len(collection["a"].history) == 4


def test_nan_values_are_duplicates_of_each_other():
    data = pd.DataFrame({"v": [float("nan"), float("nan")], "t": ["2024-01-01", "2024-01-01"]})
    with pytest.raises(ValidationError, match="duplicate"):
        from_events(data, value="v", time="t")


def test_exported_from_top_level():
    assert statebits.from_events is from_events


def test_misspelt_identity_column_rejected():
    events = pd.DataFrame({"sensor": ["a", "b"], "t": ["2024-01-01", "2024-01-02"], "v": [1.0, 2.0]})

    with pytest.raises(ValidationError, match="there is 'sensor'"):
        from_events(events, identity="sensors", value="v", time="t")


def test_constant_identity_far_from_columns():
    events = pd.DataFrame({"sensor": ["a", "b"], "t": ["2024-01-01", "2024-01-02"], "v": [1.0, 2.0]})

    assert from_events(events, identity="all sensors", value="v", time="t").keys() == ["all sensors"]
