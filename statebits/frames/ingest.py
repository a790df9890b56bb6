"""Build histories from an event table: :func:`from_events`.

Columns are validated and converted with numpy, pandas or Polars kernels;
the only per-row Python work left is the hashing in
:func:`statebits.core.history.extend_history`, and reading columns whose
cells are Python objects.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from statebits.collection import StatebitsCollection
from statebits.core import clock as _clock
from statebits.core.canonical import IMMUTABLE_TYPES, encode, freeze_mapping, snapshot
from statebits.core.confidence import check_confidence
from statebits.core.errors import ValidationError, invalid_parameter
from statebits.core.history import extend_history
from statebits.core.statebit import Statebit, creation_hooks_suspended

__all__ = ["from_events"]

_DUPLICATES = ("raise", "keep", "drop")
# A time of day followed by a UTC offset or "Z" makes a time string aware.
_AWARE = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$"


def from_events(
    events: Any,
    *,
    identity: str | None = None,
    value: str,
    time: str,
    reason: str | None = None,
    confidence: str | float | None = None,
    tags: str | Sequence[str] | None = None,
    metadata: str | Sequence[str] | None = None,
    initial_value: Any = None,
    duplicates: str = "raise",
    name: str = "events",
) -> StatebitsCollection:
    """Build one statebit per identity from an event table, without a Python loop per row.

    Each row becomes one transition. Rows are sorted by time within each
    identity; the sort is stable, so rows with equal times keep their order
    in the table.

    Parameters
    ----------
    events : pandas.DataFrame, polars.DataFrame, polars.LazyFrame or pyarrow.Table
        The events, one per row.
    identity : str, optional
        The column naming the statebit of each row. A string that is not a
        column name, or is the ``value`` column's name, is the identity of a
        single statebit holding every row; None names that statebit after the
        ``value`` column. Non-string identities (numbers) are converted with
        ``str``.
    value : str
        The column of new values. Float columns stay float (missing entries
        are NaN), int and bool columns keep their types, missing entries of
        other columns become None.
    time : str
        The column of event times: datetimes or ISO 8601 strings. Naive
        times are read as UTC; a column mixing naive and aware times is
        rejected.
    reason : str, optional
        The column of reasons, or one reason for every row when no column has
        that name. Defaults to ``"ingested from <value>"``.
    confidence : str or float, optional
        The column of confidences (0.0-1.0), or one confidence for every row.
        Defaults to 1.0.
    tags : str or list of str, optional
        A column of tag lists, or a list of tags for every row.
    metadata : str or list of str, optional
        A column of dicts (or None), or a list of columns whose values form
        each row's metadata dict.
    initial_value : Any, default None
        The value of every statebit before its first event. The first event
        becomes step 1, from ``initial_value`` to the event's value.
    duplicates : {"raise", "keep", "drop"}, default "raise"
        What to do with rows that repeat identity, time, value and reason
        exactly: raise ValidationError, record every row, or keep the first.
    name : str, default "events"
        Name of the returned collection.

    Returns
    -------
    StatebitsCollection
        One statebit per identity, in order of first appearance. Each
        statebit's ``created_at`` is its first event time and every
        transition's ``recorded_at`` is the time of this call.

    Raises
    ------
    ValidationError
        For a missing column, where the message lists the columns present.
        Also for an unparseable or missing time, mixed naive and aware times,
        a missing or empty reason, a confidence that is NaN or outside 0-1,
        invalid tags or metadata, and duplicate rows with
        ``duplicates="raise"``.

    Examples
    --------
    >>> import pandas as pd
    >>> import statebits
    >>> events = pd.DataFrame({
    ...     "sensor": ["a", "a", "b"],
    ...     "reading": [20.5, 21.0, 19.0],
    ...     "at": ["2024-01-01T00:00Z", "2024-01-01T01:00Z", "2024-01-01T00:30Z"],
    ... })
    >>> sensors = statebits.from_events(events, identity="sensor", value="reading", time="at")
    >>> sensors.keys()
    ['a', 'b']
    >>> sensors["a"].value
    21.0
    """
    if duplicates not in _DUPLICATES:
        raise invalid_parameter("duplicates", duplicates, f"one of {list(_DUPLICATES)}", "from_events")
    table = _Table(events)
    count = table.count
    collection = StatebitsCollection(name=name)
    if count == 0:
        table.column(value, "value")
        table.column(time, "time")
        return collection

    values = _values(table, value)
    times = _times(table, time)
    codes, labels = _identities(table, identity, value)
    reasons, reason_of = _reasons(table, reason, value)
    confidences = _confidences(table, confidence)
    tag_cells = _tags(table, tags)
    metadata_cells = _metadata(table, metadata)
    # Rejects an invalid identity or initial value before any work; created_at=0 leaves the clock unread,
    # and suspended hooks keep this probe out of any tenant.
    with creation_hooks_suspended():
        Statebit(labels[0], initial_value, created_at=0)

    order = _order(codes, times)
    keep = _duplicate_filter(order, codes, times, values, reasons, duplicates)
    if keep is not None:
        order = order[keep]

    sorted_codes = codes[order]
    sorted_times = np.ascontiguousarray(times[order])
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_codes)) + 1, [len(order)]))
    now = _clock.now_ns()
    value_column = _take_values(values, order)
    reason_column = reasons if reason_of is None else reason_of[reasons[order]]
    confidence_column = confidences if isinstance(confidences, float) else array("d", np.ascontiguousarray(confidences[order]).tobytes())
    time_column = array("q", sorted_times.tobytes())
    for first, stop in zip(starts[:-1].tolist(), starts[1:].tolist()):
        size = stop - first
        label = labels[int(sorted_codes[first])]
        sb = Statebit(label, initial_value, created_at=int(sorted_times[first]))
        positions = order[first:stop]
        extend_history(
            sb.history,
            value_column[first:stop],
            [reason_column] * size if isinstance(reason_column, str) else reason_column[first:stop],
            array("d", [confidence_column]) * size if isinstance(confidence_column, float) else confidence_column[first:stop],
            time_column[first:stop],
            array("q", [now]) * size,
            _slice_tags(tag_cells, positions, size),
            _slice_metadata(metadata_cells, positions),
            None,
        )
        collection.add(sb)
    return collection


# -- reading the table ---------------------------------------------------------------------


class _Table:
    """A pandas or Polars event table."""

    def __init__(self, events: Any) -> None:
        module = type(events).__module__.split(".")[0]
        kind = type(events).__name__
        if module == "polars" and kind == "LazyFrame":
            events = events.collect()
        elif isinstance(events, (pa.Table, pa.RecordBatch)):
            import polars as pl

            events = pl.from_arrow(events)
            module, kind = "polars", "DataFrame"
        if module == "pandas" and kind == "DataFrame":
            self.backend = "pandas"
            self.names = list(events.columns)
        elif module == "polars" and type(events).__name__ == "DataFrame":
            self.backend = "polars"
            self.names = list(events.columns)
        else:
            raise ValidationError(
                f"invalid events of type {type(events).__name__}: expected a pandas or Polars DataFrame or a pyarrow Table"
            )
        self.frame = events
        self.count = len(events)

    def has(self, name: Any) -> bool:
        return isinstance(name, str) and name in self.names

    def column(self, name: Any, parameter: str) -> Any:
        if not self.has(name):
            raise ValidationError(
                f"invalid `{parameter}` of from_events: column {name!r} not found; the table has the columns {self.names}"
            )
        return self.frame[name]

    def arrow(self, name: str) -> pa.Array:
        column = self.frame[name]
        array = column.to_arrow() if self.backend == "polars" else pa.array(column, from_pandas=True)
        return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _identities(table: _Table, identity: Any, value: str) -> tuple[np.ndarray, list[str]]:
    """Return per-row identity codes (in order of first appearance) and the identity of each code."""
    # The value column never names statebits: identity=value names the single statebit after it.
    if identity is None or identity == value or (isinstance(identity, str) and not table.has(identity)):
        if isinstance(identity, str) and identity != value:
            _reject_near_column(table, identity, "identity")
        label = str(value) if identity is None else identity
        return np.zeros(table.count, dtype=np.int64), [label]
    if not isinstance(identity, str):
        raise invalid_parameter("identity", identity, "a column name, an identity string or None", "from_events")
    table.column(identity, "identity")
    codes, uniques = _encode(table, identity, "identity")
    labels = [item if isinstance(item, str) else str(item) for item in uniques]
    for label in labels:
        if not label.strip():
            raise ValidationError(f"invalid identity {label!r} in column {identity!r}: identities must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise ValidationError(f"invalid identities in column {identity!r}: different values have the same text, so they would share a statebit")
    return codes, labels


def _reject_near_column(table: _Table, text: str, parameter: str) -> None:
    """Raise when a constant ``text`` looks like a misspelt column name.

    A string that is not a column names one statebit (identity) or is the
    reason of every event; a near miss of a column is almost always a typo,
    and taking it literally would silently merge entities.
    """
    import difflib

    names = [str(name) for name in table.names]
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.8)
    if close or text.lower() in (name.lower() for name in names):
        match = close[0] if close else next(name for name in names if name.lower() == text.lower())
        raise ValidationError(
            f"invalid `{parameter}` {text!r} of from_events: there is no such column, but there is {match!r}; "
            f"pass {parameter}={match!r} to use the column, or a text that is not close to a column name "
            f"to use it as a constant"
        )


def _encode(table: _Table, name: str, parameter: str) -> tuple[np.ndarray, list[Any]]:
    """Return codes in order of first appearance and the distinct values of a column; missing entries raise."""
    array = table.arrow(name)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValidationError(f"invalid `{parameter}` column {name!r}: row {row} is missing; every event needs one")
    encoded = pc.dictionary_encode(array)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _times(table: _Table, name: str) -> np.ndarray:
    """Return a time column as int64 nanoseconds since the epoch, UTC."""
    column = table.column(name, "time")
    if table.backend == "pandas":
        nanoseconds = _pandas_times(column, name)
    else:
        nanoseconds = _polars_times(column, name)
    return np.ascontiguousarray(nanoseconds, dtype=np.int64)


def _pandas_times(column: Any, name: str) -> np.ndarray:
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_timestamp(dtype.pyarrow_dtype):
        column = column.astype(pd.DatetimeTZDtype("ns", "UTC") if dtype.pyarrow_dtype.tz else "datetime64[ns]")
        dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = column.dt.tz_convert("UTC").dt.tz_localize(None)
    elif isinstance(dtype, np.dtype) and dtype.kind == "M":
        parsed = column
    elif isinstance(dtype, np.dtype) and dtype.kind in "iuf" or dtype == bool:
        raise ValidationError(
            f"invalid `time` column {name!r}: it contains numbers ({dtype}), which are ambiguous as times; "
            f"convert it first, for example with pandas.to_datetime(df[{name!r}], unit='s')"
        )
    else:
        _reject_mixed_awareness(column.to_numpy(dtype=object), name)
        try:
            parsed = _parse_pandas_times(column)
        except (ValueError, TypeError, OverflowError):
            coerced = pd.to_datetime(column, utc=True, format="ISO8601", errors="coerce")
            bad = np.flatnonzero(coerced.isna().to_numpy() & column.notna().to_numpy())
            row = int(bad[0]) if len(bad) else 0
            raise ValidationError(
                f"invalid `time` column {name!r}: {column.iloc[row]!r} at row {row} is not a time; "
                "expected datetimes or ISO 8601 strings such as '2024-05-01T12:00:00Z'"
            ) from None
    missing = parsed.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValidationError(f"invalid `time` column {name!r}: row {row} has no time (NaT or None); every event needs one")
    low, high = pd.Timestamp.min.tz_localize(None), pd.Timestamp.max.tz_localize(None)
    outside = ((parsed < low) | (parsed > high)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ValidationError(
            f"invalid `time` column {name!r}: {parsed.iloc[row]} at row {row} is outside 1677-09-21 to 2262-04-11, "
            "the range of nanosecond timestamps; drop or replace sentinel dates such as 9999-01-01 first"
        )
    return parsed.dt.as_unit("ns").to_numpy().view(np.int64)


def _parse_pandas_times(column: Any) -> Any:
    """Parse times as ISO 8601, else in the one format pandas infers from the first entry."""
    import pandas as pd

    try:
        parsed = pd.to_datetime(column, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        parsed = pd.to_datetime(column, utc=True)
    return parsed.dt.tz_localize(None)


def _polars_times(column: Any, name: str) -> np.ndarray:
    import polars as pl

    dtype = column.dtype
    if dtype == pl.Date:
        column = column.cast(pl.Datetime("ns"))
    elif dtype == pl.String:
        _reject_mixed_awareness(np.array(column.to_list(), dtype=object), name)
        parsed = column.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False)
        bad = np.flatnonzero((parsed.is_null() & column.is_not_null()).to_numpy())
        if len(bad):
            row = int(bad[0])
            raise ValidationError(
                f"invalid `time` column {name!r}: {column[row]!r} at row {row} is not a time; "
                "expected datetimes or ISO 8601 strings such as '2024-05-01T12:00:00Z'"
            )
        column = parsed
    elif dtype == pl.Object:
        values = column.to_list()
        _reject_mixed_awareness(np.array(values, dtype=object), name)
        return np.array([_clock.to_ns(item) if item is not None else _missing_time(name, row) for row, item in enumerate(values)], dtype=np.int64)
    if not isinstance(column.dtype, pl.Datetime):
        raise ValidationError(
            f"invalid `time` column {name!r}: expected datetimes or ISO 8601 strings, got {column.dtype}; "
            f"convert it first, for example with pl.from_epoch(df[{name!r}], time_unit='s')"
        )
    if column.null_count():
        _missing_time(name, int(np.flatnonzero(column.is_null().to_numpy())[0]))
    return column.dt.epoch("ns").to_numpy()


def _missing_time(name: str, row: int) -> int:
    raise ValidationError(f"invalid `time` column {name!r}: row {row} has no time (null); every event needs one")


def _reject_mixed_awareness(cells: np.ndarray, name: str) -> None:
    """Raise ValidationError when a column mixes naive and aware times."""
    aware_rows: list[int] = []
    naive_rows: list[int] = []
    pattern = re.compile(_AWARE)
    for row, cell in enumerate(cells.tolist()):
        if isinstance(cell, str):
            (aware_rows if pattern.search(cell) else naive_rows).append(row)
        elif hasattr(cell, "tzinfo"):
            (aware_rows if cell.tzinfo is not None else naive_rows).append(row)
        if aware_rows and naive_rows:
            raise ValidationError(
                f"invalid `time` column {name!r}: it mixes naive times (row {naive_rows[0]}: {cells[naive_rows[0]]!r}) "
                f"and times with a UTC offset (row {aware_rows[0]}: {cells[aware_rows[0]]!r}); "
                "naive times would be read as UTC, so give every time an offset or none"
            )


def _values(table: _Table, name: str) -> Any:
    """Return the value column as a float64 array (float columns) or a list of Python values."""
    column = table.column(name, "value")
    if table.backend == "pandas":
        return _pandas_values(column)
    return _polars_values(column)


def _pandas_values(column: Any) -> Any:
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return np.ascontiguousarray(column.to_numpy(), dtype=np.float64)
    if isinstance(dtype, pd.Float64Dtype) or isinstance(dtype, pd.Float32Dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return column.tolist()
    missing = column.isna().to_numpy() if not (isinstance(dtype, np.dtype) and dtype == object) else None
    cells = column.to_numpy(dtype=object).tolist()
    if missing is not None and missing.any():
        for row in np.flatnonzero(missing).tolist():
            cells[row] = None
    return [cell if type(cell) in IMMUTABLE_TYPES else snapshot(cell) for cell in cells]


def _polars_values(column: Any) -> Any:
    import polars as pl

    dtype = column.dtype
    if dtype.is_float():
        return np.ascontiguousarray(column.cast(pl.Float64).fill_null(np.nan).to_numpy(), dtype=np.float64)
    cells = column.to_list()
    if dtype == pl.Object or dtype.is_nested():
        return [cell if type(cell) in IMMUTABLE_TYPES else snapshot(cell) for cell in cells]
    return cells


def _reasons(table: _Table, reason: Any, value: str) -> tuple[Any, np.ndarray | None]:
    """Return ``(codes, texts)`` for a reason column, or ``(text, None)`` for one reason."""
    if reason is None:
        return f"ingested from {value}", None
    if not isinstance(reason, str):
        raise invalid_parameter("reason", reason, "a column name or a reason string", "from_events")
    if not table.has(reason):
        if not reason.strip():
            raise ValidationError("invalid `reason` of from_events: the reason is empty; say why the values changed")
        _reject_near_column(table, reason, "reason")
        return reason, None
    codes, uniques = _encode(table, reason, "reason")
    for text in uniques:
        if not isinstance(text, str) or not text.strip():
            row = int(np.flatnonzero(codes == uniques.index(text))[0])
            raise ValidationError(
                f"invalid reason {text!r} at row {row} of column {reason!r}: expected a non-empty string; "
                f"convert the column to text first if it holds codes"
            )
    texts = np.empty(len(uniques), dtype=object)
    texts[:] = uniques
    return codes, texts


def _confidences(table: _Table, confidence: Any) -> float | np.ndarray:
    if confidence is None:
        return 1.0
    if not isinstance(confidence, str):
        return check_confidence(confidence)
    column = table.column(confidence, "confidence")
    try:
        values = np.asarray(column.to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"invalid `confidence` column {confidence!r}: expected numbers from 0.0 to 1.0") from None
    bad = np.flatnonzero(np.isnan(values) | (values < 0.0) | (values > 1.0))
    if len(bad):
        row = int(bad[0])
        raise ValidationError(
            f"invalid confidence {float(values[row])!r} at row {row} of column {confidence!r}: expected a number from 0.0 to 1.0"
        )
    return values


def _tags(table: _Table, tags: Any) -> tuple[str, ...] | list[tuple[str, ...]] | None:
    """Return one tag tuple for every row, a tuple per row, or None."""
    if tags is None:
        return None
    if isinstance(tags, str):
        if not table.has(tags):
            raise ValidationError(
                f"invalid `tags` of from_events: column {tags!r} not found; the table has the columns {table.names}. "
                f"Pass a list such as [{tags!r}] to tag every event."
            )
        cells = table.frame[tags].to_list() if table.backend == "polars" else table.frame[tags].tolist()
        return [_tag_tuple(cell, row) for row, cell in enumerate(cells)]
    constant = _tag_tuple(tags, None)
    return constant


def _tag_tuple(cell: Any, row: int | None) -> tuple[str, ...]:
    where = "" if row is None else f" at row {row}"
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ()
    if isinstance(cell, str) or not hasattr(cell, "__iter__"):
        raise ValidationError(f"invalid tags {cell!r}{where}: expected a list of strings")
    items = tuple(cell)
    for tag in items:
        if not isinstance(tag, str) or not tag:
            raise ValidationError(f"invalid tag {tag!r} in {list(items)!r}{where}: every tag must be a non-empty string")
    return items


def _metadata(table: _Table, metadata: Any) -> dict[int, Mapping[str, Any]] | None:
    """Return frozen metadata keyed by row, or None."""
    if metadata is None:
        return None
    found: dict[int, Mapping[str, Any]] = {}
    if isinstance(metadata, str):
        column = table.column(metadata, "metadata")
        cells = column.to_list() if table.backend == "polars" else column.tolist()
        for row, cell in enumerate(cells):
            if cell is None or (isinstance(cell, float) and cell != cell):
                continue
            if not isinstance(cell, Mapping):
                raise ValidationError(f"invalid metadata {cell!r} at row {row} of column {metadata!r}: expected a dict or None")
            found[row] = freeze_mapping(cell)  # type: ignore[assignment]
        return found
    names = list(metadata)
    columns = {name: table.column(name, "metadata") for name in names}
    lists = {name: (column.to_list() if table.backend == "polars" else column.tolist()) for name, column in columns.items()}
    for row in range(table.count):
        found[row] = freeze_mapping({name: lists[name][row] for name in names})  # type: ignore[assignment]
    return found


# -- ordering and duplicates -------------------------------------------------------------------


def _order(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Return row positions sorted by identity code, then time; ties keep table order."""
    count = len(codes)
    if not codes.any() and (count < 2 or bool(np.all(times[1:] >= times[:-1]))):
        return np.arange(count)
    order = np.argsort(times, kind="stable")
    return order[np.argsort(codes[order], kind="stable")]


