"""The ``.sb`` accessor of pandas DataFrames.

pandas builds the accessor anew on every attribute access, and the accessor
keeps nothing but the frame: every verb reads the frame when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from statebits.core.clock import to_ns
from statebits.core.errors import ValidationError
from statebits.frames.accessor import filter_bounds, ml_verbs, schema_error

if TYPE_CHECKING:
    from statebits.collection import StatebitsCollection
    from statebits.core.statebit import Statebit
    from statebits.frames._restore import FrameReport

__all__ = ["PandasAccessor"]


class PandasAccessor:
    """Verbs on a pandas history frame: ``df.sb.verify()``, ``df.sb.filter(...)``, ...

    Accessing ``df.sb`` raises AttributeError when the frame lacks the
    required history columns, so ``hasattr(df, "sb")`` is False for other
    frames.

    Examples
    --------
    >>> import statebits
    >>> sb = statebits.Statebit("temp", 20.0)
    >>> _ = sb.transition(21.5, "sensor reading", tags=["sensor"])
    >>> df = sb.to_pandas()
    >>> bool(df.sb.verify())
    True
    >>> len(df.sb.filter(tag="sensor"))
    1
    """

    _statebits_accessor = True

    def __init__(self, frame: pd.DataFrame) -> None:
        error = schema_error(frame.columns, "pandas")
        if error is not None:
            raise error
        self._frame = frame

    # -- integrity and conversion ----------------------------------------------------

    def verify(self, raise_on_error: bool = False, allow_pickle: bool = False) -> "FrameReport":
        """Recompute every checksum and check that each from_value is the previous to_value.

        Parameters
        ----------
        raise_on_error : bool, default False
            Raise :class:`IntegrityError` for the first problem instead of
            returning a report that lists it.
        allow_pickle : bool, default False
            Decode values stored as pickles; trusted frames only.

        Returns
        -------
        FrameReport
            True in a boolean context when every statebit verified.
        """
        from statebits.frames._restore import verify_frame

        report = verify_frame(self._frame, allow_pickle=allow_pickle)
        if raise_on_error:
            report.raise_if_broken()
        return report

    def to_statebits(self, allow_pickle: bool = False) -> "list[Statebit]":
        """Rebuild and verify the statebits of the frame, in order of first appearance."""
        from statebits.frames._restore import restore_frame

        return restore_frame(self._frame, allow_pickle=allow_pickle)[1]

    def to_collection(self, name: str = "collection", allow_pickle: bool = False) -> "StatebitsCollection":
        """Rebuild and verify the statebits of the frame as a collection."""
        from statebits.frames.convert import collection_from_frame

        return collection_from_frame(self._frame, name=name, allow_pickle=allow_pickle)

    # -- queries ------------------------------------------------------------------------

    def filter(
        self,
        tag: str | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Return the rows that carry ``tag``, lie in the confidence range and in ``[start, end]``.

        Every argument is optional; bounds are inclusive and naive times are
        read as UTC. The result keeps the frame's index and column types.
        """
        tag, low, high, start_ns, end_ns = filter_bounds(tag, min_confidence, max_confidence, start, end)
        frame = self._frame
        keep = np.ones(len(frame), dtype=bool)
        if tag is not None:
            keep &= _has_tag(frame, tag)
        if low is not None or high is not None:
            confidence = frame["confidence"].to_numpy(dtype=np.float64)
            if low is not None:
                keep &= confidence >= low
            if high is not None:
                keep &= confidence <= high
        if start_ns is not None or end_ns is not None:
            times = _nanoseconds(frame["timestamp"])
            if start_ns is not None:
                keep &= times >= start_ns
            if end_ns is not None:
                keep &= times <= end_ns
        return frame[keep]

    def value_at(self, when: Any, identity: str | None = None) -> Any:
        """Return each identity's value at valid time ``when``.

        Before an identity's first transition this is its initial value
        (the first from_value). Rows are grouped by identity, so filter a
        frame that contains forks by branch first.

        Returns
        -------
        pandas.Series or value
            Indexed by identity in order of first appearance, named
            ``value``; with ``identity`` given, that identity's value.
        """
        moment = to_ns(when)
        frame = self._frame
        identities, rows = _rows_at(frame, moment)
        values = [_cell(frame, column, row) for column, row in rows]
        result = pd.Series(values, index=pd.Index(identities, name="identity"), name="value")
        if identity is None:
            return result
        if identity not in result.index:
            raise ValidationError(f"identity {identity!r} not found in the frame; it contains {list(result.index)[:10]}")
        return result[identity]

    def summary(self) -> pd.DataFrame:
        """Return one row per identity: transitions, first and last timestamp, initial and last value, confidence.

        Columns: ``transitions``, ``first_timestamp``, ``last_timestamp``,
        ``initial_value``, ``last_value``, ``mean_confidence``,
        ``min_confidence`` and ``reasons`` (number of distinct reasons),
        indexed by identity in order of first appearance.
        """
        frame = self._frame
        keys = pd.DataFrame(
            {
                "identity": frame["identity"].to_numpy(dtype=object),
                "step": frame["step"].to_numpy(),
                "row": np.arange(len(frame)),
                "time": _nanoseconds(frame["timestamp"]),
                "confidence": frame["confidence"].to_numpy(dtype=np.float64),
                "reason": frame["reason"].to_numpy(dtype=object),
            }
        )
        groups = keys.groupby("identity", sort=False)
        ordered = keys.sort_values(["identity", "step"], kind="stable").groupby("identity", sort=False)
        first_rows = ordered["row"].first()
        last_rows = ordered["row"].last()
        identities = list(groups.size().index)
        has_from = "from_value" in frame.columns
        result = pd.DataFrame(
            {
                "transitions": groups.size().to_numpy(dtype=np.int64),
                "first_timestamp": pd.to_datetime(groups["time"].min().to_numpy(), unit="ns", utc=True),
                "last_timestamp": pd.to_datetime(groups["time"].max().to_numpy(), unit="ns", utc=True),
                "initial_value": [
                    _cell(frame, "from_value", int(first_rows[name])) if has_from else None for name in identities
                ],
                "last_value": [_cell(frame, "to_value", int(last_rows[name])) for name in identities],
                "mean_confidence": groups["confidence"].mean().to_numpy(),
                "min_confidence": groups["confidence"].min().to_numpy(),
                "reasons": groups["reason"].nunique().to_numpy(dtype=np.int64),
            },
            index=pd.Index(identities, name="identity"),
        )
        return result

    # -- charts, ML and widgets (implemented elsewhere, imported on first use) ------------------

    def timeline(self, **kwargs: Any) -> Any:
        """Return an Altair timeline chart; see :func:`statebits.charts.timeline_chart`."""
        from statebits.charts import timeline_chart

        return timeline_chart(self._frame, **kwargs)

    def anomalies(self, **kwargs: Any) -> pd.DataFrame:
        """Return the frame with anomaly scores; see :func:`statebits.ml.verbs.anomalies`."""
        return ml_verbs().anomalies(self._frame, **kwargs)

    def clusters(self, **kwargs: Any) -> pd.DataFrame:
        """Return the frame with a cluster column; see :func:`statebits.ml.verbs.clusters`."""
        return ml_verbs().clusters(self._frame, **kwargs)

    def forecast(self, horizon: int = 1, **kwargs: Any) -> pd.DataFrame:
        """Forecast ``horizon`` steps per identity; see :func:`statebits.ml.verbs.forecast`."""
        return ml_verbs().forecast(self._frame, horizon, **kwargs)

    def explain(self, **kwargs: Any) -> pd.DataFrame:
        """Explain each transition; see :func:`statebits.ml.verbs.explain`."""
        return ml_verbs().explain(self._frame, **kwargs)

    def widget(self, **kwargs: Any) -> Any:
        """Return an interactive widget for the frame; see :mod:`statebits.widgets`."""
        from statebits.widgets import widget_for

        return widget_for(self._frame, **kwargs)


