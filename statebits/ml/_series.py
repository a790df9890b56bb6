"""Univariate series helpers shared by the forecasters.

A forecaster reads one identity's values in step order. These helpers pull
that series out of a history frame, scale it without overflow, cut it into
windows, and compute the baselines and error measures the models are compared
with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from statebits.core.errors import ValidationError
from statebits.ml._input import as_history_frame, select_identity
from statebits.ml.features import numeric_values

__all__ = [
    "Series",
    "read_series",
    "SeriesScaler",
    "make_windows",
    "window_inputs",
    "N_CHANNELS",
    "last_value_forecast",
    "seasonal_naive_forecast",
    "safe_std",
    "mae",
    "mase",
]


@dataclass
class Series:
    """One identity's values in step order, with its last step and time."""

    identity: Any
    values: np.ndarray
    timestamps: pd.Series
    last_step: int

    @property
    def spacing(self) -> pd.Timedelta | None:
        """Median time between transitions, or None for fewer than two."""
        if len(self.timestamps) < 2:
            return None
        return self.timestamps.diff().median()

    def future_timestamps(self, horizon: int) -> list[pd.Timestamp | None]:
        """Return the expected times of the next ``horizon`` transitions.

        A regular calendar frequency that pandas infers from the last 50
        timestamps (such as month starts) is continued; otherwise each step
        adds the median spacing. None when fewer than two timestamps exist.
        """
        spacing = self.spacing
        if spacing is None:
            return [None] * horizon
        last = self.timestamps.iloc[-1]
        recent = pd.DatetimeIndex(self.timestamps.iloc[-50:])
        frequency = _infer_frequency(recent) if len(recent) >= 3 else None
        if frequency is not None:
            return list(pd.date_range(last, periods=horizon + 1, freq=frequency)[1:])
        return [last + h * spacing for h in range(1, horizon + 1)]


def read_series(data: Any, *, identity: Any, owner: str) -> Series:
    """Read one identity's numeric values; missing values are carried forward.

    Raises
    ------
    ValidationError
        If the values are not numeric, all missing, or infinite.
    """
    frame = select_identity(as_history_frame(data, owner=owner), identity, owner)
    values = numeric_values(frame["to_value"], owner=owner).ffill().bfill().to_numpy(dtype="float64")
    if len(values) and np.isnan(values).all():
        raise ValidationError(f"{owner}: every value is missing, so there is nothing to learn from")
    if np.isinf(values).any():
        raise ValidationError(f"{owner}: the history contains infinite values; remove them before training")
    name = frame["identity"].iloc[0] if len(frame) else identity
    last_step = int(frame["step"].iloc[-1]) if len(frame) else 0
    return Series(identity=name, values=values, timestamps=frame["timestamp"].reset_index(drop=True), last_step=last_step)


def _infer_frequency(index: pd.DatetimeIndex) -> Any:
    """Return the calendar frequency pandas infers for ``index``, or None."""
    try:
        # pandas 3 warns that infer_freq will return an offset; ask for it now.
        with pd.option_context("future.infer_freq_returns_offset", True):
            return pd.infer_freq(index)
    except pd.errors.OptionError:
        # pandas 2 has no such option and returns a frequency string.
        return pd.infer_freq(index)


class SeriesScaler:
    """Standardise a series, safe for magnitudes near the float64 limit.

    Values are first divided by their largest magnitude, so the mean and
    variance never overflow; a constant series gets a unit scale.
    """

    def fit(self, values: np.ndarray) -> "SeriesScaler":
        magnitude = float(np.max(np.abs(values))) if len(values) else 1.0
        self.magnitude = magnitude if magnitude > 0 else 1.0
        unit = values / self.magnitude
        self.center = float(np.mean(unit))
        spread = float(np.std(unit))
        self.spread = spread if spread > 0 else 1.0
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype="float64") / self.magnitude - self.center) / self.spread

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return (np.asarray(scaled, dtype="float64") * self.spread + self.center) * self.magnitude

    def to_dict(self) -> dict[str, float]:
        return {"magnitude": self.magnitude, "center": self.center, "spread": self.spread}

    @classmethod
    def from_dict(cls, state: dict[str, float]) -> "SeriesScaler":
        scaler = cls()
        scaler.magnitude, scaler.center, scaler.spread = state["magnitude"], state["center"], state["spread"]
        return scaler


#: Channels per time step that :func:`window_inputs` produces.
N_CHANNELS = 3


def make_windows(scaled: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a scaled series into model inputs and next-step targets.

    The target of each window is the change from its last level to the next
    one, so a model that outputs zero is the last-value forecast.

    Returns
    -------
    inputs : numpy.ndarray of shape (n_windows, length, N_CHANNELS)
        See :func:`window_inputs`.
    targets : numpy.ndarray of shape (n_windows,)
    """
    n_windows = len(scaled) - length
    if n_windows < 1:
        return np.empty((0, length, N_CHANNELS)), np.empty(0)
    windows = np.lib.stride_tricks.sliding_window_view(scaled, length)[:n_windows]
    targets = scaled[length:] - scaled[length - 1 : -1]
    return window_inputs(windows), targets


def window_inputs(windows: np.ndarray) -> np.ndarray:
    """Give each time step three channels computed within its window.

    The channels are the scaled level relative to the window's last level,
    the change from the previous step (0 at the window's first step), and
    the scaled level itself. The relative level lets a network carry a trend
    past the training range; the absolute level keeps mean reversion
    learnable. Measured on monthly CO2 with benchmarks/bench_ml.py, an LSTM
    with a 10-value window had a one-step MASE of 1.46 with only the
    absolute level and change, and 0.36 with all three channels.
    """
    windows = np.asarray(windows, dtype="float64")
    relative = windows - windows[:, -1:]
    change = np.diff(windows, axis=1, prepend=windows[:, :1])
    return np.ascontiguousarray(np.stack([relative, change, windows], axis=2))


def last_value_forecast(history: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last value ``horizon`` times."""
    return np.repeat(history[-1], horizon)


def seasonal_naive_forecast(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Repeat the last full season; falls back to the last value when shorter."""
    if period < 1 or len(history) < period:
        return last_value_forecast(history, horizon)
    season = history[-period:]
    return np.resize(season, horizon)


def safe_std(values: np.ndarray) -> float:
    """Standard deviation computed on values divided by their largest magnitude."""
    magnitude = float(np.max(np.abs(values))) if len(values) else 0.0
    if magnitude == 0:
        return 0.0
    return float(np.std(values / magnitude)) * magnitude


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(predicted))))


def mase(actual: np.ndarray, predicted: np.ndarray, train: np.ndarray, period: int = 1) -> float:
    """Mean absolute scaled error (Hyndman and Koehler, 2006).

    The scale is the in-sample MAE of the seasonal naive forecast with
    ``period`` on ``train``, so a value below 1 beats that naive forecast's
    average one-step error on the training data.
    """
    train = np.asarray(train, dtype="float64")
    if len(train) <= period:
        raise ValidationError(f"mase needs more than {period} training values, got {len(train)}")
    scale = float(np.mean(np.abs(train[period:] - train[:-period])))
    if scale == 0:
        return float("inf") if mae(actual, predicted) > 0 else 0.0
    return mae(actual, predicted) / scale
