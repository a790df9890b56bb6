"""Views of statebits and collections as pandas, Polars and Arrow frames, and back.

Every view has the columns of :data:`statebits.frames.schema.COLUMNS`, one
row per transition. Column types:

=========================  ===========================  ============================  ===========================
column                     pandas                       Polars                        Arrow / Parquet
=========================  ===========================  ============================  ===========================
identity, reason, branch   ``str``                      String                        large_string
step                       int64                        Int64                         int64
timestamp, recorded_at     datetime64[ns, UTC]          Datetime("ns", "UTC")         timestamp("ns", "UTC")
from_value, to_value       see below                    see below                     see below
confidence                 float64                      Float64                       float64
tags                       list<string> (ArrowDtype)    List(String)                  list<large_string>
metadata                   dict or None (object)        JSON text or null             JSON text or null
caused_by                  list<struct> (ArrowDtype)    List(Struct)                  list<struct>
checksum                   ``str``, 64 hex digits       String                        large_string
=========================  ===========================  ============================  ===========================

Value columns keep a typed column when every value has one Python type:
float -> float64, int -> int64, bool -> bool, str -> string. Other values
are "mixed": Python objects in pandas (object) and Polars (Object), tagged
JSON text in Arrow, marked by the field metadata ``statebits.encoding: json``.
``from_value`` of step 1 is the initial value. An initial value of None is a
missing entry of the typed column (NaN in pandas float64, null in Polars and
Arrow). An initial value of another type than the values makes
``from_value`` a mixed column.

Views are cached in the history until its next append and returned as
copies (pandas), clones (Polars) or immutable tables (Arrow), so changing a
returned frame never changes the history or the cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from statebits.core.canonical import IMMUTABLE_TYPES, snapshot
from statebits.frames._columns import HistoryColumns, history_columns, initial_fits, unify_kinds
from statebits.frames._meta import META_KEY, meta_text
from statebits.frames.schema import COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from statebits.collection import StatebitsCollection
    from statebits.core.statebit import Statebit

__all__ = [
    "history_to_pandas",
    "history_to_polars",
    "history_to_arrow",
    "collection_to_pandas",
    "collection_to_polars",
    "collection_to_arrow",
    "statebit_from_frame",
    "collection_from_frame",
]

_ARROW_KEY = "frames:arrow"
_POLARS_KEY = "frames:polars"
_JSON_KEY = "frames:json-values"


# -- public views -----------------------------------------------------------------


def history_to_pandas(sb: "Statebit") -> "pd.DataFrame":
    """Return the history of ``sb`` as a pandas DataFrame (see the module docstring for dtypes)."""
    return _pandas_frame([sb], None)


def history_to_polars(sb: "Statebit") -> "pl.DataFrame":
    """Return the history of ``sb`` as a Polars DataFrame."""
    history = sb.history
    cached = history._cache.get(_POLARS_KEY)
    if cached is None:
        cached = _polars_frame([sb])
        if not _has_object_columns(cached):
            history._cache[_POLARS_KEY] = cached
        else:
            return cached
    return cached.clone()


def history_to_arrow(sb: "Statebit") -> "pa.Table":
    """Return the history of ``sb`` as a pyarrow Table carrying the statebit's attributes."""
    history = sb.history
    table = history._cache.get(_ARROW_KEY)
    if table is None:
        table = _arrow_table([sb])
        history._cache[_ARROW_KEY] = table
    return table.replace_schema_metadata({META_KEY: meta_text([sb])})


def collection_to_pandas(collection: "StatebitsCollection") -> "pd.DataFrame":
    """Return all members' histories as one long pandas DataFrame, members in collection order."""
    return _pandas_frame(list(collection), collection.name)


def collection_to_polars(collection: "StatebitsCollection") -> "pl.DataFrame":
    """Return all members' histories as one long Polars DataFrame."""
    return _polars_frame(list(collection))


def collection_to_arrow(collection: "StatebitsCollection") -> "pa.Table":
    """Return all members' histories as one pyarrow Table carrying the members' attributes."""
    members = list(collection)
    table = _arrow_table(members)
    return table.replace_schema_metadata({META_KEY: meta_text(members, collection.name)})