# -- helpers ----------------------------------------------------------------------------------


def _nanoseconds(column: pd.Series) -> np.ndarray:
    """Return a time column as int64 nanoseconds, UTC; naive times are read as UTC."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        try:
            column = pd.to_datetime(column, utc=True).dt.tz_localize(None)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"invalid `timestamp` column: {exc}") from None
    return column.dt.as_unit("ns").to_numpy().view(np.int64)


def _has_tag(frame: pd.DataFrame, tag: str) -> np.ndarray:
    tags = frame["tags"] if "tags" in frame.columns else None
    keep = np.zeros(len(frame), dtype=bool)
    if tags is None:
        return keep
    arrow_type = tags.dtype.pyarrow_dtype if isinstance(tags.dtype, pd.ArrowDtype) else None
    if arrow_type is not None and (pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)):
        array = pa.array(tags)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        matches = pc.equal(pc.list_flatten(array), tag).fill_null(False).to_numpy(zero_copy_only=False)
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        keep[parents[matches]] = True
        return keep
    for row, cell in enumerate(tags.to_numpy(dtype=object)):
        if cell is not None and not isinstance(cell, (float, str)):
            keep[row] = tag in list(cell)
    return keep


def _rows_at(frame: pd.DataFrame, moment: int) -> tuple[list[Any], list[tuple[str, int]]]:
    """Return identities and, per identity, the (column, row) holding its value at ``moment``."""
    keys = pd.DataFrame(
        {
            "identity": frame["identity"].to_numpy(dtype=object),
            "step": frame["step"].to_numpy(),
            "row": np.arange(len(frame)),
            "due": _nanoseconds(frame["timestamp"]) <= moment,
        }
    ).sort_values(["step"], kind="stable")
    identities = list(pd.unique(frame["identity"].to_numpy(dtype=object)))
    first = keys.groupby("identity", sort=False)["row"].first()
    last_due = keys[keys["due"]].groupby("identity", sort=False)["row"].last()
    rows = []
    for name in identities:
        if name in last_due.index:
            rows.append(("to_value", int(last_due[name])))
        else:
            rows.append(("from_value", int(first[name])))
    return identities, rows


def _cell(frame: pd.DataFrame, column: str, row: int) -> Any:
    """Return one cell as a Python value (numpy scalars converted)."""
    if column not in frame.columns:
        return None
    value = frame[column].iloc[row]
    return value.item() if isinstance(value, np.generic) else value
