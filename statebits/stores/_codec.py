"""Value encoding for stores: native SQL types where exact, the JSON codec otherwise.

A value is stored as a pair ``(codec, stored)``. With codec None the value is
kept as it is, and the SQL storage class gives back the Python type: INTEGER
is int, REAL is float, TEXT is str, BLOB is bytes and NULL is None. A string
with surrogates, which SQL text cannot hold, is stored as its
``surrogatepass`` UTF-8 bytes with codec ``"utf-8-surrogatepass"``. Every
other value goes through :func:`~statebits.core.canonical.to_jsonable` with
codec ``"json"``, which restores its exact type (bool, Decimal, NaN, tuples,
dicts, big integers, datetimes and so on).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from statebits.core.canonical import from_jsonable, to_jsonable
from statebits.core.transition import CauseRef

__all__ = [
    "JSON",
    "SURROGATE_TEXT",
    "encode_value",
    "encode_values",
    "decode_value",
    "encode_json",
    "decode_json",
    "encode_causes",
    "decode_causes",
]

JSON = "json"
SURROGATE_TEXT = "utf-8-surrogatepass"
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def encode_json(value: Any) -> str:
    """Encode ``value`` with the JSON codec as compact JSON text.

    NOTE: to_jsonable leaves the parts of a complex number as bare floats,
    so a non-finite part is written as NaN or Infinity. Python's json module
    reads these back, but strict JSON parsers reject them.
    """
    return json.dumps(to_jsonable(value), separators=(",", ":"))


def decode_json(text: str, allow_pickle: bool) -> Any:
    """Decode text written by :func:`encode_json`.

    Raises ValueError for text that is not JSON, and ValidationError for a
    pickled object when ``allow_pickle`` is False.
    """
    return from_jsonable(json.loads(text), allow_pickle)


def encode_value(value: Any) -> tuple[str | None, Any]:
    """Return ``(codec, stored)`` for one value."""
    kind = type(value)
    if kind is float:
        # SQLite stores NaN as NULL, so NaN would come back as None.
        return (None, value) if value == value else (JSON, encode_json(value))
    if kind is int:
        return (None, value) if _INT64_MIN <= value <= _INT64_MAX else (JSON, encode_json(value))
    if kind is str:
        # SQL text must be valid UTF-8, so a string with surrogates is stored as its exact bytes.
        return (None, value) if _is_utf8_encodable(value) else (SURROGATE_TEXT, value.encode("utf-8", "surrogatepass"))
    if kind is bytes or value is None:
        return None, value
    return JSON, encode_json(value)


def encode_values(values: Sequence[Any]) -> tuple[list[str | None] | None, Sequence[Any]]:
    """Encode a column of values; the codec list is None when every value is native.

    A float or int64 ``array`` without NaN is returned as it is, which keeps
    batches of numeric values cheap.
    """
    if isinstance(values, array) and values.typecode == "q":
        return None, values
    if isinstance(values, array) and values.typecode == "d":
        import numpy as np

        if not np.isnan(np.frombuffer(values, dtype=np.float64)).any():
            return None, values
    codecs: list[str | None] = []
    stored: list[Any] = []
    for value in values:
        codec, item = encode_value(value)
        codecs.append(codec)
        stored.append(item)
    if not any(codecs):
        return None, stored
    return codecs, stored


def decode_value(codec: str | None, stored: Any, allow_pickle: bool) -> Any:
    """Rebuild a value from ``(codec, stored)``.

    Raises ValueError for an unknown codec or text that is not JSON, and
    ValidationError for a pickled object when ``allow_pickle`` is False.
    """
    if codec is None:
        return stored
    if codec == JSON and isinstance(stored, str):
        return decode_json(stored, allow_pickle)
    if codec == SURROGATE_TEXT and isinstance(stored, bytes):
        return stored.decode("utf-8", "surrogatepass")
    raise ValueError(f"unknown value codec {codec!r} for a stored {type(stored).__name__}")


def encode_causes(causes: Sequence[CauseRef]) -> str:
    """Encode the ``caused_by`` references of one transition as JSON text."""
    return json.dumps([ref.as_dict() for ref in causes], separators=(",", ":"))


def decode_causes(text: str) -> tuple[CauseRef, ...]:
    """Decode text written by :func:`encode_causes`."""
    items = json.loads(text)
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise ValueError(f"invalid caused_by JSON {text[:80]!r}: expected a list of objects")
    return tuple(CauseRef(**item) for item in items)


def _is_utf8_encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
