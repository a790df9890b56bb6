"""Canonical encoding of values for hashing, value snapshots and the JSON codec.

The encoding is a type-tagged byte string that depends only on the value, so
checksums are stable across runs, machines and Python versions. Decimals are
encoded from their exact text, never through float; NaN has one encoding;
dict entries and set members are sorted by their own encoding.
"""

from __future__ import annotations

import base64
import copy
import math
import re
import struct
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from statebits.core.errors import ValidationError

__all__ = ["encode", "snapshot", "to_jsonable", "from_jsonable", "freeze_mapping", "IMMUTABLE_TYPES"]

_pack_double = struct.Struct("<d").pack
_pack_len = struct.Struct("<I").pack
_NAN = b"f" + struct.pack("<d", float("nan"))

#: Types whose instances never change, so recording them needs no copy.
IMMUTABLE_TYPES: frozenset[type] = frozenset(
    {type(None), bool, int, float, complex, str, bytes, Decimal, datetime, date, time, timedelta, frozenset}
)


def _is_pandas_missing(value: Any) -> str | None:
    """Return 'NA' or 'NaT' for pandas' missing-value singletons, else None."""
    name = type(value).__name__
    if name == "NAType" and type(value).__module__.startswith("pandas"):
        return "NA"
    if name == "NaTType" and type(value).__module__.startswith("pandas"):
        return "NaT"
    return None


