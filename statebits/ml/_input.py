"""Coerce what a model receives into a sorted pandas history frame.

Every model and verb in :mod:`statebits.ml` accepts a Statebit, a
StatebitsCollection, a pandas DataFrame or a Polars DataFrame. This module
turns each of them into one pandas frame sorted by identity and step, with a
UTC timestamp column, so the feature code has one input shape to handle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from statebits.core.errors import InsufficientDataError, ValidationError

__all__ = ["as_history_frame", "select_identity", "require_rows", "ORIGINAL_POSITION"]

#: Column added to the coerced frame with each row's position in the input,
#: so results computed on the sorted frame can be put back in input order.
ORIGINAL_POSITION = "_position"

#: Columns every ML entry point needs; the other schema columns are optional.
ML_REQUIRED_COLUMNS: tuple[str, ...] = ("identity", "step", "timestamp", "to_value")


def as_history_frame(data: Any, *, owner: str, required: tuple[str, ...] = ML_REQUIRED_COLUMNS) -> pd.DataFrame:
    """Convert ``data`` into a pandas history frame sorted by identity and step.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        The history to read. Any object with a ``to_pandas()`` method is
        accepted.
    owner : str
        Name of the calling function or class, used in error messages.
    required : tuple of str
        Columns that must be present.

    Returns
    -------
    pandas.DataFrame
        A copy sorted by identity and step, with a fresh RangeIndex and a
        ``datetime64[ns, UTC]`` timestamp column. Where the input has no
        ``confidence`` column, it is 1.0. Where it has no ``from_value``
        column, that column is the previous row's value. The added column
        ``_position`` contains each row's position in the input.

    Raises
    ------
    ValidationError
        If ``data`` is not a frame or frame source, or required columns are
        missing.
    """
    frame = _to_pandas(data, owner)
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"{owner} needs a history frame with the columns {list(required)}; "
            f"missing: {missing}. Build one with Statebit.to_pandas() or statebits.from_events()."
        )

    frame = frame.copy()
    frame[ORIGINAL_POSITION] = np.arange(len(frame), dtype=np.int64)
    frame["timestamp"] = _as_utc(frame["timestamp"], owner)
    if "confidence" in frame.columns:
        frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce").astype("float64").fillna(1.0)
    else:
        frame["confidence"] = 1.0

    frame = frame.sort_values(["identity", "step"], kind="stable").reset_index(drop=True)
    if "from_value" not in frame.columns:
        # Event tables often carry only the new value; the previous one follows from the order.
        frame["from_value"] = frame.groupby("identity", sort=False)["to_value"].shift(1)
    return frame


def select_identity(frame: pd.DataFrame, identity: Any, owner: str) -> pd.DataFrame:
    """Return the rows of one identity, or the whole frame when it contains only one.

    Raises
    ------
    ValidationError
        If ``identity`` is None and the frame contains several identities, or if
        ``identity`` does not occur in the frame.
    """
    identities = frame["identity"].unique()
    if identity is None:
        if len(identities) > 1:
            shown = [str(name) for name in identities[:5]]
            raise ValidationError(
                f"{owner} received a frame with {len(identities)} identities ({', '.join(shown)}, ...); "
                "pass `identity=` to choose one."
            )
        return frame
    rows = frame[frame["identity"] == identity]
    if rows.empty:
        raise ValidationError(f"{owner}: identity {identity!r} not found in the frame")
    return rows.reset_index(drop=True)


def require_rows(n_rows: int, needed: int, owner: str, what: str = "transitions") -> None:
    """Raise InsufficientDataError when ``n_rows`` is below ``needed``."""
    if n_rows < needed:
        raise InsufficientDataError(f"{owner} needs at least {needed} {what}, got {n_rows}")


def _to_pandas(data: Any, owner: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    to_pandas = getattr(data, "to_pandas", None)
    if callable(to_pandas):
        # Polars DataFrames, Statebits and collections all offer to_pandas().
        frame = to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    raise ValidationError(
        f"{owner} expected a Statebit, a StatebitsCollection, or a pandas or Polars history frame, "
        f"got {type(data).__name__}"
    )


def _as_utc(column: pd.Series, owner: str) -> pd.Series:
    """Return ``column`` as datetime64 in UTC; naive times are read as UTC."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.dt.tz_localize("UTC")
    try:
        return pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{owner}: the `timestamp` column could not be parsed as datetimes ({exc})") from None
