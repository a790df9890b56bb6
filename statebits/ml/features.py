"""Build the feature matrix that every model in :mod:`statebits.ml` reads.

Features are computed per identity with vectorised pandas operations (shift,
diff, grouped rolling windows), never with a Python loop per row. Every row of
the history gets a finite value for every feature: where a lag or a window
reaches before an identity's first transition, the gap is filled with a
neutral value (the identity's first value, zero spread, zero change). The
change of a row is ``to_value - from_value`` where the frame records a
numeric ``from_value``.

Rolling statistics cover the ``w`` transitions *before* each row, so a value
never contributes to its own baseline and a jump shows up in ``rolling_z_w``.

NOTE: pandas computes rolling variances online, so a window that follows
values many orders of magnitude larger carries rounding of roughly machine
epsilon times the square of those values. A spread that small is reported
as 0 or slightly off, which moves ``rolling_z_w`` accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from statebits.core.errors import ValidationError, invalid_parameter
from statebits.ml._input import as_history_frame

__all__ = ["FeatureSpec", "build_features", "numeric_values", "BASE_FEATURES", "CALENDAR_FEATURES"]

#: Features present whatever the spec.
BASE_FEATURES: tuple[str, ...] = ("value", "delta", "rate", "time_since_previous", "confidence")

#: Calendar parts of the transition's UTC timestamp.
CALENDAR_FEATURES: tuple[str, ...] = ("hour", "day_of_week", "month")


@dataclass(frozen=True)
class FeatureSpec:
    """Selection of the features built from a history frame.

    Parameters
    ----------
    lags : sequence of int, default=(1, 2, 3)
        Build ``lag_k``, the value ``k`` transitions earlier, for each ``k``.
    windows : sequence of int, default=(5, 20)
        Build ``rolling_mean_w``, ``rolling_std_w`` and ``rolling_z_w`` over
        the ``w`` transitions before each row, for each ``w``.
    calendar : bool, default=True
        Build the hour, day of week and month of the UTC timestamp.
    columns : sequence of str or None, default=None
        Keep only these feature names, in this order. None keeps all.
    """

    lags: tuple[int, ...] = (1, 2, 3)
    windows: tuple[int, ...] = (5, 20)
    calendar: bool = True
    columns: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lags", _positive_ints(self.lags, "lags"))
        object.__setattr__(self, "windows", _positive_ints(self.windows, "windows"))
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(str(name) for name in self.columns))
            unknown = [name for name in self.columns if name not in self.all_names()]
            if unknown:
                raise ValidationError(
                    f"unknown feature names {unknown}; this spec builds {list(self.all_names())}"
                )

    def all_names(self) -> tuple[str, ...]:
        """Return every feature name the spec builds before ``columns`` selects."""
        names = list(BASE_FEATURES)
        names += [f"lag_{k}" for k in self.lags]
        for w in self.windows:
            names += [f"rolling_mean_{w}", f"rolling_std_{w}", f"rolling_z_{w}"]
        if self.calendar:
            names += list(CALENDAR_FEATURES)
        return tuple(names)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the built features, in column order."""
        return self.columns if self.columns is not None else self.all_names()

    @property
    def context(self) -> int:
        """Number of earlier transitions any row's features depend on."""
        return max((*self.lags, *self.windows, 1))