def _duplicate_filter(
    order: np.ndarray, codes: np.ndarray, times: np.ndarray, values: Any, reasons: Any, duplicates: str
) -> np.ndarray | None:
    """Return a mask over ``order`` that drops later duplicates, None to keep every row.

    Duplicates share identity and time, so after sorting they sit among
    neighbours with equal (identity, time); only those tied rows are compared.
    """
    if duplicates == "keep" or len(order) < 2:
        return None
    sorted_codes = codes[order]
    sorted_times = times[order]
    tied = (sorted_codes[1:] == sorted_codes[:-1]) & (sorted_times[1:] == sorted_times[:-1])
    if not tied.any():
        return None
    keep = np.ones(len(order), dtype=bool)
    found: list[tuple[int, int]] = []
    starts = np.flatnonzero(tied & ~np.concatenate(([False], tied[:-1])))
    for start in starts.tolist():
        stop = start + 1
        while stop < len(tied) and tied[stop]:
            stop += 1
        seen: dict[tuple[bytes, Any], int] = {}
        for index in range(start, stop + 1):
            row = int(order[index])
            key = (encode(_value_at(values, row)), reasons if isinstance(reasons, str) else int(reasons[row]))
            if key in seen:
                keep[index] = False
                found.append((seen[key], row))
            else:
                seen[key] = row
    if not found:
        return None
    if duplicates == "raise":
        first, second = found[0]
        raise ValidationError(
            f"found {len(found)} duplicate events (same identity, time, value and reason), first at rows {first} and "
            f"{second}; pass duplicates='drop' to keep the first of each or duplicates='keep' to record them all"
        )
    return keep


def _value_at(values: Any, row: int) -> Any:
    return float(values[row]) if isinstance(values, np.ndarray) else values[row]


def _take_values(values: Any, order: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return array("d", np.ascontiguousarray(values[order]).tobytes())
    return [values[position] for position in order.tolist()]


def _slice_tags(cells: Any, positions: np.ndarray, size: int) -> list[tuple[str, ...]] | None:
    if cells is None or cells == ():
        return None
    if isinstance(cells, tuple):
        return [cells] * size
    return [cells[position] for position in positions.tolist()]


def _slice_metadata(cells: dict[int, Mapping[str, Any]] | None, positions: np.ndarray) -> dict[int, Mapping[str, Any]] | None:
    if not cells:
        return None
    return {index: cells[position] for index, position in enumerate(positions.tolist()) if position in cells}
