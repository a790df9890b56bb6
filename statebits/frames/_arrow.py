"""Arrow arrays of history columns, built with vectorised kernels.

The pandas, Polars and Arrow views all start from these arrays: strings are
decoded from the history's code arrays, checksums are hex-encoded in one call,
and tags and causes become list arrays without a Python object per row.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from statebits.core.canonical import to_jsonable
from statebits.frames._columns import HistoryColumns, hex_checksums

__all__ = [
    "CAUSE_TYPE",
    "TAGS_TYPE",
    "TIME_TYPE",
    "JSON_ENCODING",
    "ENCODING_KEY",
    "common_arrays",
    "runs_strings",
    "typed_values",
    "json_values",
    "json_text",
    "metadata_json",
]

TIME_TYPE = pa.timestamp("ns", tz="UTC")
TAGS_TYPE = pa.list_(pa.large_string())
CAUSE_TYPE = pa.list_(
    pa.struct(
        [
            ("identity", pa.large_string()),
            ("step", pa.int64()),
            ("checksum", pa.large_string()),
            ("branch", pa.large_string()),
        ]
    )
)
#: Field metadata key naming how a value column is encoded.
ENCODING_KEY = b"statebits.encoding"
#: Encoding of value columns that hold tagged JSON text (see statebits.core.canonical).
JSON_ENCODING = b"json"
_COMMON_KEY = "frames:arrow-common"
_FRACTION = pa.scalar(".0", pa.large_string())
_NOTHING = pa.scalar("", pa.large_string())
_METADATA_KEY = "frames:arrow-metadata"


def common_arrays(history: Any, columns: HistoryColumns) -> dict[str, pa.Array]:
    """Return the Arrow arrays of the columns that do not depend on value types.

    The result is cached in ``history._cache`` until the next append; Arrow
    arrays are immutable, so sharing them is safe.
    """
    cached = history._cache.get(_COMMON_KEY)
    if cached is not None and len(cached["step"]) == columns.count:
        return cached
    count = columns.count
    arrays = {
        "step": pa.array(np.arange(1, count + 1, dtype=np.int64)),
        "timestamp": _times(columns.timestamp),
        "recorded_at": _times(columns.recorded),
        "reason": _decode(columns.reason_codes, columns.reasons),
        "confidence": pa.array(columns.confidence),
        "tags": _tags(columns.tag_codes, columns.tagsets),
        "caused_by": _causes(columns.causes, count),
        "checksum": _checksum_strings(history, columns),
    }
    history._cache[_COMMON_KEY] = arrays
    return arrays


def metadata_json(history: Any, columns: HistoryColumns) -> pa.Array:
    """Return the metadata column as JSON text, null where a row has no metadata (cached)."""
    cached = history._cache.get(_METADATA_KEY)
    if cached is not None and len(cached) == columns.count:
        return cached
    if not columns.metadata:
        array = pa.nulls(columns.count, pa.large_string())
    else:
        positions = np.fromiter(columns.metadata, dtype=np.int64, count=len(columns.metadata))
        texts = [json_text(dict(item)) for item in columns.metadata.values()]
        array = _scatter_strings(columns.count, positions, texts)
    history._cache[_METADATA_KEY] = array
    return array


def runs_strings(runs: list[tuple[str, int]]) -> pa.Array:
    """Return a large_string array made of ``(text, repeat)`` runs."""
    labels = list(dict.fromkeys(text for text, _ in runs))
    code_of = {text: code for code, text in enumerate(labels)}
    codes = np.repeat(
        np.array([code_of[text] for text, _ in runs], dtype=np.int32),
        np.array([repeat for _, repeat in runs], dtype=np.int64),
    )
    return _decode(codes, labels)


def typed_values(kind: str, values: Any, first: Any = None, *, shift: bool = False) -> pa.Array:
    """Return typed values as an Arrow array.

    With ``shift`` the array is the from_value column: ``first`` followed by
    every value but the last, where ``first`` None becomes null.
    """
    arrow_type = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.large_string()}[kind]
    if not shift:
        return pa.array(values, type=arrow_type)
    if kind == "str":
        return pa.array([first] + list(values[:-1]) if len(values) else [], type=arrow_type)
    count = len(values)
    if count == 0:
        return pa.array(np.empty(0, dtype=values.dtype), type=arrow_type)
    shifted = np.empty(count, dtype=values.dtype)
    shifted[1:] = values[:-1]
    mask = None
    if first is None:
        shifted[0] = 0
        mask = np.zeros(count, dtype=bool)
        mask[0] = True
    else:
        shifted[0] = first
    return pa.array(shifted, type=arrow_type, mask=mask)


def json_values(kind: str, values: Any) -> pa.Array:
    """Return values as tagged JSON text, which :func:`from_jsonable` reads back exactly.

    Numeric kinds are formatted by Arrow's cast, which writes the shortest
    text that parses back to the same float. Floats without a fraction or
    exponent get ".0", so they do not read back as ints.
    """
    if kind in ("float", "int", "bool"):
        array = pa.array(values)
        text = pc.cast(array, pa.large_string())
        if kind != "float" or len(values) == 0:
            return text
        finite = np.isfinite(values)
        plain = pc.invert(pc.match_substring_regex(text, r"[.eE]"))
        text = pc.if_else(pc.and_(plain, pa.array(finite)), pc.binary_join_element_wise(text, _FRACTION, _NOTHING), text)
        if finite.all():
            return text
        # NaN and infinities are not JSON numbers: use the tagged form instead.
        positions = np.flatnonzero(~finite)
        special = _scatter_strings(len(values), positions, [json_text(float(values[position])) for position in positions])
        return pc.if_else(pa.array(finite), text, special)
    return pa.array([json_text(value) for value in values], type=pa.large_string())


def json_text(value: Any) -> str:
    """Return one value as compact tagged JSON text."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# -- helpers -------------------------------------------------------------------


