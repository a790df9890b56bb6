"""Columnar, hash-chained history of one statebit.

Each field of the transitions lives in its own column buffer. Numbers are in
``array`` buffers, checksums in one packed ``bytearray``, reasons and tags as
interned codes, and metadata and causes in sparse dicts. An append therefore
touches a handful of buffers and never copies the history.
``StateTransition`` objects are views built on demand.

A fork's history shares its parent's history up to the fork point instead of
copying it: ``base`` is the parent history and ``base_len`` the number of its
transitions that belong to the fork too.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from array import array
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, overload

from statebits.core.canonical import IMMUTABLE_TYPES, encode, snapshot
from statebits.core.errors import IntegrityError, ValidationError
from statebits.core.transition import CauseRef, StateTransition

__all__ = ["History", "IntegrityReport", "genesis_checksum", "Interner", "extend_history"]

GENESIS_PREFIX = b"statebits-genesis/1\x00"
_RECORD = struct.Struct("<qqqd")
_pack_record = _RECORD.pack
_sha256 = hashlib.sha256
_NONE = b"N"


def genesis_checksum(identity: str, initial_value: Any) -> bytes:
    """Return the checksum the chain of a statebit starts from."""
    return _sha256(GENESIS_PREFIX + encode(identity) + encode(initial_value)).digest()


class Interner:
    """An append-only table of distinct reasons or tag tuples and their encodings.

    Forks share their parent's tables; codes are never reused or removed.
    """

    __slots__ = ("items", "codes", "encoded", "_lock")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.codes: dict[Any, int] = {}
        self.encoded: list[bytes] = []
        self._lock = threading.Lock()

    def add(self, item: Any) -> int:
        """Return the code of ``item``, adding it first when new."""
        with self._lock:
            code = self.codes.get(item)
            if code is None:
                code = len(self.items)
                self.encoded.append(encode(item))
                self.items.append(item)
                self.codes[item] = code
            return code

    def __getstate__(self) -> dict[str, Any]:
        return {"items": self.items}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        for item in state["items"]:
            self.add(item)


class IntegrityReport:
    """The result of verifying a hash chain.

    Attributes
    ----------
    ok : bool
        True when every checksum matches.
    checked : int
        Number of transitions checked.
    first_bad_step : int or None
        Step of the first transition whose checksum does not match.
    expected, found : str or None
        Recomputed and stored checksum (hex) at that step.
    """

    __slots__ = ("ok", "checked", "first_bad_step", "expected", "found", "identity")

    def __init__(self, identity: str, checked: int, first_bad_step: int | None = None, expected: str | None = None, found: str | None = None) -> None:
        self.identity = identity
        self.ok = first_bad_step is None
        self.checked = checked
        self.first_bad_step = first_bad_step
        self.expected = expected
        self.found = found

    def __bool__(self) -> bool:
        return self.ok

    @property
    def message(self) -> str:
        """One line describing the result."""
        if self.ok:
            return f"{self.identity}: {self.checked} transitions verified"
        return (
            f"{self.identity}: checksum mismatch at step {self.first_bad_step}: "
            f"stored {self.found}, recomputed {self.expected}; this step or an earlier "
            "field was changed after recording"
        )

    def raise_if_broken(self) -> None:
        """Raise :class:`IntegrityError` when the chain did not verify."""
        if not self.ok:
            raise IntegrityError(self.message, step=self.first_bad_step)

    def __repr__(self) -> str:
        return f"IntegrityReport(ok={self.ok}, checked={self.checked}, first_bad_step={self.first_bad_step})"


class History(Sequence[StateTransition]):
    """The recorded transitions of one statebit, as a read-only sequence.

    Supports ``len``, indexing with negative indexes, slices (returning lists)
    and iteration, all built on demand from column buffers.
    """

    def __init__(
        self,
        identity: str,
        initial_value: Any,
        branch: str = "main",
        base: "History | None" = None,
        base_len: int = 0,
    ) -> None:
        self.identity = identity
        self.initial_value = initial_value
        self.branch = branch
        self.base = base
        self.base_len = base_len
        if base is not None:
            self.reasons = base.reasons
            self.tagsets = base.tagsets
            self.genesis = base.genesis
            self._last_checksum = base.checksum_of(base_len - 1) if base_len else base.genesis
            self._last_ts = base.timestamp_ns_of(base_len - 1) if base_len else -(2**63)
            self._last_rec = base.recorded_ns_of(base_len - 1) if base_len else -(2**63)
            self._last_value = base.value_of(base_len - 1)
        else:
            self.reasons = Interner()
            self.tagsets = Interner()
            self.tagsets.add(())
            self.genesis = genesis_checksum(identity, initial_value)
            self._last_checksum = self.genesis
            self._last_ts = -(2**63)
            self._last_rec = -(2**63)
            self._last_value = initial_value
        self.values: array | list = array("d")
        self._value_kind = "empty"  # "empty", "float", "int" or "object"
        self.timestamps = array("q")
        self.recorded = array("q")
        self.confidences = array("d")
        self.reason_codes = array("I")
        self.tag_codes = array("I")
        self.checksums = bytearray()
        self.metadata: dict[int, Mapping[str, Any]] = {}
        self.causes: dict[int, tuple[CauseRef, ...]] = {}
        self.version = 0
        self._cache: dict[str, Any] = {}
        self._tails: dict[int, bytes] = {}

    # -- size and addressing --------------------------------------------------

    def __len__(self) -> int:
        return self.base_len + len(self.timestamps)

    @property
    def own_len(self) -> int:
        """Number of transitions recorded by this history itself (not shared)."""
        return len(self.timestamps)

    def _locate(self, index: int) -> tuple["History", int]:
        history = self
        while index < history.base_len:
            assert history.base is not None
            history = history.base
        return history, index - history.base_len

    @overload
    def __getitem__(self, index: int) -> StateTransition: ...

    @overload
    def __getitem__(self, index: slice) -> list[StateTransition]: ...

    def __getitem__(self, index: int | slice) -> StateTransition | list[StateTransition]:
        size = len(self)
        if isinstance(index, slice):
            return [StateTransition(self, i) for i in range(*index.indices(size))]
        try:
            position = index.__index__()
        except AttributeError:
            raise TypeError(f"history indices must be integers or slices, not {type(index).__name__}") from None
        if position < 0:
            position += size
        if not 0 <= position < size:
            raise IndexError(f"history index {index} out of range for {size} transitions")
        return StateTransition(self, position)

    def __iter__(self) -> Iterator[StateTransition]:
        for position in range(len(self)):
            yield StateTransition(self, position)

    def __reversed__(self) -> Iterator[StateTransition]:
        for position in range(len(self) - 1, -1, -1):
            yield StateTransition(self, position)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return len(self) == len(other) and self.head_checksum() == other.head_checksum()
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History(identity={self.identity!r}, branch={self.branch!r}, transitions={len(self)})"

    # -- per-field access by global index ------------------------------------

    def value_of(self, index: int) -> Any:
        """Return the value after transition ``index`` (-1 gives the initial value).

        Mutable values are returned as copies, so changing a value read back
        never changes what was recorded.
        """
        if index < 0:
            value = self.initial_value
        else:
            history, local = self._locate(index)
            value = history.values[local]
        return value if type(value) in IMMUTABLE_TYPES else snapshot(value)

    def reason_of(self, index: int) -> str:
        history, local = self._locate(index)
        return history.reasons.items[history.reason_codes[local]]

    def confidence_of(self, index: int) -> float:
        history, local = self._locate(index)
        return history.confidences[local]

    def timestamp_ns_of(self, index: int) -> int:
        history, local = self._locate(index)
        return history.timestamps[local]

    def recorded_ns_of(self, index: int) -> int:
        history, local = self._locate(index)
        return history.recorded[local]

    def tags_of(self, index: int) -> tuple[str, ...]:
        history, local = self._locate(index)
        return history.tagsets.items[history.tag_codes[local]]

    def metadata_of(self, index: int) -> Mapping[str, Any] | None:
        history, local = self._locate(index)
        found = history.metadata.get(local)
        if found is None or all(type(item) in IMMUTABLE_TYPES for item in found.values()):
            return found
        return MappingProxyType({key: snapshot(item) for key, item in found.items()})

    def causes_of(self, index: int) -> tuple[CauseRef, ...]:
        history, local = self._locate(index)
        return history.causes.get(local, ())

    def checksum_of(self, index: int) -> bytes:
        """Return the raw checksum after transition ``index`` (-1 gives the genesis)."""
        if index < 0:
            return self.genesis
        history, local = self._locate(index)
        return bytes(history.checksums[32 * local : 32 * local + 32])

    def branch_of(self, index: int) -> str:
        history, _ = self._locate(index)
        return history.branch

    def head_checksum(self) -> bytes:
        """Return the checksum of the newest transition, or the genesis."""
        return self._last_checksum

    @property
    def last_value(self) -> Any:
        value = self._last_value
        return value if type(value) in IMMUTABLE_TYPES else snapshot(value)

    @property
    def last_timestamp_ns(self) -> int:
        return self._last_ts

    @property
    def last_recorded_ns(self) -> int:
        return self._last_rec

    # -- appending -----------------------------------------------------------

    def append(
        self,
        value: Any,
        value_bytes: bytes,
        reason_code: int,
        tag_code: int,
        confidence: float,
        timestamp: int,
        recorded: int,
        metadata: Mapping[str, Any] | None = None,
        causes: tuple[CauseRef, ...] | None = None,
    ) -> int:
        """Append one validated transition, chain its checksum and return its index.

        The caller validates every argument and holds the statebit's lock.
        """
        local = len(self.timestamps)
        tail = self._tails.get((reason_code << 32) | tag_code) if metadata is None and causes is None else None
        if tail is None:
            tail = self.record_tail(reason_code, tag_code, metadata, causes)
        checksum = _sha256(
            self._last_checksum + _pack_record(self.base_len + local + 1, timestamp, recorded, confidence) + value_bytes + tail
        ).digest()
        if type(value) is float and self._value_kind == "float":
            self.values.append(value)
        else:
            self._store_value(value)
        self.timestamps.append(timestamp)
        self.recorded.append(recorded)
        self.confidences.append(confidence)
        self.reason_codes.append(reason_code)
        self.tag_codes.append(tag_code)
        self.checksums += checksum
        if metadata is not None:
            self.metadata[local] = metadata
        if causes:
            self.causes[local] = causes
        self._last_checksum = checksum
        self._last_ts = timestamp
        self._last_rec = recorded
        self._last_value = value
        self.version += 1
        if self._cache:
            self._cache.clear()
        return self.base_len + local

    def record_tail(
        self,
        reason_code: int,
        tag_code: int,
        metadata: Mapping[str, Any] | None,
        causes: tuple[CauseRef, ...] | None,
    ) -> bytes:
        """Return the encoded reason, tags, metadata and causes of one record.

        Records without metadata or causes share a cached tail per
        (reason, tags) pair, which keeps hashing cheap when reasons repeat.
        """
        if metadata is None and not causes:
            key = (reason_code << 32) | tag_code
            tail = self._tails.get(key)
            if tail is None:
                tail = self.reasons.encoded[reason_code] + self.tagsets.encoded[tag_code] + _NONE + _NONE
                self._tails[key] = tail
            return tail
        return (
            self.reasons.encoded[reason_code]
            + self.tagsets.encoded[tag_code]
            + (_NONE if metadata is None else encode(dict(metadata)))
            + (_NONE if not causes else _encode_causes(causes))
        )

    def _store_value(self, value: Any) -> None:
        kind = self._value_kind
        value_type = type(value)
        if kind == "float" and value_type is float:
            self.values.append(value)
            return
        if kind == "int" and value_type is int and -(2**63) <= value < 2**63:
            self.values.append(value)
            return
        if kind == "object":
            self.values.append(value)
            return
        if kind == "empty":
            if value_type is float:
                self._value_kind = "float"
                self.values = array("d", [value])
                return
            if value_type is int and -(2**63) <= value < 2**63:
                self._value_kind = "int"
                self.values = array("q", [value])
                return
        # Widen to a plain list once; later appends stay O(1).
        self._value_kind = "object"
        self.values = list(self.values)
        self.values.append(value)

    def truncate(self, own_len: int) -> None:
        """Drop own transitions past ``own_len``; used only to undo a failed batch."""
        if own_len >= len(self.timestamps):
            return
        del self.timestamps[own_len:]
        del self.recorded[own_len:]
        del self.confidences[own_len:]
        del self.reason_codes[own_len:]
        del self.tag_codes[own_len:]
        del self.values[own_len:]
        if not self.values:
            self._value_kind = "empty"
            self.values = array("d")
        del self.checksums[32 * own_len :]
        for table in (self.metadata, self.causes):
            for key in [key for key in table if key >= own_len]:
                del table[key]
        last = self.base_len + own_len - 1
        self._last_checksum = self.checksum_of(last)
        if last >= 0:
            self._last_ts = self.timestamp_ns_of(last)
            self._last_rec = self.recorded_ns_of(last)
        else:
            self._last_ts = self._last_rec = -(2**63)
        self._last_value = self.value_of(last)
        self.version += 1
        self._cache.clear()

    # -- verification ----------------------------------------------------------

    def segments(self) -> list[tuple["History", int]]:
        """Return ``(history, count)`` pairs from the root, covering every transition."""
        chain: list[tuple[History, int]] = [(self, len(self.timestamps))]
        history = self
        limit = self.base_len
        while history.base is not None:
            parent = history.base
            chain.append((parent, limit - parent.base_len))
            limit = parent.base_len
            history = parent
        chain.reverse()
        return chain

    def verify(self) -> IntegrityReport:
        """Recompute the whole chain from the genesis and report the first mismatch."""
        if self.genesis != genesis_checksum(self._root_identity(), self._root().initial_value):
            return IntegrityReport(self.identity, 0, 0, genesis_checksum(self._root_identity(), self._root().initial_value).hex(), self.genesis.hex())
        previous = self.genesis
        checked = 0
        for history, count in self.segments():
            previous, bad = history._verify_segment(previous, count)
            if bad is not None:
                local, expected = bad
                stored = bytes(history.checksums[32 * local : 32 * local + 32]).hex()
                return IntegrityReport(self.identity, checked + local, history.base_len + local + 1, expected.hex(), stored)
            checked += count
        if previous != self._last_checksum:
            return IntegrityReport(self.identity, checked, len(self), previous.hex(), self._last_checksum.hex())
        return IntegrityReport(self.identity, checked)

    def _root(self) -> "History":
        history = self
        while history.base is not None:
            history = history.base
        return history

    def _root_identity(self) -> str:
        return self._root().identity

    def _verify_segment(self, previous: bytes, count: int) -> tuple[bytes, tuple[int, bytes] | None]:
        previous, _, bad = self._chain(0, count, previous, bytes(self.checksums[: 32 * count]))
        return previous, bad

    def _chain(
        self, start: int, count: int, previous: bytes, expected: bytes | None
    ) -> tuple[bytes, bytearray, tuple[int, bytes] | None]:
        """Hash own records ``start`` to ``start + count`` onto ``previous``.

        With ``expected`` (32 bytes per record) the first mismatch stops the
        loop and is returned as ``(local index, recomputed digest)``; without
        it the computed digests are collected and returned.
        """
        import numpy as np

        digests = bytearray()
        if count == 0:
            return previous, digests, None
        records = _split(self._fixed_records(start, count), count)
        tails = self._row_tails(start, count)
        sha = _sha256
        if expected is None:
            for record, tail in zip(records, tails):
                previous = sha(previous + record + tail).digest()
                digests += previous
            return previous, digests, None
        wanted = np.frombuffer(expected, dtype="V32").tolist()
        for position, (record, tail, want) in enumerate(zip(records, tails, wanted)):
            digest = sha(previous + record + tail).digest()
            if digest != want:
                return previous, digests, (start + position, digest)
            previous = digest
        return previous, digests, None

    def _row_tails(self, start: int, count: int) -> list[bytes]:
        """Return the record tail of each own record from ``start``, sharing equal tails."""
        import numpy as np

        reason_codes = np.frombuffer(self.reason_codes, dtype=np.uint32)[start : start + count].astype(np.uint64)
        tag_codes = np.frombuffer(self.tag_codes, dtype=np.uint32)[start : start + count].astype(np.uint64)
        keys = (reason_codes << np.uint64(32)) | tag_codes
        unique, inverse = np.unique(keys, return_inverse=True)
        shared = [self.record_tail(int(key) >> 32, int(key) & 0xFFFFFFFF, None, None) for key in unique.tolist()]
        tails = [shared[index] for index in inverse.tolist()]
        for local in set(self.metadata) | set(self.causes):
            if start <= local < start + count:
                tails[local - start] = self.record_tail(
                    self.reason_codes[local], self.tag_codes[local], self.metadata.get(local), self.causes.get(local)
                )
        return tails

    def _fixed_records(self, start: int, count: int) -> bytes:
        """Return the fixed-size part (step, times, confidence, value) of own records as one blob.

        Float histories are packed with numpy in one pass. When encoded values
        differ in length, a per-record list replaces the blob.
        """
        import numpy as np

        if count == 0:
            return b""
        stop = start + count
        steps = np.arange(self.base_len + start + 1, self.base_len + stop + 1, dtype="<i8")
        if self._value_kind == "float":
            layout = np.dtype([("step", "<i8"), ("ts", "<i8"), ("rec", "<i8"), ("conf", "<f8"), ("tag", "S1"), ("value", "<f8")])
            blob = np.empty(count, dtype=layout)
            values = np.frombuffer(self.values, dtype="<f8")[start:stop]
            blob["value"] = np.where(np.isnan(values), np.float64("nan"), values)
            blob["tag"] = b"f"
        else:
            encoded = [encode(value) for value in self.values[start:stop]]
            width = len(encoded[0])
            if any(len(item) != width for item in encoded):
                return _VariableRecords(self, start, encoded)  # type: ignore[return-value]
            layout = np.dtype([("step", "<i8"), ("ts", "<i8"), ("rec", "<i8"), ("conf", "<f8"), ("value", f"V{width}")])
            blob = np.empty(count, dtype=layout)
            blob["value"] = np.frombuffer(b"".join(encoded), dtype=f"V{width}")
        blob["step"] = steps
        blob["ts"] = np.frombuffer(self.timestamps, dtype="<i8")[start:stop]
        blob["rec"] = np.frombuffer(self.recorded, dtype="<i8")[start:stop]
        blob["conf"] = np.frombuffer(self.confidences, dtype="<f8")[start:stop]
        return blob.tobytes()

    # -- columns for queries and frames ---------------------------------------

    def column(self, name: str) -> Any:
        """Return a numpy array of one numeric column over all transitions.

        ``name`` is one of "timestamp", "recorded_at", "confidence",
        "reason_code", "tag_code", "step" or "value" (numeric histories only).
        The array is a copy, cached until the next append.
        """
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        import numpy as np

        attribute = {
            "timestamp": "timestamps",
            "recorded_at": "recorded",
            "confidence": "confidences",
            "reason_code": "reason_codes",
            "tag_code": "tag_codes",
            "value": "values",
        }
        if name == "step":
            result = np.arange(1, len(self) + 1, dtype=np.int64)
        elif name in attribute:
            parts = []
            for history, count in self.segments():
                buffer = getattr(history, attribute[name])
                if isinstance(buffer, array):
                    part = np.frombuffer(buffer, dtype=buffer.typecode)[:count] if count else np.empty(0, dtype=buffer.typecode)
                else:
                    part = np.array(buffer[:count], dtype=object)
                parts.append(part)
            result = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        else:
            raise ValidationError(f"unknown history column {name!r}")
        result.flags.writeable = False
        self._cache[name] = result
        return result

    def values_list(self) -> list[Any]:
        """Return all values as a Python list."""
        out: list[Any] = []
        for history, count in self.segments():
            out.extend(history.values[:count])
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = {}
        state["_tails"] = {}
        # Read-only mapping proxies cannot be pickled; store plain dicts.
        state["metadata"] = {key: dict(value) for key, value in self.metadata.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.metadata = {key: MappingProxyType(value) for key, value in state["metadata"].items()}


def _split(blob: Any, count: int) -> list[bytes]:
    """Split a blob of ``count`` equal-sized records into a list of bytes."""
    if isinstance(blob, _VariableRecords):
        return blob.records
    import numpy as np

    return np.frombuffer(blob, dtype=f"V{len(blob) // count}").tolist()


class _VariableRecords:
    """Fixed parts of records whose encoded values differ in length, one bytes object each."""

    def __init__(self, history: History, start: int, encoded: list[bytes]) -> None:
        pack = _RECORD.pack
        self.records = [
            pack(history.base_len + local + 1, history.timestamps[local], history.recorded[local], history.confidences[local])
            + encoded[local - start]
            for local in range(start, start + len(encoded))
        ]



def _encode_causes(causes: tuple[CauseRef, ...]) -> bytes:
    return b"(" + b"".join(encode((ref.identity, ref.step, ref.checksum)) for ref in causes) + b")"


def extend_history(
    history: History,
    values: Sequence[Any],
    reasons: Sequence[str] | str,
    confidences: Sequence[float],
    timestamps: Sequence[int],
    recorded: Sequence[int],
    tags: Sequence[tuple[str, ...]] | None = None,
    metadata: Mapping[int, Mapping[str, Any]] | None = None,
    causes: Mapping[int, tuple[CauseRef, ...]] | None = None,
    expected: bytes | None = None,
) -> None:
    """Append many already-validated transitions in one pass.

    Used by loaders and ingest: checksums are computed in one tight loop. When
    ``expected`` contains the stored checksums (32 bytes each), every computed
    checksum must match; on the first mismatch :class:`IntegrityError` names
    the step and the history is left as it was.

    The caller guarantees: values are snapshots, reasons non-empty strings,
    confidences in [0, 1], timestamps and recorded times non-decreasing and
    not earlier than the history's last ones, tags tuples of strings.
    ``metadata`` and ``causes`` are keyed by position within this batch.
    ``reasons`` may be one string shared by every transition.
    """
    count = len(timestamps)
    if count == 0:
        return
    reason_table = history.reasons
    if isinstance(reasons, str):
        reason_codes = array("I", [reason_table.add(reasons)]) * count
    else:
        reason_codes = array("I")
        code_get = reason_table.codes.get
        for reason in reasons:
            code = code_get(reason)
            if code is None:
                code = reason_table.add(reason)
            reason_codes.append(code)
    if tags is None:
        tag_codes = array("I", bytes(4 * count))
    else:
        tag_table = history.tagsets
        tag_codes = array("I", [tag_table.add(tuple(item)) if len(item) else 0 for item in tags])

    # Append every column, hash the new records, then keep or undo them.
    local0 = len(history.timestamps)
    previous = history.head_checksum()
    if history._value_kind in ("empty", "float") and isinstance(values, array) and values.typecode == "d":
        if history._value_kind == "empty":
            history._value_kind = "float"
            history.values = array("d")
        history.values.extend(values)
    else:
        for value in values:
            history._store_value(value)
    history.timestamps.extend(array("q", timestamps))
    history.recorded.extend(array("q", recorded))
    history.confidences.extend(array("d", confidences))
    history.reason_codes.extend(reason_codes)
    history.tag_codes.extend(tag_codes)
    for position, meta in (metadata or {}).items():
        history.metadata[local0 + position] = meta
    for position, cause in (causes or {}).items():
        history.causes[local0 + position] = cause
    history._cache.clear()
    previous, digests, bad = history._chain(local0, count, previous, expected)
    if bad is not None:
        local, digest = bad
        step = history.base_len + local + 1
        stored = bytes(expected[32 * (local - local0) : 32 * (local - local0) + 32]).hex() if expected else ""
        history.checksums += bytes(32 * count)  # truncate() expects a checksum per record
        history.truncate(local0)
        raise IntegrityError(
            f"{history.identity}: checksum mismatch at step {step}: stored {stored}, recomputed {digest.hex()}; "
            "the record was changed after it was written",
            step=step,
        )
    history.checksums += expected if expected is not None else digests
    history._last_checksum = previous
    history._last_ts = int(timestamps[count - 1])
    history._last_rec = int(recorded[count - 1])
    history._last_value = history.values[local0 + count - 1]
    history.version += 1
