"""Helpers that turn the shared real datasets into history frames for the ML tests.

The datasets are the copies bundled in ``statebits/datasets/data``.
The tests in this file check the helpers themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from statebits.frames.schema import COLUMNS

DATASETS = Path(__file__).resolve().parents[1] / "statebits" / "datasets" / "data"

NAB_SERIES = (
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/nyc_taxi.csv",
    "realKnownCause/ambient_temperature_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "realTraffic/speed_7578.csv",
)


def history_frame(values, timestamps, identity="series", reason="reading", confidence=1.0) -> pd.DataFrame:
    """Build a history frame with every schema column from values and times."""
    values = np.asarray(values)
    n = len(values)
    timestamps = pd.to_datetime(pd.Series(timestamps), utc=True).astype("datetime64[ns, UTC]").reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "identity": identity,
            "step": np.arange(1, n + 1, dtype="int64"),
            "timestamp": timestamps,
            "recorded_at": timestamps,
            "from_value": np.concatenate([[np.nan], values[:-1]]) if n else values,
            "to_value": values,
            "reason": reason,
            "confidence": np.full(n, confidence, dtype="float64"),
            "tags": [[] for _ in range(n)],
            "metadata": [None] * n,
            "caused_by": [[] for _ in range(n)],
            "checksum": "",
            "branch": "main",
        }
    )
    return frame[list(COLUMNS)]


def load_nab(name: str) -> pd.DataFrame:
    """Load one NAB series as a history frame, ordered by time."""
    raw = pd.read_csv(DATASETS / "nab" / name, parse_dates=["timestamp"])
    raw = raw.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return history_frame(raw["value"].astype("float64").to_numpy(), raw["timestamp"], identity=Path(name).stem)


def nab_windows(name: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Return NAB's labelled anomaly windows of one series, in UTC."""
    windows = json.loads((DATASETS / "nab" / "windows.json").read_text())[name]
    return [(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")) for start, end in windows]


def window_hits(timestamps: pd.Series, flags: np.ndarray, windows) -> tuple[int, int]:
    """Count windows with at least one flag, and flags outside every window."""
    timestamps = pd.to_datetime(timestamps, utc=True).reset_index(drop=True)
    flags = np.asarray(flags, dtype=bool)
    inside = np.zeros(len(timestamps), dtype=bool)
    hits = 0
    for start, end in windows:
        in_window = ((timestamps >= start) & (timestamps <= end)).to_numpy()
        inside |= in_window
        hits += bool((flags & in_window).any())
    return hits, int((flags & ~inside).sum())


def rolling_zscore_flags(frame: pd.DataFrame, threshold: float = 4.0) -> np.ndarray:
    """Flag |z| > threshold against the mean and spread of the previous day (causal)."""
    series = pd.Series(frame["to_value"].to_numpy(), index=pd.DatetimeIndex(frame["timestamp"]))
    window = series.rolling("1D", closed="left")
    z = (series - window.mean()) / window.std()
    return (z.abs() > threshold).to_numpy()


def co2_monthly() -> pd.DataFrame:
    """Mauna Loa CO2 as monthly means of the weekly readings (months without data dropped)."""
    raw = pd.read_csv(DATASETS / "statsmodels" / "co2_weekly_mauna_loa.csv")
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    monthly = raw.set_index("date")["co2"].resample("MS").mean().dropna()
    return history_frame(monthly.to_numpy(), monthly.index, identity="co2")


def sunspots() -> pd.DataFrame:
    """Yearly sunspot activity 1700-2008."""
    raw = pd.read_csv(DATASETS / "statsmodels" / "sunspots_yearly.csv")
    years = pd.to_datetime(raw["YEAR"].astype(int).astype(str), format="%Y")
    return history_frame(raw["SUNACTIVITY"].astype("float64").to_numpy(), years, identity="sunspots")


def seattle_weather() -> pd.DataFrame:
    """Seattle daily weather 2012-2015, as the raw table."""
    raw = pd.read_csv(DATASETS / "noaa" / "seattle_weather_daily.csv")
    raw["date"] = pd.to_datetime(raw["date"], format="%Y/%m/%d")
    return raw


def test_history_frame_has_schema_columns():
    frame = history_frame([1.0, 2.0], ["2024-01-01", "2024-01-02"])
    assert list(frame.columns) == list(COLUMNS)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["step"].tolist() == [1, 2]


def test_window_hits_counts_hits_and_outside_flags():
    times = pd.Series(pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC"))
    windows = [(times[2], times[3]), (times[7], times[8])]
    flags = np.zeros(10, dtype=bool)
    flags[[2, 5]] = True
    assert window_hits(times, flags, windows) == (1, 1)


def test_rolling_zscore_matches_reference_figures():
    name = NAB_SERIES[0]
    frame = load_nab(name)
    assert window_hits(frame["timestamp"], rolling_zscore_flags(frame), nab_windows(name)) == (2, 241)
    name = NAB_SERIES[1]
    frame = load_nab(name)
    hits, _outside = window_hits(frame["timestamp"], rolling_zscore_flags(frame), nab_windows(name))
    assert hits == 0