def _times(nanoseconds: np.ndarray) -> pa.Array:
    data = np.ascontiguousarray(nanoseconds, dtype=np.int64)
    return pa.Array.from_buffers(TIME_TYPE, len(data), [None, pa.py_buffer(data)])


def _decode(codes: np.ndarray, labels: list[str]) -> pa.Array:
    """Return ``labels[codes]`` as a large_string array, decoded by Arrow."""
    count = len(codes)
    if count == 0:
        return pa.array([], type=pa.large_string())
    low, high = int(codes.min()), int(codes.max())
    if low == high:
        return _repeat(labels[low], count)
    dictionary = pa.array(labels, type=pa.large_string())
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode()


def _repeat(text: str, count: int) -> pa.Array:
    """Return ``text`` repeated ``count`` times, built from two buffers."""
    data = text.encode("utf-8")
    offsets = np.arange(0, len(data) * (count + 1), len(data), dtype=np.int64) if data else np.zeros(count + 1, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data * count)])


def _hex_strings(raw: bytes, count: int) -> pa.Array:
    digits = hex_checksums(raw)
    offsets = np.arange(0, 64 * (count + 1), 64, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(digits)])


class _HexChunks:
    """Hex text of a history's first ``rows`` checksums, in chunks of decreasing size."""

    __slots__ = ("rows", "last", "chunks")

    def __init__(self) -> None:
        self.rows = 0
        self.last = b""
        self.chunks: list[pa.Array] = []


# Hex text per history (keyed by id, removed when the history is collected).
# It outlives the history's _cache, so a conversion after an append encodes
# only the new checksums: hex encoding is the slowest step of a view.
_HEX_TEXT: dict[int, _HexChunks] = {}
_HEX_LOCK = threading.Lock()


def _checksum_strings(history: Any, columns: HistoryColumns) -> pa.ChunkedArray:
    """Return the checksum column as hex text, reusing the text of rows converted before."""
    key = id(history)
    count = columns.count
    with _HEX_LOCK:
        entry = _HEX_TEXT.get(key)
        if entry is None:
            entry = _HexChunks()
            _HEX_TEXT[key] = entry
            weakref.finalize(history, _HEX_TEXT.pop, key, None)
        # Checksums chain, so an unchanged last row means every earlier row is unchanged.
        rows = entry.rows
        if rows > count or (rows and columns.checksum_bytes(rows - 1, rows) != entry.last):
            entry.rows, entry.last, entry.chunks = 0, b"", []
            rows = 0
        if count > rows:
            raw = columns.checksum_bytes(rows, count)
            entry.chunks.append(_hex_strings(raw, count - rows))
            # Merge small trailing chunks so their number stays logarithmic.
            while len(entry.chunks) > 1 and len(entry.chunks[-2]) <= 2 * len(entry.chunks[-1]):
                tail = entry.chunks.pop()
                entry.chunks[-1] = pa.concat_arrays([entry.chunks[-1], tail])
            entry.rows = count
            entry.last = raw[-32:]
        chunks = list(entry.chunks)
    return pa.chunked_array(chunks, type=pa.large_string())


def _tags(codes: np.ndarray, tagsets: list[tuple[str, ...]]) -> pa.Array:
    """Return per-row tag lists from tag-set codes, built with index arithmetic."""
    count = len(codes)
    if count == 0 or not codes.any():
        # Code 0 is the empty tag set.
        return pa.ListArray.from_arrays(pa.array(np.zeros(count + 1, dtype=np.int32)), pa.array([], type=pa.large_string()))
    lengths_of_set = np.array([len(tags) for tags in tagsets], dtype=np.int64)
    lengths = lengths_of_set[codes] if count else np.empty(0, dtype=np.int64)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array([], type=pa.large_string()))
    distinct = list(dict.fromkeys(tag for tags in tagsets for tag in tags))
    code_of = {tag: code for code, tag in enumerate(distinct)}
    flat_codes = np.array([code_of[tag] for tags in tagsets for tag in tags], dtype=np.int32)
    set_starts = np.zeros(len(tagsets), dtype=np.int64)
    np.cumsum(lengths_of_set[:-1], out=set_starts[1:])
    # Position j of row i reads flat_codes[set_starts[code_i] + j].
    row_starts = np.repeat(set_starts[codes], lengths)
    within = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1].astype(np.int64), lengths)
    values = _decode(flat_codes[row_starts + within], distinct)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _causes(causes: dict[int, Any], count: int) -> pa.Array:
    lengths = np.zeros(count, dtype=np.int32)
    items: list[dict[str, Any]] = []
    for position in sorted(causes):
        refs = causes[position]
        lengths[position] = len(refs)
        items.extend({"identity": ref.identity, "step": ref.step, "checksum": ref.checksum, "branch": ref.branch} for ref in refs)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(items, type=CAUSE_TYPE.value_type)
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=CAUSE_TYPE)


def _scatter_strings(count: int, positions: np.ndarray, texts: list[str]) -> pa.Array:
    """Return a large_string array of nulls with ``texts`` at ``positions``."""
    pool = pa.array([None] + texts, type=pa.large_string())
    indices = np.zeros(count, dtype=np.int64)
    indices[positions] = np.arange(1, len(texts) + 1)
    return pool.take(pa.array(indices))
