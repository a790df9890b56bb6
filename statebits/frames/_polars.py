"""The ``.sb`` namespace of Polars DataFrames.

Polars keeps the namespace object on the frame after the first access, and
some Polars methods change a frame in place, so the namespace stores only
the frame and checks the columns again in every verb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from statebits.core.clock import to_ns
from statebits.core.errors import ValidationError
from statebits.frames.accessor import filter_bounds, ml_verbs, schema_error

if TYPE_CHECKING:
    from statebits.collection import StatebitsCollection
    from statebits.core.statebit import Statebit
    from statebits.frames._restore import FrameReport

__all__ = ["PolarsNamespace"]

_ROW = "__statebits_row"


class PolarsNamespace:
    """Verbs on a Polars history frame: ``df.sb.verify()``, ``df.sb.filter(...)``, ...

    The verbs are those of the pandas accessor, computed with Polars
    expressions; results are Polars frames.

    Examples
    --------
    >>> import statebits
    >>> sb = statebits.Statebit("temp", 20.0)
    >>> _ = sb.transition(21.5, "sensor reading", tags=["sensor"])
    >>> df = sb.to_polars()
    >>> bool(df.sb.verify())
    True
    >>> df.sb.filter(tag="sensor").height
    1
    """

    _statebits_accessor = True

    def __init__(self, frame: pl.DataFrame) -> None:
        error = schema_error(frame.columns, "polars")
        if error is not None:
            raise error
        self._frame = frame

    def _checked(self) -> pl.DataFrame:
        error = schema_error(self._frame.columns, "polars")
        if error is not None:
            raise ValidationError(str(error))
        return self._frame

    # -- integrity and conversion ----------------------------------------------------

    def verify(self, raise_on_error: bool = False, allow_pickle: bool = False) -> "FrameReport":
        """Recompute every checksum and check that each from_value is the previous to_value.

        See :meth:`statebits.frames._pandas.PandasAccessor.verify`.
        """
        from statebits.frames._restore import verify_frame

        report = verify_frame(self._checked(), allow_pickle=allow_pickle)
        if raise_on_error:
            report.raise_if_broken()
        return report

    def to_statebits(self, allow_pickle: bool = False) -> "list[Statebit]":
        """Rebuild and verify the statebits of the frame, in order of first appearance."""
        from statebits.frames._restore import restore_frame

        return restore_frame(self._checked(), allow_pickle=allow_pickle)[1]

    def to_collection(self, name: str = "collection", allow_pickle: bool = False) -> "StatebitsCollection":
        """Rebuild and verify the statebits of the frame as a collection."""
        from statebits.frames.convert import collection_from_frame

        return collection_from_frame(self._checked(), name=name, allow_pickle=allow_pickle)

    # -- queries ------------------------------------------------------------------------

    def filter(
        self,
        tag: str | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pl.DataFrame:
        """Return the rows that carry ``tag``, lie in the confidence range and in ``[start, end]``.

        Every argument is optional; bounds are inclusive and naive times are
        read as UTC.
        """
        frame = self._checked()
        tag, low, high, start_ns, end_ns = filter_bounds(tag, min_confidence, max_confidence, start, end)
        conditions = []
        if tag is not None:
            if "tags" not in frame.columns:
                return frame.clear()
            conditions.append(pl.col("tags").list.contains(tag).fill_null(False))
        if low is not None:
            conditions.append(pl.col("confidence") >= low)
        if high is not None:
            conditions.append(pl.col("confidence") <= high)
        if start_ns is not None:
            conditions.append(_nanoseconds(frame) >= start_ns)
        if end_ns is not None:
            conditions.append(_nanoseconds(frame) <= end_ns)
        return frame.filter(*conditions) if conditions else frame.clone()

    def value_at(self, when: Any, identity: str | None = None) -> Any:
        """Return each identity's value at valid time ``when``.

        Returns
        -------
        polars.DataFrame or value
            Columns ``identity`` and ``value``, one row per identity in order
            of first appearance; with ``identity`` given, that identity's value.
        """
        frame = self._checked()
        moment = to_ns(when)
        positions = (
            frame.select(pl.col("identity"), pl.col("step"), (_nanoseconds(frame) <= moment).alias("due"))
            .with_row_index(_ROW)
            .group_by("identity", maintain_order=True)
            .agg(
                pl.col(_ROW).sort_by("step").first().alias("first"),
                pl.col(_ROW).filter(pl.col("due")).sort_by(pl.col("step").filter(pl.col("due"))).last().alias("due"),
            )
        )
        use_to = positions["due"].is_not_null()
        values = _pick(frame, positions["due"], positions["first"], use_to)
        result = pl.DataFrame({"identity": positions["identity"], "value": values})
        if identity is None:
            return result
        found = result.filter(pl.col("identity") == identity)
        if found.height == 0:
            raise ValidationError(f"identity {identity!r} not found in the frame; it contains {result['identity'].to_list()[:10]}")
        return found["value"][0]

    def summary(self) -> pl.DataFrame:
        """Return one row per identity, with the columns of the pandas accessor's summary.

        ``identity`` is a column, since Polars frames have no index.
        """
        frame = self._checked()
        groups = (
            frame.select(pl.col("identity"), pl.col("step"), pl.col("confidence"), pl.col("reason"), _nanoseconds(frame).alias("time"))
            .with_row_index(_ROW)
            .group_by("identity", maintain_order=True)
            .agg(
                pl.len().cast(pl.Int64).alias("transitions"),
                pl.col("time").min().alias("first"),
                pl.col("time").max().alias("last"),
                pl.col(_ROW).sort_by("step").first().alias("first_row"),
                pl.col(_ROW).sort_by("step").last().alias("last_row"),
                pl.col("confidence").mean().alias("mean_confidence"),
                pl.col("confidence").min().alias("min_confidence"),
                pl.col("reason").n_unique().cast(pl.Int64).alias("reasons"),
            )
        )
        if "from_value" in frame.columns:
            initial = frame["from_value"].gather(groups["first_row"])
        else:
            initial = pl.Series("from_value", [None] * groups.height)
        return pl.DataFrame(
            {
                "identity": groups["identity"],
                "transitions": groups["transitions"],
                "first_timestamp": pl.from_epoch(groups["first"], time_unit="ns").dt.replace_time_zone("UTC"),
                "last_timestamp": pl.from_epoch(groups["last"], time_unit="ns").dt.replace_time_zone("UTC"),
                "initial_value": initial,
                "last_value": frame["to_value"].gather(groups["last_row"]),
                "mean_confidence": groups["mean_confidence"],
                "min_confidence": groups["min_confidence"],
                "reasons": groups["reasons"],
            }
        )

    # -- charts, ML and widgets (implemented elsewhere, imported on first use) ------------------

    def timeline(self, **kwargs: Any) -> Any:
        """Return an Altair timeline chart; see :func:`statebits.charts.timeline_chart`."""
        from statebits.charts import timeline_chart

        return timeline_chart(self._checked(), **kwargs)

    def anomalies(self, **kwargs: Any) -> pl.DataFrame:
        """Return the frame with anomaly scores; see :func:`statebits.ml.verbs.anomalies`."""
        return ml_verbs().anomalies(self._checked(), **kwargs)

    def clusters(self, **kwargs: Any) -> pl.DataFrame:
        """Return the frame with a cluster column; see :func:`statebits.ml.verbs.clusters`."""
        return ml_verbs().clusters(self._checked(), **kwargs)

    def forecast(self, horizon: int = 1, **kwargs: Any) -> pl.DataFrame:
        """Forecast ``horizon`` steps per identity; see :func:`statebits.ml.verbs.forecast`."""
        return ml_verbs().forecast(self._checked(), horizon, **kwargs)

    def explain(self, **kwargs: Any) -> pl.DataFrame:
        """Explain each transition; see :func:`statebits.ml.verbs.explain`."""
        return ml_verbs().explain(self._checked(), **kwargs)

    def widget(self, **kwargs: Any) -> Any:
        """Return an interactive widget for the frame; see :mod:`statebits.widgets`."""
        from statebits.widgets import widget_for

        return widget_for(self._checked(), **kwargs)


# -- helpers ----------------------------------------------------------------------------------


def _nanoseconds(frame: pl.DataFrame) -> pl.Expr:
    """Return an expression of the timestamp column as int64 nanoseconds, UTC (naive read as UTC)."""
    dtype = frame.schema["timestamp"]
    if isinstance(dtype, pl.Datetime):
        return pl.col("timestamp").dt.epoch("ns")
    if dtype == pl.String:
        return pl.col("timestamp").str.to_datetime(time_unit="ns", time_zone="UTC").dt.epoch("ns")
    raise ValidationError(f"invalid `timestamp` column: expected datetimes, got {dtype}")


def _pick(frame: pl.DataFrame, to_rows: pl.Series, from_rows: pl.Series, use_to: pl.Series) -> pl.Series:
    """Return per identity the to_value at ``to_rows`` where ``use_to``, else the from_value at ``from_rows``."""
    to_values = frame["to_value"]
    has_from = "from_value" in frame.columns
    if has_from and frame["from_value"].dtype == to_values.dtype and to_values.dtype != pl.Object:
        # One column holding both, so a gather keeps the dtype.
        combined = pl.concat([to_values, frame["from_value"]])
        offset = frame.height
        indices = pl.select(pl.when(use_to).then(to_rows).otherwise(from_rows + offset)).to_series()
        return combined.gather(indices).alias("value")
    values = []
    for take_to, to_row, from_row in zip(use_to.to_list(), to_rows.to_list(), from_rows.to_list()):
        if take_to:
            values.append(to_values[to_row])
        else:
            values.append(frame["from_value"][from_row] if has_from else None)
    dtype = to_values.dtype if all(value is None or not isinstance(value, (list, dict)) for value in values) else pl.Object
    try:
        return pl.Series("value", values, dtype=dtype)
    except (TypeError, pl.exceptions.PolarsError):
        return pl.Series("value", values, dtype=pl.Object)
