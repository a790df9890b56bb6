"""History frames: pandas, Polars and Arrow views, their dtypes, caching and exact rebuild."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import statebits
from statebits import IntegrityError, Statebit, StatebitsCollection, TickingClock, ValidationError, use_clock
from statebits.core.canonical import encode
from statebits.datasets import data_path
from statebits.frames.schema import COLUMNS

BACKENDS = ("pandas", "polars", "arrow")


def view(source, backend: str):
    return getattr(source, f"to_{backend}")()


def same_value(left, right) -> bool:
    return encode(left) == encode(right)


def assert_same_statebit(original: Statebit, rebuilt: Statebit) -> None:
    assert rebuilt.identity == original.identity
    assert same_value(rebuilt.initial_value, original.initial_value)
    assert len(rebuilt.history) == len(original.history)
    assert [item.checksum for item in rebuilt.history] == [item.checksum for item in original.history]
    for mine, theirs in zip(rebuilt.history, original.history):
        assert same_value(mine.to_value, theirs.to_value)
        assert type(mine.to_value) is type(theirs.to_value)
        assert mine.tags == theirs.tags
        assert dict(mine.metadata) == dict(theirs.metadata)
        assert mine.timestamp_ns == theirs.timestamp_ns
        assert mine.recorded_at_ns == theirs.recorded_at_ns
        assert mine.caused_by == theirs.caused_by
    assert rebuilt.verify_integrity()


@pytest.fixture
def account(fixed_clock):
    sb = Statebit("account", 100.0)
    sb.transition(150.0, "deposit", tags=["income", "payroll"], metadata={"source": "bank", "items": [1, 2]})
    sb.transition(float("nan"), "sensor glitch", confidence=0.25)
    sb.transition(120.0, "withdrawal", confidence=0.9, caused_by=sb.history[0])
    return sb


@pytest.fixture
def mixed(fixed_clock):
    sb = Statebit("mixed", None)
    for value in (1, "text", Decimal("1.50"), {"nested": [1, {"deep": None}]}, None, float("nan"), True, [1, 2], 2**70):
        sb.transition(value, "change")
    return sb


# -- schema and dtypes -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_view_columns_in_schema_order(account, backend):
    frame = view(account, backend)
    columns = frame.column_names if backend == "arrow" else list(frame.columns)
    assert columns == list(COLUMNS)
    assert len(frame) == 3


def test_pandas_dtypes(account):
    frame = account.to_pandas()
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes["identity"] == "str"
    assert dtypes["step"] == "int64"
    assert dtypes["timestamp"] == "datetime64[ns, UTC]"
    assert dtypes["recorded_at"] == "datetime64[ns, UTC]"
    assert dtypes["from_value"] == "float64"
    assert dtypes["to_value"] == "float64"
    assert dtypes["reason"] == "str"
    assert dtypes["confidence"] == "float64"
    assert dtypes["metadata"] == "object"
    assert dtypes["checksum"] == "str"
    assert dtypes["branch"] == "str"
    assert frame["tags"].iloc[0] == ["income", "payroll"]
    assert frame["tags"].iloc[1] == []
    assert frame["metadata"].iloc[0] == {"source": "bank", "items": [1, 2]}
    assert frame["metadata"].iloc[1] is None
    assert frame["caused_by"].iloc[2][0]["step"] == 1
    assert frame["checksum"].iloc[2] == account.history[2].checksum


def test_polars_dtypes(account):
    frame = account.to_polars()
    schema = frame.schema
    assert schema["identity"] == pl.String
    assert schema["timestamp"] == pl.Datetime("ns", "UTC")
    assert schema["to_value"] == pl.Float64
    assert schema["tags"] == pl.List(pl.String)
    assert schema["metadata"] == pl.String
    assert isinstance(schema["caused_by"], pl.List)
    assert frame["metadata"][0] is not None and '"source":"bank"' in frame["metadata"][0]
    assert frame["metadata"][1] is None


def test_arrow_types_and_metadata(account):
    table = account.to_arrow()
    assert table.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("to_value").type == pa.float64()
    assert table.schema.field("tags").type == pa.list_(pa.large_string())
    assert b"statebits" in table.schema.metadata


@pytest.mark.parametrize(
    ("values", "pandas_dtype", "polars_dtype"),
    [
        ([1.5, 2.5], "float64", pl.Float64),
        ([1, 2], "int64", pl.Int64),
        ([True, False], "bool", pl.Boolean),
        (["a", "b"], "str", pl.String),
        ([1, "a"], "object", pl.Object),
        ([Decimal("1.1")], "object", pl.Object),
    ],
)
def test_value_dtypes_follow_python_types(fixed_clock, values, pandas_dtype, polars_dtype):
    sb = Statebit("v", values[0])
    for value in values:
        sb.transition(value, "set")
    assert str(sb.to_pandas()["to_value"].dtype) == pandas_dtype
    assert sb.to_polars().schema["to_value"] == polars_dtype
    assert [type(value) for value in sb.to_pandas()["to_value"].tolist()] == [type(value) for value in values]


def test_none_initial_value_is_missing_entry(fixed_clock):
    sb = Statebit("v")
    sb.transition(1, "a")
    sb.transition(2, "b")
    assert str(sb.to_pandas()["from_value"].dtype) == "Int64"
    assert sb.to_pandas()["from_value"].isna().tolist() == [True, False]
    assert sb.to_polars()["from_value"].to_list() == [None, 1]


def test_other_initial_type_mixes_from_value(fixed_clock):
    sb = Statebit("balance", 1000)
    sb.transition(1500.5, "deposit")
    frame = sb.to_pandas()
    assert frame["from_value"].dtype == object
    assert type(frame["from_value"].iloc[0]) is int
    assert str(frame["to_value"].dtype) == "float64"
    table = sb.to_arrow()
    assert table.schema.field("from_value").metadata == {b"statebits.encoding": b"json"}


def test_empty_statebit_gives_empty_frames(fixed_clock):
    sb = Statebit("empty", 3)
    for backend in BACKENDS:
        assert len(view(sb, backend)) == 0


def test_fork_rows_keep_parent_branch(account):
    fork = account.fork("what if", at=2)
    fork.transition(7.0, "alternative")
    frame = fork.to_pandas()
    assert frame["branch"].tolist() == ["main", "main", fork.branch]
    assert frame["step"].tolist() == [1, 2, 3]


def test_collection_frame_is_long_format(account, mixed):
    collection = StatebitsCollection("c", [account, mixed])
    frame = collection.to_pandas()
    assert frame["identity"].tolist() == ["account"] * 3 + ["mixed"] * 9
    assert frame["to_value"].dtype == object
    assert type(frame["to_value"].iloc[0]) is float
    assert collection.to_polars().height == 12
    assert collection.to_arrow().num_rows == 12


# -- caching and safety of returned frames ---------------------------------------------------------


def test_views_are_cached_until_append(account):
    first = account.to_arrow()
    assert account.to_arrow().column("checksum") is not None
    assert account.history._cache
    account.transition(1.0, "more")
    assert len(account.to_arrow()) == len(first) + 1
    assert len(account.to_pandas()) == 4
    assert account.to_polars().height == 4


def test_mutating_pandas_view_leaves_history_alone(account):
    frame = account.to_pandas()
    frame.loc[0, "to_value"] = -1.0
    frame.loc[0, "confidence"] = 0.0
    frame["metadata"].iloc[0]["items"].append(3)
    again = account.to_pandas()
    assert again["to_value"].iloc[0] == 150.0
    assert again["confidence"].iloc[0] == 1.0
    assert again["metadata"].iloc[0]["items"] == [1, 2]
    assert account.history[0].metadata["items"] == [1, 2]


def test_mutating_mixed_values_leaves_history_alone(mixed):
    frame = mixed.to_pandas()
    frame["to_value"].iloc[3]["nested"].append("changed")
    polars_frame = mixed.to_polars()
    polars_frame["to_value"][7].append("changed")
    assert mixed.history[3].to_value == {"nested": [1, {"deep": None}]}
    assert mixed.history[7].to_value == [1, 2]


def test_mutating_polars_view_leaves_cache_alone(account):
    frame = account.to_polars()
    frame[0, "to_value"] = -1.0
    assert account.to_polars()["to_value"][0] == 150.0


def test_checksum_text_reused_after_append(fixed_clock):
    sb = Statebit("counter", 0.0)
    for step in range(50):
        sb.transition(float(step), "tick")
    before = sb.to_pandas()["checksum"].tolist()
    sb.transition(99.0, "tick")
    after = sb.to_pandas()["checksum"].tolist()
    assert after[:50] == before
    assert after[50] == sb.history[50].checksum


# -- exact rebuild ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_numeric(account, backend):
    rebuilt = Statebit.from_frame(view(account, backend))
    assert_same_statebit(account, rebuilt)
    assert math.isnan(rebuilt.history[1].to_value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_mixed_values(mixed, backend):
    assert_same_statebit(mixed, Statebit.from_frame(view(mixed, backend)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_collection(account, mixed, backend):
    collection = StatebitsCollection("c", [account, mixed, Statebit("empty", "start")])
    rebuilt = StatebitsCollection.from_frame(view(collection, backend), name="copy")
    assert rebuilt.name == "copy"
    for original in collection:
        if original.key in rebuilt:
            assert_same_statebit(original, rebuilt[original.key])
    # Polars frames carry no attributes, so a statebit without rows cannot come back from one.
    assert ("empty" in rebuilt) == (backend != "polars")


def test_round_trip_keeps_attributes(account):
    account.freeze()
    rebuilt = Statebit.from_frame(account.to_pandas())
    assert rebuilt.lineage == account.lineage
    assert rebuilt.created_at == account.created_at
    assert rebuilt.frozen


def test_round_trip_fork(account):
    fork = account.fork("what if", at=2)
    fork.transition(7.0, "alternative")
    for backend in BACKENDS:
        rebuilt = Statebit.from_frame(view(fork, backend))
        assert_same_statebit(fork, rebuilt)
        assert rebuilt.branch == fork.branch
        assert rebuilt.fork_point == 2


def test_round_trip_collection_with_fork(account):
    fork = account.fork("what if", at=1)
    fork.transition(7.0, "alternative")
    collection = StatebitsCollection("c", [account, fork])
    for backend in BACKENDS:
        rebuilt = StatebitsCollection.from_frame(view(collection, backend))
        assert sorted(rebuilt.keys()) == sorted(collection.keys())
        assert_same_statebit(fork, rebuilt[fork.key])


def test_none_initial_value_without_attrs(fixed_clock):
    for initial in (None, float("nan")):
        sb = Statebit("v", initial)
        sb.transition(1.0, "a")
        frame = sb.to_pandas()
        frame.attrs.clear()
        rebuilt = Statebit.from_frame(frame)
        assert same_value(rebuilt.initial_value, initial)


def test_from_frame_of_sorted_collection(account, mixed):
    frame = StatebitsCollection("c", [account, mixed]).to_pandas()
    shuffled = frame.sort_values(["step", "identity"], ascending=[False, True])
    rebuilt = StatebitsCollection.from_frame(shuffled)
    assert_same_statebit(account, rebuilt["account"])


def test_from_frame_needs_rows_or_attrs(fixed_clock):
    frame = Statebit("empty", 1).to_polars()
    with pytest.raises(ValidationError, match="nothing to rebuild"):
        Statebit.from_frame(frame)


def test_from_frame_rejects_filtered_rows(account):
    frame = account.to_pandas().iloc[1:]
    with pytest.raises(ValidationError, match="every\\s+step from 1"):
        Statebit.from_frame(frame)


def test_from_frame_rejects_missing_columns(account):
    frame = account.to_pandas().drop(columns=["checksum"])
    with pytest.raises(ValidationError, match="checksum"):
        Statebit.from_frame(frame)


def test_statebit_from_frame_rejects_several(account, mixed):
    frame = StatebitsCollection("c", [account, mixed]).to_pandas()
    with pytest.raises(ValidationError, match="contains 2 statebits"):
        Statebit.from_frame(frame)


def test_json_values_survive_losing_field_metadata(mixed):
    table = mixed.to_arrow()
    plain = pl.from_arrow(table)
    assert plain.schema["to_value"] == pl.String
    assert_same_statebit(mixed, Statebit.from_frame(plain))


# -- tampering ---------------------------------------------------------------------------------------


def _tampered(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    changed = frame.copy()
    row = 1
    if column == "identity":
        changed.loc[row, column] = "someone else"
    elif column == "step":
        changed.loc[row, column] = 7
    elif column in ("timestamp", "recorded_at"):
        changed.loc[row, column] = changed.loc[row, column] + pd.Timedelta(nanoseconds=1)
    elif column in ("from_value", "to_value"):
        changed[column] = changed[column].astype(object)
        changed.at[row, column] = 42.0
    elif column == "reason":
        changed.loc[row, column] = "forged"
    elif column == "confidence":
        changed.loc[row, column] = 0.5
    elif column == "tags":
        changed[column] = changed[column].astype(object)
        changed.at[row, column] = ["forged"]
    elif column == "metadata":
        changed.at[row, column] = {"forged": True}
    elif column == "caused_by":
        changed[column] = changed[column].astype(object)
        changed.at[2, column] = [{"identity": "account", "step": 2, "checksum": "0" * 64, "branch": "main"}]
    elif column == "checksum":
        changed.loc[row, column] = "f" * 64
    elif column == "branch":
        changed.loc[row, column] = "forged"
    return changed


@pytest.mark.parametrize("column", COLUMNS)
def test_tampering_any_column_detected(account, column):
    tampered = _tampered(account.to_pandas(), column)
    report = tampered.sb.verify()
    assert not report.ok
    assert report.problems
    with pytest.raises((IntegrityError, ValidationError)):
        Statebit.from_frame(tampered)


@pytest.mark.parametrize("column", ["timestamp", "to_value", "reason", "confidence", "checksum", "from_value"])
def test_tampering_detected_in_polars_and_arrow(account, column):
    tampered = _tampered(account.to_pandas(), column)
    tampered.attrs.clear()
    if column in ("from_value", "to_value"):
        tampered[column] = tampered[column].astype("float64")
    polars_frame = pl.from_pandas(tampered.drop(columns=["metadata", "caused_by", "tags"]))
    assert not polars_frame.sb.verify().ok
    arrow_table = pa.Table.from_pandas(tampered.drop(columns=["metadata", "caused_by", "tags"]), preserve_index=False)
    with pytest.raises((IntegrityError, ValidationError)):
        Statebit.from_frame(arrow_table)


def test_tampering_first_from_value_detected_without_attrs(account):
    frame = account.to_polars().with_columns(
        pl.when(pl.col("step") == 1).then(99.0).otherwise(pl.col("from_value")).alias("from_value")
    )
    with pytest.raises(IntegrityError) as caught:
        Statebit.from_frame(frame)
    assert caught.value.step == 1


# -- real data -------------------------------------------------------------------------------------------


def _read_csv(name: str) -> pd.DataFrame:
    with data_path(name).open("rb") as handle:
        return pd.read_csv(handle)


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_nyc_taxi(backend):
    events = _read_csv("nyc_taxi")
    taxi = statebits.from_events(events, identity="nyc_taxi", value="value", time="timestamp", reason="half-hour count")
    sb = taxi["nyc_taxi"]
    assert len(sb.history) == 10_320
    frame = view(sb, backend)
    rebuilt = Statebit.from_frame(frame)
    assert_same_statebit(sb, rebuilt)
    assert type(rebuilt.value) is int


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_co2_with_missing_values(backend):
    raw = _read_csv("co2")
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    co2 = statebits.from_events(raw, identity="co2", value="co2", time="date")["co2"]
    assert sum(math.isnan(item.to_value) for item in co2.history) == 59
    assert_same_statebit(co2, Statebit.from_frame(view(co2, backend)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_seattle_weather_states(backend):
    raw = _read_csv("seattle_weather")
    weather = statebits.from_events(raw, identity="seattle", value="weather", time="date", confidence=0.9)["seattle"]
    frame = view(weather, backend)
    if backend == "pandas":
        assert str(frame["to_value"].dtype) == "str"
        assert set(frame["to_value"]) == {"drizzle", "rain", "sun", "snow", "fog"}
    assert_same_statebit(weather, Statebit.from_frame(frame))


# -- property tests ------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.datetimes(timezones=st.just(timezone.utc)),
)
nested = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)),
    max_leaves=6,
)
homogeneous = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=6),
    st.lists(st.booleans(), min_size=1, max_size=6),
    st.lists(st.text(max_size=8), min_size=1, max_size=6),
)
value_lists = st.one_of(homogeneous, st.lists(nested, min_size=1, max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=value_lists, initial=nested, backend=st.sampled_from(BACKENDS), drop_attrs=st.booleans())
def test_any_values_round_trip(values, initial, backend, drop_attrs):
    with use_clock(TickingClock("2024-01-01T00:00:00Z", step="1s")):
        sb = Statebit("prop", initial)
        for position, value in enumerate(values):
            sb.transition(value, f"change {position}", tags=["odd"] if position % 2 else None, metadata={"at": position} if position == 1 else None)
    frame = view(sb, backend)
    if drop_attrs and backend == "pandas":
        frame.attrs.clear()
    assert_same_statebit(sb, Statebit.from_frame(frame))
    assert frame_verifies(frame)


def frame_verifies(frame) -> bool:
    from statebits.frames import verify_frame

    return verify_frame(frame).ok


def test_values_in_frames_are_python_types(fixed_clock):
    sb = Statebit("v", 0)
    sb.transition(2**62, "big int")
    for backend in ("pandas", "polars"):
        frame = view(sb, backend)
        values = frame["to_value"].tolist() if backend == "pandas" else frame["to_value"].to_list()
        assert values == [2**62]
    rebuilt = Statebit.from_frame(sb.to_pandas())
    assert type(rebuilt.value) is int
    assert rebuilt.history[0].timestamp == datetime(2024, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
    assert rebuilt.value == np.int64(2**62)


def test_views_consistent_during_appends(fixed_clock):
    import threading

    sb = Statebit("busy", 0.0)
    for step in range(200):
        sb.transition(float(step), "seed")
    stop = threading.Event()

    def append() -> None:
        step = 0
        while not stop.is_set() and step < 5000:
            sb.transition(float(step), "append")
            step += 1

    writer = threading.Thread(target=append)
    writer.start()
    try:
        for _ in range(30):
            frame = sb.to_pandas()
            assert frame["step"].tolist() == list(range(1, len(frame) + 1))
            assert frame["checksum"].iloc[-1] == sb.history[len(frame) - 1].checksum
    finally:
        stop.set()
        writer.join()


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_collection_views(backend):
    frame = view(StatebitsCollection("nothing"), backend)
    columns = frame.column_names if backend == "arrow" else list(frame.columns)
    assert columns == list(COLUMNS)
    assert len(frame) == 0
    if backend != "polars":
        rebuilt = StatebitsCollection.from_frame(frame, name=None)
        assert rebuilt.name == "nothing"
        assert len(rebuilt) == 0