def build_features(
    data: Any,
    *,
    lags: Sequence[int] = (1, 2, 3),
    windows: Sequence[int] = (5, 20),
    calendar: bool = True,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build named numeric features from a history, one row per transition.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        A history with at least the columns identity, step, timestamp and
        to_value. ``to_value`` must be numeric or boolean.
    lags, windows, calendar, columns
        See :class:`FeatureSpec`.

    Returns
    -------
    pandas.DataFrame
        Float features indexed by ``(identity, step)``, rows sorted by
        identity and step.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "identity": "t", "step": [1, 2, 3],
    ...     "timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:10", "2024-01-01 00:30"], utc=True),
    ...     "to_value": [1.0, 2.0, 4.0],
    ... })
    >>> build_features(frame, lags=(1,), windows=(2,), calendar=False)["delta"].tolist()
    [0.0, 1.0, 2.0]
    """
    spec = FeatureSpec(tuple(lags), tuple(windows), calendar, None if columns is None else tuple(columns))
    frame = as_history_frame(data, owner="build_features")
    features = features_from_frame(frame, spec)
    features.index = pd.MultiIndex.from_arrays([frame["identity"], frame["step"]], names=["identity", "step"])
    return features


def features_from_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Build features from a frame already coerced by ``as_history_frame``.

    The result has the same RangeIndex as ``frame``.
    """
    identities = frame["identity"].to_numpy()
    values = numeric_values(frame["to_value"], owner="build_features")
    values = values.groupby(identities, sort=False).ffill()
    values = values.groupby(identities, sort=False).bfill()
    if values.isna().any():
        empty = pd.unique(identities[values.isna().to_numpy()])[:5]
        raise ValidationError(f"every value of identity {list(empty)} is missing, so no features can be built")

    grouped = values.groupby(identities, sort=False)
    first_value = grouped.transform("first")
    out: dict[str, pd.Series] = {"value": values}

    # A transition's change is to_value - from_value, so a Statebit's first
    # transition is measured from its initial value. Rows without a numeric
    # from_value use the previous row's value, or 0 at the start.
    previous_value = grouped.shift(1)
    if "from_value" in frame.columns:
        recorded_from = pd.to_numeric(frame["from_value"].map(_bool_to_int), errors="coerce").astype("float64")
        previous_value = recorded_from.where(recorded_from.notna(), previous_value)
    out["delta"] = (values - previous_value).fillna(0.0)
    seconds = frame["timestamp"].groupby(identities, sort=False).diff().dt.total_seconds().fillna(0.0)
    out["time_since_previous"] = seconds.astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(seconds.to_numpy() > 0, out["delta"].to_numpy() / seconds.to_numpy(), 0.0)
    out["rate"] = pd.Series(rate, index=values.index)
    out["confidence"] = frame["confidence"].astype("float64")

    for k in spec.lags:
        out[f"lag_{k}"] = grouped.shift(k).fillna(first_value)

    previous = grouped.shift(1)
    previous_grouped = previous.groupby(identities, sort=False)
    for w in spec.windows:
        mean = _grouped_rolling(previous_grouped, w, "mean", min_periods=1).fillna(values)
        std = _grouped_rolling(previous_grouped, w, "std", min_periods=2).fillna(0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(std.to_numpy() > 0, (values - mean).to_numpy() / std.to_numpy(), 0.0)
        out[f"rolling_mean_{w}"] = mean
        out[f"rolling_std_{w}"] = std
        out[f"rolling_z_{w}"] = pd.Series(z, index=values.index)

    if spec.calendar:
        timestamps = frame["timestamp"]
        out["hour"] = timestamps.dt.hour.astype("float64")
        out["day_of_week"] = timestamps.dt.day_of_week.astype("float64")
        out["month"] = timestamps.dt.month.astype("float64")

    features = pd.DataFrame({name: out[name].astype("float64") for name in spec.names}, index=frame.index)
    return features


def numeric_values(column: pd.Series, owner: str) -> pd.Series:
    """Return ``column`` as float64; booleans become 0/1 and None becomes NaN.

    Raises
    ------
    ValidationError
        If a value is neither a number, a boolean nor missing.
    """
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype("float64")
    converted = pd.to_numeric(column.map(_bool_to_int), errors="coerce")
    bad = converted.isna() & column.notna() & ~column.map(_is_nan)
    if bad.any():
        example = column[bad].iloc[0]
        raise ValidationError(
            f"{owner} needs numeric values in `to_value`, got {example!r} ({type(example).__name__}); "
            "encode categorical states as numbers first, or filter them out"
        )
    return converted.astype("float64")


def _bool_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, (bool, np.bool_)) else value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _grouped_rolling(grouped: Any, window: int, how: str, min_periods: int) -> pd.Series:
    rolling = grouped.rolling(window, min_periods=min_periods)
    result = getattr(rolling, how)()
    # Grouped rolling prefixes the group key to the index; drop it to realign.
    return result.droplevel(0).sort_index()


def _positive_ints(values: Sequence[int], name: str) -> tuple[int, ...]:
    try:
        items = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise invalid_parameter(name, values, "a sequence of positive integers", "FeatureSpec") from None
    if any(v < 1 for v in items):
        raise invalid_parameter(name, values, "a sequence of positive integers", "FeatureSpec")
    return tuple(sorted(set(items)))