def _numpy_kind(value: Any) -> str | None:
    module = type(value).__module__
    if module == "numpy":
        if type(value).__name__ == "ndarray":
            return "array"
        return "scalar"
    return None


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically as bytes.

    Raises
    ------
    ValidationError
        For an object with no canonical form (no ``__dict__``, ``__slots__``
        or dataclass fields and not a known type).
    """
    kind = type(value)
    if kind is float:
        return _NAN if value != value else b"f" + _pack_double(value)
    if kind is str:
        data = value.encode("utf-8", "surrogatepass")
        return b"s" + _pack_len(len(data)) + data
    if kind is int:
        text = str(value).encode()
        return b"i" + _pack_len(len(text)) + text
    if value is None:
        return b"N"
    if kind is bool:
        return b"T" if value else b"F"
    return _encode_other(value)


def _encode_other(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, float):
        return encode(float(value))
    if isinstance(value, int):
        return encode(int(value))
    if isinstance(value, str):
        return encode(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return b"b" + _pack_len(len(data)) + data
    if isinstance(value, Decimal):
        text = str(value).encode()
        return b"d" + _pack_len(len(text)) + text
    missing = _is_pandas_missing(value)
    if missing == "NA":
        return b"A"
    if missing == "NaT":
        return b"Z"
    if isinstance(value, datetime):
        text = value.isoformat().encode()
        if getattr(value, "nanosecond", 0):
            text += b"+ns" + str(value.nanosecond).encode()
        return b"t" + _pack_len(len(text)) + text
    if isinstance(value, date):
        text = value.isoformat().encode()
        return b"a" + _pack_len(len(text)) + text
    if isinstance(value, time):
        text = value.isoformat().encode()
        return b"h" + _pack_len(len(text)) + text
    if isinstance(value, timedelta):
        micros = value // timedelta(microseconds=1)
        return b"D" + encode(int(micros))
    if isinstance(value, complex):
        # Every NaN part packs as the one canonical NaN, as for floats.
        return b"c" + encode(float(value.real))[1:] + encode(float(value.imag))[1:]
    if isinstance(value, tuple):
        return b"(" + b"".join(encode(item) for item in value) + b")"
    if isinstance(value, list):
        return b"[" + b"".join(encode(item) for item in value) + b"]"
    if isinstance(value, Mapping):
        items = sorted((encode(k), encode(v)) for k, v in value.items())
        return b"{" + b"".join(k + v for k, v in items) + b"}"
    if isinstance(value, (set, frozenset)):
        return b"<" + b"".join(sorted(encode(item) for item in value)) + b">"
    numpy_kind = _numpy_kind(value)
    if numpy_kind == "scalar":
        return encode(value.item())
    if numpy_kind == "array":
        header = f"{value.dtype.str}|{value.shape}".encode()
        if value.dtype.kind == "O":
            return b"n" + _pack_len(len(header)) + header + encode(value.tolist())
        data = value.tobytes(order="C")
        return b"n" + _pack_len(len(header)) + header + _pack_len(len(data)) + data
    return _encode_object(value)


def _encode_object(value: Any) -> bytes:
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}".encode()
    fields: dict[str, Any] | None = None
    dataclass_fields = getattr(value, "__dataclass_fields__", None)
    if dataclass_fields is not None:
        fields = {field: getattr(value, field) for field in dataclass_fields}
    elif hasattr(value, "__dict__"):
        fields = dict(vars(value))
    elif hasattr(kind, "__slots__"):
        fields = {slot: getattr(value, slot) for slot in kind.__slots__ if hasattr(value, slot)}
    if fields is None:
        raise ValidationError(
            f"value {value!r} of type {kind.__name__} has no canonical encoding; "
            "record a plain value (number, string, list, dict, dataclass) instead"
        )
    if hasattr(value, "value") and hasattr(kind, "__members__"):  # Enum members
        fields = {"name": value.name}
    return b"o" + _pack_len(len(name)) + name + encode(fields)


def snapshot(value: Any) -> Any:
    """Return a value safe to keep in history.

    Immutable values are returned as they are; numpy scalars become the
    equivalent Python scalar; mutable containers and objects are deep-copied,
    so mutating the original later never changes history.
    """
    kind = type(value)
    if kind in IMMUTABLE_TYPES:
        return value
    if _numpy_kind(value) == "scalar":
        return value.item()
    if _is_pandas_missing(value) is not None:
        return value
    if kind is tuple and all(type(item) in IMMUTABLE_TYPES for item in value):
        return value
    try:
        return copy.deepcopy(value)
    except (TypeError, copy.Error) as exc:
        raise ValidationError(
            f"value of type {kind.__name__} cannot be recorded because it cannot be copied ({exc}); "
            "record a plain value such as a number, string, list or dict instead"
        ) from None


def freeze_mapping(metadata: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Return a read-only snapshot of a metadata mapping, or None for None or an empty mapping."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"invalid metadata {metadata!r}: expected a dict or None")
    if not metadata:
        return None
    return MappingProxyType({key: snapshot(item) for key, item in metadata.items()})


# -- JSON codec -----------------------------------------------------------------
# JSON has no tuples, sets, Decimals, bytes or NaN, so such values are written
# as {"$sb": kind, "v": payload} objects and read back into their own types.

_TAG = "$sb"
_SURROGATES = re.compile("[\ud800-\udfff]")


def to_jsonable(value: Any) -> Any:
    """Convert a value to plain JSON data that :func:`from_jsonable` reverses exactly."""
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is str:
        # JSON readers join an escaped surrogate pair into one character, so
        # strings holding surrogates travel as their UTF-8 bytes instead.
        if _SURROGATES.search(value):
            return {_TAG: "str", "v": base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()}
        return value
    if kind is int:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return {_TAG: "float", "v": repr(value)}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {_TAG: "bytes", "v": base64.b64encode(bytes(value)).decode()}
    missing = _is_pandas_missing(value)
    if missing:
        return {_TAG: missing}
    if isinstance(value, datetime):
        nanos = getattr(value, "nanosecond", 0)
        return {_TAG: "datetime", "v": value.isoformat(), "ns": nanos} if nanos else {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, time):
        return {_TAG: "time", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "timedelta", "v": value // timedelta(microseconds=1)}
    if isinstance(value, complex):
        return {_TAG: "complex", "v": [to_jsonable(value.real), to_jsonable(value.imag)]}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [to_jsonable(item) for item in value]}
    if isinstance(value, list):
        return [to_jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        items = sorted((to_jsonable(item) for item in value), key=lambda item: encode(from_jsonable(item)))
        return {_TAG: "frozenset" if isinstance(value, frozenset) else "set", "v": items}
    if isinstance(value, Mapping):
        if all(type(key) is str and not _SURROGATES.search(key) for key in value) and _TAG not in value:
            return {key: to_jsonable(item) for key, item in value.items()}
        return {_TAG: "dict", "v": [[to_jsonable(k), to_jsonable(v)] for k, v in value.items()]}
    numpy_kind = _numpy_kind(value)
    if numpy_kind == "scalar":
        return to_jsonable(value.item())
    if numpy_kind == "array":
        return {_TAG: "ndarray", "dtype": value.dtype.str, "v": to_jsonable(value.tolist())}
    import pickle

    try:
        data = pickle.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValidationError(
            f"value {value!r} of type {type(value).__name__} cannot be written to JSON or pickled ({exc}); "
            "record plain data (numbers, strings, lists, dicts, dataclasses) to export it"
        ) from None
    return {_TAG: "pickle", "v": base64.b64encode(data).decode()}


def from_jsonable(data: Any, allow_pickle: bool = False) -> Any:
    """Rebuild a value written by :func:`to_jsonable`.

    Parameters
    ----------
    data : Any
        Parsed JSON data.
    allow_pickle : bool, default False
        Arbitrary objects are stored as pickles; loading them runs code from
        the file, so it must be allowed explicitly for trusted input only.
    """
    if isinstance(data, list):
        return [from_jsonable(item, allow_pickle) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(_TAG)
    if kind is None:
        return {key: from_jsonable(item, allow_pickle) for key, item in data.items()}
    payload = data.get("v")
    if kind == "float":
        return float(payload)
    if kind == "str":
        return base64.b64decode(payload).decode("utf-8", "surrogatepass")
    if kind == "decimal":
        return Decimal(payload)
    if kind == "bytes":
        return base64.b64decode(payload)
    if kind == "NA":
        import pandas

        return pandas.NA
    if kind == "NaT":
        import pandas

        return pandas.NaT
    if kind == "datetime":
        if "ns" in data:
            import pandas

            return pandas.Timestamp(payload).replace(nanosecond=int(data["ns"]))
        return datetime.fromisoformat(payload)
    if kind == "date":
        return date.fromisoformat(payload)
    if kind == "time":
        return time.fromisoformat(payload)
    if kind == "timedelta":
        return timedelta(microseconds=payload)
    if kind == "complex":
        return complex(from_jsonable(payload[0]), from_jsonable(payload[1]))
    if kind == "tuple":
        return tuple(from_jsonable(item, allow_pickle) for item in payload)
    if kind == "set":
        return {from_jsonable(item, allow_pickle) for item in payload}
    if kind == "frozenset":
        return frozenset(from_jsonable(item, allow_pickle) for item in payload)
    if kind == "dict":
        return {from_jsonable(k, allow_pickle): from_jsonable(v, allow_pickle) for k, v in payload}
    if kind == "ndarray":
        import numpy

        return numpy.array(from_jsonable(payload, allow_pickle), dtype=numpy.dtype(data["dtype"]))
    if kind == "pickle":
        if not allow_pickle:
            raise ValidationError(
                "the JSON contains a pickled object; loading it runs code from the file, "
                "so pass allow_pickle=True if you trust its source"
            )
        import pickle

        return pickle.loads(base64.b64decode(payload))
    raise ValidationError(f"unknown encoded value kind {kind!r} in JSON input")
