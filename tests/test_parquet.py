"""Parquet export and import of statebits."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import statebits
from statebits import IntegrityError, Statebit, StatebitsCollection, StoreError, ValidationError, read_parquet, write_parquet
from statebits.core.canonical import encode
from statebits.datasets import data_path


def assert_same(original: Statebit, rebuilt: Statebit) -> None:
    assert rebuilt.key == original.key
    assert encode(rebuilt.initial_value) == encode(original.initial_value)
    assert [item.checksum for item in rebuilt.history] == [item.checksum for item in original.history]
    assert [encode(item.to_value) for item in rebuilt.history] == [encode(item.to_value) for item in original.history]
    assert [type(item.to_value) for item in rebuilt.history] == [type(item.to_value) for item in original.history]
    assert rebuilt.lineage == original.lineage
    assert rebuilt.created_at == original.created_at


@pytest.fixture
def collection(fixed_clock) -> StatebitsCollection:
    temp = Statebit("temp", 20.0)
    temp.transition(21.5, "reading", tags=["sensor"], metadata={"unit": "C", "raw": Decimal("21.50")})
    temp.transition(float("nan"), "sensor offline", confidence=0.2)
    mode = Statebit("mode", None)
    mode.transition("eco", "user choice", caused_by=temp.history[0])
    mode.transition({"schedule": [6, 22]}, "schedule set")
    count = Statebit("count", 0)
    count.transition(1, "tick")
    fork = temp.fork("what if", at=1)
    fork.transition(30.0, "heater on")
    return StatebitsCollection("home", [temp, mode, count, fork, Statebit("unused", "idle")])


def test_round_trip_keeps_everything(collection, tmp_path):
    path = tmp_path / "home.parquet"
    write_parquet(collection, path)
    rebuilt = read_parquet(path)
    assert rebuilt.name == "home"
    assert rebuilt.keys() == collection.keys()
    for original in collection:
        assert_same(original, rebuilt[original.key])
    assert rebuilt["temp@fork-1"].fork_point == 1
    assert rebuilt["unused"].initial_value == "idle"
    assert len(rebuilt["unused"].history) == 0


def test_column_types_in_file(collection, tmp_path):
    path = tmp_path / "home.parquet"
    write_parquet(StatebitsCollection("numbers", [collection["temp"]]), path)
    schema = pq.read_schema(path)
    assert schema.field("to_value").type == pa.float64()
    assert schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("tags").type == pa.list_(pa.large_string())
    write_parquet(collection, path)
    assert pq.read_schema(path).field("to_value").metadata == {b"statebits.encoding": b"json"}


def test_single_statebit_and_list(collection, tmp_path):
    write_parquet(collection["count"], tmp_path / "one.parquet")
    assert read_parquet(tmp_path / "one.parquet").keys() == ["count"]
    assert read_parquet(tmp_path / "one.parquet").name == "one"
    write_parquet([collection["count"], collection["mode"]], tmp_path / "two.parquet")
    assert read_parquet(tmp_path / "two.parquet", name="mine").keys() == ["count", "mode"]


def test_file_objects_and_options(collection):
    buffer = io.BytesIO()
    write_parquet(collection, buffer, compression="zstd")
    buffer.seek(0)
    assert read_parquet(buffer).keys() == collection.keys()


def test_readable_by_pandas_and_polars(collection, tmp_path):
    path = tmp_path / "home.parquet"
    write_parquet(collection, path)
    for frame in (pd.read_parquet(path), pl.read_parquet(path)):
        rebuilt = StatebitsCollection.from_frame(frame)
        for key in ("temp", "mode", "count"):
            assert_same_chain(collection[key], rebuilt[key])


def assert_same_chain(original: Statebit, rebuilt: Statebit) -> None:
    assert [item.checksum for item in rebuilt.history] == [item.checksum for item in original.history]


def test_tampered_file_rejected(collection, tmp_path):
    path = tmp_path / "home.parquet"
    write_parquet(collection, path)
    table = pq.read_table(path)
    confidence = table.column("confidence")
    changed = pc.if_else(pc.equal(pa.array(range(len(table))), 1), pa.scalar(0.5), confidence)
    pq.write_table(table.set_column(table.schema.get_field_index("confidence"), "confidence", changed), path)
    with pytest.raises(IntegrityError):
        read_parquet(path)


def test_missing_file_raises_store_error(tmp_path):
    with pytest.raises(StoreError, match="could not read"):
        read_parquet(tmp_path / "absent.parquet")


def test_invalid_input_rejected(tmp_path):
    with pytest.raises(ValidationError, match="expected a Statebit"):
        write_parquet({"a": 1}, tmp_path / "x.parquet")


def test_real_dataset_round_trip(tmp_path):
    with data_path("seattle_weather").open("rb") as handle:
        raw = pd.read_csv(handle)
    collection = statebits.from_events(raw, identity="seattle", value="weather", time="date", reason="daily report")
    collection.add(statebits.from_events(raw, identity="seattle_wind", value="wind", time="date")["seattle_wind"])
    write_parquet(collection, tmp_path / "weather.parquet")
    rebuilt = read_parquet(tmp_path / "weather.parquet")
    for original in collection:
        assert_same(original, rebuilt[original.key])


def test_unknown_parquet_option_rejected(tmp_path):
    sb = statebits.Statebit("x", 1.0)
    sb.transition(2.0, "a")

    with pytest.raises(statebits.ValidationError, match="compression"):
        statebits.write_parquet(sb, tmp_path / "x.parquet", compression="rar")