def statebit_from_frame(frame: Any, *, allow_pickle: bool = False, cls: type | None = None) -> "Statebit":
    """Rebuild one statebit from a history frame and verify it.

    Parameters
    ----------
    frame : pandas.DataFrame, polars.DataFrame or pyarrow.Table
        Rows of one statebit, as made by :meth:`Statebit.to_pandas` and its
        siblings. The frame needs at least one row, unless it carries the
        statebit's attributes (pandas ``attrs`` or Arrow schema metadata).
    allow_pickle : bool, default False
        Read values that were stored as pickles (arbitrary objects in JSON
        text). Loading a pickle runs code from the data: trusted input only.
    cls : type, optional
        The Statebit subclass to build; defaults to Statebit.

    Raises
    ------
    ValidationError
        For missing columns, invalid cells, or a frame holding other than one statebit.
    IntegrityError
        When a checksum or the from_value continuity does not verify.
    """
    from statebits.frames._restore import restore_frame

    _, statebits = restore_frame(frame, allow_pickle=allow_pickle, cls=cls)
    if len(statebits) != 1:
        keys = [sb.key for sb in statebits]
        from statebits.core.errors import ValidationError

        raise ValidationError(
            f"the frame contains {len(statebits)} statebits {keys[:5]}; "
            "use StatebitsCollection.from_frame to rebuild several"
        )
    return statebits[0]


def collection_from_frame(frame: Any, name: str | None = "collection", *, allow_pickle: bool = False) -> "StatebitsCollection":
    """Rebuild a collection from a long history frame and verify every member.

    ``name`` None takes the collection name stored with the frame, if any.
    See :func:`statebit_from_frame` for the accepted frames and errors.
    """
    from statebits.collection import StatebitsCollection
    from statebits.frames._restore import restore_frame

    stored_name, statebits = restore_frame(frame, allow_pickle=allow_pickle)
    return StatebitsCollection(name=name or stored_name or "collection", statebits=statebits)


# -- shared parts ---------------------------------------------------------------------


class _Part:
    """One statebit's cached columns and Arrow arrays."""

    __slots__ = ("sb", "columns", "common")

    def __init__(self, sb: "Statebit") -> None:
        from statebits.frames._arrow import common_arrays

        self.sb = sb
        # Under the statebit's lock, an append cannot land between reading the columns and caching them.
        with sb._lock:
            self.columns: HistoryColumns = history_columns(sb.history)
            self.common = common_arrays(sb.history, self.columns)

    @property
    def from_kind(self) -> str:
        columns = self.columns
        return columns.kind if initial_fits(columns.kind, columns.initial_value) else "mixed"


def _kinds(parts: list[_Part]) -> tuple[str, str]:
    """Return the kinds of the to_value and from_value columns over ``parts``."""
    filled = [part for part in parts if part.columns.count]
    return unify_kinds([part.columns.kind for part in filled]), unify_kinds([part.from_kind for part in filled])


def _concat(arrays: list[Any], arrow_type: "pa.DataType | None" = None) -> Any:
    """Concatenate Arrow arrays; chunked inputs give a chunked result without copying."""
    import pyarrow as pa

    if len(arrays) == 1:
        return arrays[0]
    if not arrays:
        return pa.array([], type=arrow_type)
    if any(isinstance(array, pa.ChunkedArray) for array in arrays):
        chunks = [chunk for array in arrays for chunk in (array.chunks if isinstance(array, pa.ChunkedArray) else [array])]
        return pa.chunked_array(chunks, type=arrays[0].type)
    return pa.concat_arrays(arrays)


def _labels(parts: list[_Part]) -> tuple["pa.Array", "pa.Array"]:
    """Return the identity and branch columns as Arrow arrays."""
    from statebits.frames._arrow import runs_strings

    identities = runs_strings([(part.columns.identity, part.columns.count) for part in parts])
    branches = runs_strings([run for part in parts for run in part.columns.branch_runs])
    return identities, branches


def _common(parts: list[_Part], name: str) -> "pa.Array":
    import pyarrow as pa

    from statebits.frames._arrow import CAUSE_TYPE, TAGS_TYPE, TIME_TYPE

    types = {
        "step": pa.int64(),
        "timestamp": TIME_TYPE,
        "recorded_at": TIME_TYPE,
        "reason": pa.large_string(),
        "confidence": pa.float64(),
        "tags": TAGS_TYPE,
        "caused_by": CAUSE_TYPE,
        "checksum": pa.large_string(),
    }
    return _concat([part.common[name] for part in parts], types[name])


