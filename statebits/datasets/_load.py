"""Read the bundled dataset files into uniform event frames."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pandas as pd

from statebits.core.errors import ValidationError, invalid_parameter
from statebits.datasets._catalog import CATALOG, DatasetInfo
from statebits.datasets._catalog import describe as _info

__all__ = ["catalog", "load", "anomaly_windows", "data_path"]

_TIME = "datetime64[ns, UTC]"


def catalog() -> pd.DataFrame:
    """Return one row per bundled dataset with its title, rows, frequency, unit, source and licence."""
    rows = [
        {
            "name": info.name,
            "title": info.title,
            "rows": info.rows,
            "identities": len(info.identities),
            "frequency": info.frequency,
            "unit": info.unit,
            "anomaly_windows": info.has_anomaly_windows,
            "source": info.source,
            "licence": info.licence,
        }
        for info in CATALOG.values()
    ]
    return pd.DataFrame(rows).set_index("name")


def data_path(name: str) -> Any:
    """Return the file of dataset ``name`` as an :mod:`importlib.resources` Traversable."""
    return _data_root().joinpath(_info(name).path)


def load(name: str, *, backend: str = "pandas") -> Any:
    """Load a bundled real dataset as an event frame.

    Every dataset has the columns ``identity`` (str), ``timestamp``
    (``datetime64[ns, UTC]``) and ``value`` (float64), sorted by identity and
    time, plus the columns listed in ``describe(name).extra_columns``. Pass
    it to :func:`statebits.from_events` to build histories.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    backend : {"pandas", "polars"}, default="pandas"
        Type of frame returned.

    Returns
    -------
    pandas.DataFrame or polars.DataFrame
        A new frame on every call.

    Raises
    ------
    ValidationError
        If ``name`` is unknown (the message lists the names) or ``backend``
        is invalid.

    Examples
    --------
    >>> from statebits import datasets
    >>> frame = datasets.load("nile")
    >>> list(frame.columns)
    ['identity', 'timestamp', 'value']
    >>> str(frame["timestamp"].dtype)
    'datetime64[ns, UTC]'
    """
    if backend not in ("pandas", "polars"):
        raise invalid_parameter("backend", backend, "'pandas' or 'polars'", "statebits.datasets.load")
    info = _info(name)
    with data_path(name).open("rb") as handle:
        raw = pd.read_csv(handle)
    frame = _READERS[info.name](raw, info)
    frame = frame.sort_values(["identity", "timestamp"], kind="stable").reset_index(drop=True)
    if backend == "polars":
        import polars as pl

        return pl.from_pandas(frame)
    return frame


def anomaly_windows(name: str) -> pd.DataFrame:
    """Return the labelled anomaly windows of a NAB dataset.

    A window is the period that NAB marks around one known anomaly. A detector
    finds that anomaly when it flags any point inside the window.

    Returns
    -------
    pandas.DataFrame
        One row per window, in time order, with ``start``, ``end`` (inclusive)
        and ``label``: the time NAB gives for the anomaly itself, all three
        ``datetime64[ns, UTC]``, and ``event``: what happened, where NAB names
        it (``nyc_taxi``), else an empty string.

    Raises
    ------
    ValidationError
        If ``name`` is unknown or has no labelled windows; the message lists
        the datasets that have them.

    Examples
    --------
    >>> from statebits import datasets
    >>> len(datasets.anomaly_windows("nyc_taxi"))
    5
    """
    info = _info(name)
    if info.nab_file is None:
        labelled = ", ".join(entry.name for entry in CATALOG.values() if entry.has_anomaly_windows)
        raise ValidationError(f"dataset {name!r} has no labelled anomaly windows; datasets with windows: {labelled}")

    windows = _read_json("nab/windows.json")[info.nab_file]
    labels = _read_json("nab/labels.json")[info.nab_file]
    frame = pd.DataFrame(
        {
            "start": _utc([start for start, _ in windows]),
            "end": _utc([end for _, end in windows]),
        }
    )
    # Each label time lies inside exactly one window of the same file.
    label_times = _utc(labels)
    frame["label"] = [
        next((time for time in label_times if start <= time <= end), pd.NaT)
        for start, end in zip(frame["start"], frame["end"])
    ]
    frame["label"] = frame["label"].astype(_TIME)
    frame = frame.sort_values("start").reset_index(drop=True)
    frame["event"] = pd.Series(list(info.window_events) or [""] * len(frame), dtype="str")
    return frame


# -- helpers ------------------------------------------------------------------


def _data_root() -> Any:
    return resources.files("statebits.datasets").joinpath("data")


def _read_json(path: str) -> Any:
    with _data_root().joinpath(path).open("r", encoding="utf-8") as handle:
        return json.load(handle)


def _utc(values: Any, pattern: str | None = None) -> pd.Series:
    return pd.Series(pd.to_datetime(values, format=pattern, utc=True)).astype(_TIME)


def _series(info: DatasetInfo, timestamps: pd.Series, values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "identity": pd.Series([info.identities[0]] * len(values), dtype="str"),
            "timestamp": timestamps.reset_index(drop=True),
            "value": values.astype("float64").reset_index(drop=True),
        }
    )


def _read_nab(raw: pd.DataFrame, info: DatasetInfo) -> pd.DataFrame:
    return _series(info, _utc(raw["timestamp"], "%Y-%m-%d %H:%M:%S"), raw["value"])


def _read_co2(raw: pd.DataFrame, info: DatasetInfo) -> pd.DataFrame:
    return _series(info, _utc(raw["date"].astype(str), "%Y%m%d"), raw["co2"])


def _read_yearly(column: str) -> Callable[[pd.DataFrame, DatasetInfo], pd.DataFrame]:
    def read(raw: pd.DataFrame, info: DatasetInfo) -> pd.DataFrame:
        year_column = raw.columns[0]
        return _series(info, _utc(raw[year_column].astype(str), "%Y"), raw[column])

    return read


def _read_seattle(raw: pd.DataFrame, info: DatasetInfo) -> pd.DataFrame:
    days = _utc(raw["date"], "%Y/%m/%d")
    parts = [
        pd.DataFrame(
            {
                "identity": pd.Series([measure] * len(raw), dtype="str"),
                "timestamp": days,
                "value": raw[measure].astype("float64"),
                "weather": raw["weather"].astype("str"),
            }
        )
        for measure in info.identities
    ]
    return pd.concat(parts, ignore_index=True)


_READERS: dict[str, Callable[[pd.DataFrame, DatasetInfo], pd.DataFrame]] = {
    "machine_temperature": _read_nab,
    "nyc_taxi": _read_nab,
    "ambient_temperature": _read_nab,
    "ec2_cpu": _read_nab,
    "traffic_speed": _read_nab,
    "co2": _read_co2,
    "nile": _read_yearly("volume"),
    "sunspots": _read_yearly("SUNACTIVITY"),
    "seattle_weather": _read_seattle,
}
