"""Read the columns of a pandas, Polars or Arrow history frame as plain arrays.

Scalar columns (identity, step, times, reason, confidence, checksum, branch)
go through Arrow, which reads pandas and Polars columns without copying in
the common cases. Value, tag, metadata and cause columns are read with the
frame's own library, because their cells may be Python objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from statebits.core.canonical import from_jsonable
from statebits.core.errors import ValidationError
from statebits.core.transition import CauseRef
from statebits.frames._arrow import ENCODING_KEY, JSON_ENCODING
from statebits.frames._meta import META_KEY

__all__ = ["FrameReader", "ValueColumn", "reader_for"]


@dataclass
class ValueColumn:
    """A value column as a numpy array.

    ``data`` is float64, int64 or bool for typed columns and object
    otherwise. ``missing`` marks null entries of typed or string columns
    (they read as None). ``encoded`` marks tagged JSON text.
    """

    data: np.ndarray
    missing: np.ndarray | None
    encoded: bool

    @property
    def numeric(self) -> bool:
        return self.data.dtype != object and not self.encoded

    def take(self, positions: np.ndarray, allow_pickle: bool, decode: bool = False) -> list[Any]:
        """Return the values at ``positions`` as Python objects."""
        values = self.data[positions].tolist()
        if self.missing is not None:
            for index in np.flatnonzero(self.missing[positions]).tolist():
                values[index] = None
        if self.encoded or decode:
            values = [None if value is None else _decode_json(value, allow_pickle) for value in values]
        return values


class FrameReader:
    """Columns of one frame, read on demand."""

    def __init__(self, frame: Any, kind: str) -> None:
        self.frame = frame
        self.kind = kind  # "pandas", "polars" or "arrow"
        if kind == "pandas":
            self.columns = [str(name) for name in frame.columns]
        else:
            self.columns = list(frame.columns) if kind == "polars" else list(frame.column_names)
        self.count = len(frame) if kind != "arrow" else frame.num_rows

    # -- attached metadata -----------------------------------------------------

    def meta_text(self) -> str | bytes | None:
        if self.kind == "pandas":
            return self.frame.attrs.get(META_KEY)
        if self.kind == "arrow":
            return (self.frame.schema.metadata or {}).get(META_KEY.encode())
        return None

    # -- scalar columns via Arrow ------------------------------------------------

    def arrow(self, name: str) -> pa.Array:
        """Return column ``name`` as one Arrow array."""
        column = self.frame[name]
        if self.kind == "arrow":
            array = column
        elif self.kind == "polars":
            array = column.to_arrow()
        else:
            try:
                array = pa.array(column, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ValidationError(f"invalid `{name}` column: {exc}") from None
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        return array

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Return integer codes (in order of first appearance) and labels of a string column."""
        array = self.arrow(name)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type)):
            raise ValidationError(f"invalid `{name}` column: expected strings, got {array.type}")
        if array.null_count:
            row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValidationError(f"invalid `{name}` column: row {row} is missing; every row needs a {name}")
        encoded = pc.dictionary_encode(array)
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, encoded.dictionary.to_pylist()

    def ints(self, name: str) -> np.ndarray:
        array = self.arrow(name)
        if not pa.types.is_integer(array.type) or array.null_count:
            raise ValidationError(f"invalid `{name}` column: expected integers without missing entries, got {array.type}")
        return array.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)

    def floats(self, name: str) -> np.ndarray:
        array = self.arrow(name)
        if not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
            raise ValidationError(f"invalid `{name}` column: expected numbers, got {array.type}")
        values = array.to_numpy(zero_copy_only=False).astype(np.float64)
        if array.null_count:
            values[array.is_null().to_numpy(zero_copy_only=False)] = np.nan
        return values

    def times(self, name: str) -> np.ndarray:
        """Return a time column as int64 nanoseconds since the epoch, UTC (naive read as UTC)."""
        array = self.arrow(name)
        if not pa.types.is_timestamp(array.type):
            raise ValidationError(f"invalid `{name}` column: expected datetimes, got {array.type}")
        if array.null_count:
            row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValidationError(f"invalid `{name}` column: row {row} is missing (NaT); every transition has a time")
        array = array.cast(pa.timestamp("ns", tz=array.type.tz))
        return array.view(pa.int64()).to_numpy(zero_copy_only=False)

    # -- backend-specific columns -----------------------------------------------------

    def values(self, name: str) -> ValueColumn:
        if self.kind == "pandas":
            return _pandas_values(self.frame[name])
        if self.kind == "polars":
            return _polars_values(self.frame[name])
        field = self.frame.schema.field(name)
        encoded = (field.metadata or {}).get(ENCODING_KEY) == JSON_ENCODING
        return _arrow_values(self.arrow(name), encoded)

    def tags(self) -> list[tuple[str, ...]] | None:
        """Return each row's tags as a tuple, or None when no row has tags."""
        cells = self._nested("tags")
        if cells is None:
            return None
        result = []
        for row, cell in enumerate(cells):
            if cell is None or (isinstance(cell, float) and math.isnan(cell)):
                result.append(())
                continue
            if isinstance(cell, str) or not hasattr(cell, "__iter__"):
                raise ValidationError(f"invalid `tags` at row {row}: expected a list of strings, got {cell!r}")
            items = tuple(cell)
            if not all(isinstance(tag, str) for tag in items):
                raise ValidationError(f"invalid `tags` at row {row}: expected strings, got {list(items)!r}")
            result.append(items)
        return result

    def metadata(self, allow_pickle: bool) -> dict[int, dict[str, Any]]:
        """Return the metadata of rows that have it, keyed by row position."""
        rows, cells = self._present_cells("metadata")
        found: dict[int, dict[str, Any]] = {}
        for row, cell in zip(rows, cells):
            if isinstance(cell, str):
                cell = _decode_json(cell, allow_pickle)
            if not isinstance(cell, Mapping):
                raise ValidationError(f"invalid `metadata` at row {row}: expected a dict, None or JSON text, got {cell!r}")
            found[row] = dict(cell)
        return found

    def causes(self) -> dict[int, tuple[CauseRef, ...]]:
        """Return the causes of rows that have them, keyed by row position."""
        cells = self._nested("caused_by")
        found: dict[int, tuple[CauseRef, ...]] = {}
        if cells is None:
            return found
        for row, cell in enumerate(cells):
            if _is_empty_cell(cell):
                continue
            if isinstance(cell, (str, bytes)) or not hasattr(cell, "__iter__"):
                raise ValidationError(f"invalid `caused_by` at row {row}: expected a list of causes, got {cell!r}")
            refs = []
            for item in cell:
                if isinstance(item, CauseRef):
                    refs.append(item)
                elif isinstance(item, Mapping) and {"identity", "step", "checksum"} <= set(item):
                    refs.append(CauseRef(item["identity"], int(item["step"]), item["checksum"], item.get("branch") or "main"))
                else:
                    raise ValidationError(
                        f"invalid `caused_by` at row {row}: expected dicts with identity, step, checksum and branch, got {item!r}"
                    )
            found[row] = tuple(refs)
        return found

    def _nested(self, name: str) -> list[Any] | None:
        """Return the cells of a list column, or None when every list is empty."""
        if self.kind != "pandas" or _is_arrow_backed(self.frame[name]):
            array = self.arrow(name)
            if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
                lengths = pc.list_value_length(array).fill_null(0)
                if pc.sum(lengths).as_py() in (0, None):
                    return None
            return array.to_pylist()
        cells = self.frame[name].to_numpy(dtype=object)
        if all(_is_empty_cell(cell) for cell in cells):
            return None
        return list(cells)

    def _present_cells(self, name: str) -> tuple[list[int], list[Any]]:
        """Return the positions and cells of the non-missing entries of a column."""
        if self.kind == "pandas" and not _is_arrow_backed(self.frame[name]):
            column = self.frame[name]
            rows = np.flatnonzero(column.notna().to_numpy()).tolist()
            cells = column.to_numpy(dtype=object)
            return rows, [cells[row] for row in rows]
        array = self.arrow(name)
        if array.null_count == len(array):
            return [], []
        rows = np.flatnonzero(array.is_valid().to_numpy(zero_copy_only=False)).tolist()
        return rows, array.take(pa.array(rows, type=pa.int64())).to_pylist()


