"""Tests of the bundled real datasets in statebits.datasets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from statebits import ValidationError, datasets

NAB_NAMES = ["ambient_temperature", "ec2_cpu", "machine_temperature", "nyc_taxi", "traffic_speed"]


def test_names_sorted_and_complete():
    names = datasets.names()
    assert names == sorted(names)
    assert set(NAB_NAMES) <= set(names)
    assert {"co2", "nile", "sunspots", "seattle_weather"} <= set(names)


@pytest.mark.parametrize("name", datasets.names())
def test_load_uniform_shape(name):
    info = datasets.describe(name)
    frame = datasets.load(name)

    assert list(frame.columns) == ["identity", "timestamp", "value", *info.extra_columns]
    assert len(frame) == info.rows
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["value"].dtype == "float64"
    assert pd.api.types.is_string_dtype(frame["identity"])
    assert sorted(frame["identity"].unique()) == sorted(info.identities)


@pytest.mark.parametrize("name", datasets.names())
def test_load_times_increase_per_identity(name):
    frame = datasets.load(name)

    # The NAB file repeats twelve 5-minute readings of one hour on 2014-01-07.
    repeated = 12 if name == "machine_temperature" else 0
    for identity, group in frame.groupby("identity"):
        assert group["timestamp"].is_monotonic_increasing, identity
        assert group["timestamp"].duplicated().sum() == repeated, identity


@pytest.mark.parametrize("name", datasets.names())
def test_describe_has_source_and_licence(name):
    info = datasets.describe(name)

    assert info.source
    assert info.licence in ("public domain",) or info.licence.startswith("MIT")
    assert info.unit
    assert datasets.data_path(name).is_file()


def test_load_returns_fresh_frame():
    first = datasets.load("nile")
    first.loc[0, "value"] = -1.0

    assert datasets.load("nile").loc[0, "value"] == 1120.0


def test_load_polars_backend():
    frame = datasets.load("seattle_weather", backend="polars")

    assert isinstance(frame, pl.DataFrame)
    assert frame.columns == ["identity", "timestamp", "value", "weather"]
    assert frame.schema["timestamp"] == pl.Datetime("ns", "UTC")
    assert frame.height == 5844


def test_load_invalid_backend():
    with pytest.raises(ValidationError, match="backend"):
        datasets.load("nile", backend="arrow")


def test_unknown_name_lists_names():
    with pytest.raises(ValidationError) as caught:
        datasets.load("nyc-taxi")

    message = str(caught.value)
    assert "unknown dataset 'nyc-taxi'" in message
    for name in datasets.names():
        assert name in message
    assert "did you mean 'nyc_taxi'" in message


def test_describe_unknown_name():
    with pytest.raises(ValidationError, match="unknown dataset"):
        datasets.describe("weather")


def test_known_values_of_real_files():
    nile = datasets.load("nile")
    assert nile["timestamp"].iloc[0] == pd.Timestamp("1871-01-01", tz="UTC")
    assert nile["value"].iloc[0] == 1120.0

    co2 = datasets.load("co2")
    assert co2["value"].isna().sum() == 59
    assert co2["timestamp"].iloc[0] == pd.Timestamp("1958-03-29", tz="UTC")

    taxi = datasets.load("nyc_taxi")
    assert taxi["timestamp"].iloc[1] == pd.Timestamp("2014-07-01 00:30", tz="UTC")
    assert taxi["value"].iloc[0] == 10844.0

    weather = datasets.load("seattle_weather")
    first_day = weather[weather["timestamp"] == pd.Timestamp("2012-01-02", tz="UTC")].set_index("identity")
    assert first_day.loc["precipitation", "value"] == 10.9
    assert first_day.loc["temp_max", "value"] == 10.6
    assert set(first_day["weather"]) == {"rain"}
    assert set(weather["weather"].unique()) == {"drizzle", "fog", "rain", "snow", "sun"}


@pytest.mark.parametrize("name", NAB_NAMES)
def test_anomaly_windows_contain_labels(name):
    windows = datasets.anomaly_windows(name)
    frame = datasets.load(name)

    assert list(windows.columns) == ["start", "end", "label", "event"]
    for column in ["start", "end", "label"]:
        assert str(windows[column].dtype) == "datetime64[ns, UTC]"
    assert windows["label"].notna().all()
    assert (windows["start"] <= windows["label"]).all()
    assert (windows["label"] <= windows["end"]).all()
    assert windows["start"].is_monotonic_increasing
    # Every window covers real observations of the series.
    for start, end in zip(windows["start"], windows["end"]):
        inside = frame["timestamp"].between(start, end)
        assert inside.any()


def test_anomaly_windows_counts():
    counts = {name: len(datasets.anomaly_windows(name)) for name in NAB_NAMES}

    assert counts == {"ambient_temperature": 2, "ec2_cpu": 2, "machine_temperature": 4, "nyc_taxi": 5, "traffic_speed": 4}


def test_anomaly_windows_name_taxi_events():
    windows = datasets.anomaly_windows("nyc_taxi")
    events = dict(zip(windows["event"], windows["label"].dt.strftime("%Y-%m-%d")))

    assert events["NYC marathon"] == "2014-11-01"
    assert events["Thanksgiving"] == "2014-11-27"
    assert events["Christmas"] == "2014-12-25"
    assert events["New Year's Day"] == "2015-01-01"
    assert events["snowstorm"] == "2015-01-27"
    assert set(datasets.anomaly_windows("ec2_cpu")["event"]) == {""}


def test_anomaly_windows_missing_for_other_data():
    with pytest.raises(ValidationError) as caught:
        datasets.anomaly_windows("co2")

    message = str(caught.value)
    assert "no labelled anomaly windows" in message
    assert "machine_temperature" in message


def test_catalog_table():
    table = datasets.catalog()

    assert list(table.index) == datasets.names()
    assert table.loc["nyc_taxi", "rows"] == 10320
    assert bool(table.loc["nyc_taxi", "anomaly_windows"])
    assert not bool(table.loc["nile", "anomaly_windows"])


# SHA-256 of each file as published by its source (NAB commit ea702d7, statsmodels,
# vega_datasets), so a changed or truncated bundled copy fails here.
PUBLISHED_SHA256 = {
    "ambient_temperature": "230b68ccca20f59d562afd5d24ad52939c9b784386bed0054018358bf9120581",
    "co2": "16695fa2786e53414e5a6b54767a3fdf5de99cfbc68617f69d1362d92776a92f",
    "ec2_cpu": "01613e6f632d067f11a5dfd40a188b0789752b388d9bc77a398bd06333878a76",
    "machine_temperature": "92bf5b87fc7f9bba8ca0b7ec63ccaac8cb4a1371a258e8c29a10ae9c018d82a4",
    "nile": "88e97bea7249e5832a85e41aec6ce4b8f7b1b14aae930c8363da7f193286b598",
    "nyc_taxi": "d8fa6f7f0734bf5c8be12c52a94e20a82664c397d9dec4449156bd453d32856d",
    "seattle_weather": "62f0609f787158128aa2bd102967173a4953122dd4f872bf1d502cae1037df0b",
    "sunspots": "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b",
    "traffic_speed": "15ba994384730cb5a2e6818f17ded1430b40d92eb7a08e5b1a48a445c8c350f6",
}


@pytest.mark.parametrize("name", datasets.names())
def test_files_match_published_copies(name):
    shipped = datasets.data_path(name).read_bytes()

    assert hashlib.sha256(shipped).hexdigest() == PUBLISHED_SHA256[name]


def test_nab_licence_shipped():
    root = datasets.data_path("nyc_taxi").parent.parent
    licence = root.joinpath("LICENSE.txt").read_text(encoding="utf-8")

    assert "Numenta" in licence
    assert "Permission is hereby granted" in licence
    windows = json.loads(root.joinpath("windows.json").read_text(encoding="utf-8"))
    assert "realKnownCause/nyc_taxi.csv" in windows


def test_readme_lists_every_dataset():
    readme = Path(__file__).resolve().parents[1] / "datasets" / "README.md"
    text = readme.read_text(encoding="utf-8")

    for name in datasets.names():
        info = datasets.describe(name)
        assert f"`{name}`" in text
        assert f"{info.rows:,}" in text
        assert info.path in text