def _python_values(part: _Part, shift: bool) -> list[Any]:
    """Return a part's values (or from_values) as fresh Python objects."""
    columns = part.columns
    values = columns.values.tolist() if isinstance(columns.values, np.ndarray) else _fresh(columns.values)
    if not shift:
        return values
    return ([_fresh_one(columns.initial_value)] + values[:-1]) if values else []


def _fresh(values: list[Any]) -> list[Any]:
    """Return ``values`` with mutable objects deep-copied, so callers cannot alter history."""
    return [value if type(value) in IMMUTABLE_TYPES else _fresh_one(value) for value in values]


def _fresh_one(value: Any) -> Any:
    return value if type(value) in IMMUTABLE_TYPES else snapshot(value)


def _json_texts(part: _Part) -> "pa.Array":
    """Return a part's values as tagged JSON text, cached with its history."""
    from statebits.frames._arrow import json_values

    history = part.sb.history
    cached = history._cache.get(_JSON_KEY)
    if cached is None:
        columns = part.columns
        cached = json_values(columns.kind if columns.kind != "mixed" else "mixed", columns.values)
        history._cache[_JSON_KEY] = cached
    return cached


# -- Arrow -------------------------------------------------------------------------------


def _arrow_values(parts: list[_Part], kind: str, shift: bool) -> "pa.Array":
    import pyarrow as pa

    from statebits.frames._arrow import json_text, typed_values

    pieces = []
    for part in parts:
        columns = part.columns
        if kind != "mixed":
            pieces.append(typed_values(kind, columns.values, columns.initial_value, shift=shift))
            continue
        texts = _json_texts(part)
        if shift and columns.count:
            texts = pa.concat_arrays([pa.array([json_text(columns.initial_value)], type=pa.large_string()), texts.slice(0, columns.count - 1)])
        pieces.append(texts)
    arrow_type = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}.get(kind, pa.large_string())
    return _concat(pieces, arrow_type)


def _arrow_table(statebits: list["Statebit"]) -> "pa.Table":
    import pyarrow as pa

    from statebits.frames._arrow import ENCODING_KEY, JSON_ENCODING, metadata_json

    parts = [_Part(sb) for sb in statebits]
    to_kind, from_kind = _kinds(parts)
    identities, branches = _labels(parts)
    arrays: dict[str, pa.Array] = {
        "identity": identities,
        "from_value": _arrow_values(parts, from_kind, shift=True),
        "to_value": _arrow_values(parts, to_kind, shift=False),
        "metadata": _concat([metadata_json(part.sb.history, part.columns) for part in parts], pa.large_string()),
        "branch": branches,
    }
    for name in ("step", "timestamp", "recorded_at", "reason", "confidence", "tags", "caused_by", "checksum"):
        arrays[name] = _common(parts, name)
    fields = []
    for name in COLUMNS:
        encoded = (name == "from_value" and from_kind == "mixed") or (name == "to_value" and to_kind == "mixed")
        metadata = {ENCODING_KEY: JSON_ENCODING} if encoded else None
        fields.append(pa.field(name, arrays[name].type, metadata=metadata))
    return pa.Table.from_arrays([arrays[name] for name in COLUMNS], schema=pa.schema(fields))


# -- Polars ------------------------------------------------------------------------------


def _polars_frame(statebits: list["Statebit"]) -> "pl.DataFrame":
    import polars as pl
    import pyarrow as pa

    from statebits.frames._arrow import metadata_json

    parts = [_Part(sb) for sb in statebits]
    to_kind, from_kind = _kinds(parts)
    identities, branches = _labels(parts)
    arrays = {
        "identity": identities,
        "metadata": _concat([metadata_json(part.sb.history, part.columns) for part in parts], pa.large_string()),
        "branch": branches,
    }
    for name in ("step", "timestamp", "recorded_at", "reason", "confidence", "tags", "caused_by", "checksum"):
        arrays[name] = _common(parts, name)
    for name, kind, shift in (("from_value", from_kind, True), ("to_value", to_kind, False)):
        if kind != "mixed":
            arrays[name] = _arrow_values(parts, kind, shift)
    frame = pl.from_arrow(pa.table(arrays))
    assert isinstance(frame, pl.DataFrame)
    objects = []
    for name, kind, shift in (("from_value", from_kind, True), ("to_value", to_kind, False)):
        if kind == "mixed":
            values = [value for part in parts for value in _python_values(part, shift)]
            objects.append(pl.Series(name, values, dtype=pl.Object))
    if objects:
        frame = frame.with_columns(objects)
    return frame.select(COLUMNS)