def reader_for(frame: Any) -> FrameReader:
    """Return a reader for a pandas, Polars or Arrow frame."""
    module = type(frame).__module__.split(".")[0]
    if module == "pandas" and type(frame).__name__ == "DataFrame":
        return FrameReader(frame, "pandas")
    if module == "polars":
        if type(frame).__name__ == "LazyFrame":
            frame = frame.collect()
        if type(frame).__name__ == "DataFrame":
            return FrameReader(frame, "polars")
    if isinstance(frame, pa.RecordBatch):
        frame = pa.Table.from_batches([frame])
    if isinstance(frame, pa.Table):
        return FrameReader(frame, "arrow")
    raise ValidationError(
        f"invalid frame of type {type(frame).__name__}: expected a pandas DataFrame, a Polars DataFrame or a pyarrow Table"
    )


# -- helpers ---------------------------------------------------------------------------


def _decode_json(text: Any, allow_pickle: bool) -> Any:
    if not isinstance(text, str):
        raise ValidationError(f"invalid JSON-encoded value {text!r}: expected text")
    try:
        return from_jsonable(json.loads(text), allow_pickle)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"invalid JSON-encoded value {text[:80]!r}: {exc}") from None


def _is_empty_cell(cell: Any) -> bool:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return True
    return hasattr(cell, "__len__") and not isinstance(cell, str) and len(cell) == 0


def _is_arrow_backed(series: Any) -> bool:
    import pandas as pd

    return isinstance(series.dtype, pd.ArrowDtype)


def _pandas_values(series: Any) -> ValueColumn:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        data = series.to_numpy()
        if dtype.kind == "u" or (dtype.kind == "f" and dtype != np.float64):
            data = data.astype(np.int64 if dtype.kind == "u" else np.float64)
        return ValueColumn(np.ascontiguousarray(data), None, False)
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_values(pa.array(series), False)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "fiub" and not isinstance(dtype, pd.StringDtype):
        # Nullable Float64, Int64 and boolean columns.
        missing = series.isna().to_numpy()
        target = {"f": np.float64, "i": np.int64, "u": np.int64, "b": np.bool_}[dtype.kind]
        filler = {"f": np.nan, "i": 0, "u": 0, "b": False}[dtype.kind]
        data = series.to_numpy(dtype=target, na_value=filler)
        return ValueColumn(data, missing if missing.any() else None, False)
    if isinstance(dtype, pd.StringDtype):
        missing = series.isna().to_numpy()
        return ValueColumn(series.to_numpy(dtype=object), missing if missing.any() else None, False)
    return ValueColumn(series.to_numpy(dtype=object), None, False)


def _polars_values(series: Any) -> ValueColumn:
    import polars as pl

    dtype = series.dtype
    if dtype.is_float() or dtype.is_integer() or dtype == pl.Boolean:
        missing = series.is_null().to_numpy()
        if dtype.is_float():
            target, filler = np.float64, 0
        elif dtype == pl.Boolean:
            target, filler = np.bool_, False
        else:
            target, filler = np.int64, 0
        data = series.fill_null(filler).to_numpy().astype(target, copy=False)
        if dtype.is_float() and missing.any():
            data = data.copy()
        return ValueColumn(data, missing if missing.any() else None, False)
    data = _object_array(series.to_list())
    if dtype == pl.Object:
        return ValueColumn(data, None, False)
    missing = series.is_null().to_numpy()
    return ValueColumn(data, missing if missing.any() else None, False)


def _arrow_values(array: pa.Array, encoded: bool) -> ValueColumn:
    kind = array.type
    missing = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if pa.types.is_floating(kind):
            target, filler = np.float64, 0
        elif pa.types.is_boolean(kind):
            target, filler = np.bool_, False
        else:
            target, filler = np.int64, 0
        filled = array.fill_null(filler) if array.null_count else array
        return ValueColumn(filled.to_numpy(zero_copy_only=False).astype(target, copy=False), missing, False)
    return ValueColumn(_object_array(array.to_pylist()), missing, encoded)


def _object_array(values: list[Any]) -> np.ndarray:
    """Return a 1-D object array of ``values``; nested lists stay cells instead of becoming dimensions."""
    return np.fromiter(values, dtype=object, count=len(values))