def _has_object_columns(frame: "pl.DataFrame") -> bool:
    import polars as pl

    return any(dtype == pl.Object for dtype in frame.dtypes)


# -- pandas ------------------------------------------------------------------------------


def _str_dtype() -> Any:
    """Return pandas' default string dtype (``str`` in pandas 3)."""
    import pandas as pd

    try:
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except TypeError:  # pandas < 2.3 has no na_value parameter
        return pd.StringDtype("pyarrow")


def _pandas_strings(array: "pa.Array") -> Any:
    import pandas as pd

    return pd.array(array, dtype=_str_dtype())


def _pandas_values(parts: list[_Part], kind: str, shift: bool) -> Any:
    import pandas as pd

    count = sum(part.columns.count for part in parts)
    if kind == "mixed":
        values = [value for part in parts for value in _python_values(part, shift)]
        # fromiter keeps list values as cells instead of adding a dimension.
        return np.fromiter(values, dtype=object, count=count)
    if kind == "str":
        return _pandas_strings(_arrow_values(parts, kind, shift))
    dtype = {"float": np.float64, "int": np.int64, "bool": np.bool_}[kind]
    values = np.empty(count, dtype=dtype)
    missing = np.zeros(count, dtype=bool)
    offset = 0
    for part in parts:
        columns = part.columns
        size = columns.count
        if size:
            if shift:
                values[offset + 1 : offset + size] = columns.values[:-1]
                if columns.initial_value is None:
                    missing[offset] = True
                    values[offset] = np.nan if kind == "float" else 0
                else:
                    values[offset] = columns.initial_value
            else:
                values[offset : offset + size] = columns.values
        offset += size
    if not missing.any() or kind == "float":
        return values
    # A None initial value in an int or bool column needs pandas' nullable dtype.
    if kind == "int":
        return pd.arrays.IntegerArray(values, missing)
    return pd.arrays.BooleanArray(values, missing)


def _pandas_metadata(parts: list[_Part]) -> np.ndarray:
    count = sum(part.columns.count for part in parts)
    result = np.full(count, None, dtype=object)
    offset = 0
    for part in parts:
        for position, item in part.columns.metadata.items():
            result[offset + position] = snapshot(dict(item))
        offset += part.columns.count
    return result


def _pandas_frame(statebits: list["Statebit"], name: str | None) -> "pd.DataFrame":
    import pandas as pd

    parts = [_Part(sb) for sb in statebits]
    to_kind, from_kind = _kinds(parts)
    identities, branches = _labels(parts)

    def numbers(attribute: str, dtype: Any) -> np.ndarray:
        arrays = [getattr(part.columns, attribute) for part in parts]
        if not arrays:
            return np.empty(0, dtype=dtype)
        # Always a new, writable array: the cached ones are read-only.
        return np.concatenate(arrays) if len(arrays) != 1 else arrays[0].copy()

    time_dtype = pd.DatetimeTZDtype("ns", "UTC")
    steps = np.concatenate([np.arange(1, part.columns.count + 1, dtype=np.int64) for part in parts]) if parts else np.empty(0, np.int64)
    data = {
        "identity": _pandas_strings(identities),
        "step": steps,
        "timestamp": pd.array(numbers("timestamp", np.int64).view("M8[ns]"), dtype=time_dtype),
        "recorded_at": pd.array(numbers("recorded", np.int64).view("M8[ns]"), dtype=time_dtype),
        "from_value": _pandas_values(parts, from_kind, shift=True),
        "to_value": _pandas_values(parts, to_kind, shift=False),
        "reason": _pandas_strings(_common(parts, "reason")),
        "confidence": numbers("confidence", np.float64),
        "tags": pd.arrays.ArrowExtensionArray(_common(parts, "tags")),
        "metadata": _pandas_metadata(parts),
        "caused_by": pd.arrays.ArrowExtensionArray(_common(parts, "caused_by")),
        "checksum": _pandas_strings(_common(parts, "checksum")),
        "branch": _pandas_strings(branches),
    }
    frame = pd.DataFrame(data, columns=list(COLUMNS), copy=False)
    frame.attrs[META_KEY] = meta_text(statebits, name)
    return frame
