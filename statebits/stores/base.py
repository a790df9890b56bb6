"""The store protocol shared by MemoryStore, SQLiteStore and later backends.

A store keeps, for each (identity, branch), a genesis record and an
append-only list of transition records with their checksums. :class:`Store`
implements the public operations (open, save, load, verify, ...) once, on top
of a few primitives that a backend provides: find, create, append and read
records inside a transaction.

Every append checks, inside the backend's write transaction, that the stored
head is the head that the appending statebit extends. Otherwise it raises
:class:`StoreConflictError`, and the statebit undoes the append.
"""

from __future__ import annotations

import abc
import contextlib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from statebits.collection import StatebitsCollection
from statebits.core.canonical import snapshot
from statebits.core.errors import (
    ConcurrencyError,
    IntegrityError,
    KeyNotFoundError,
    StoreConflictError,
    StoreError,
    ValidationError,
    invalid_parameter,
)
from statebits.core.history import History, IntegrityReport, genesis_checksum
from statebits.core.serialize import restore_statebit
from statebits.core.statebit import Statebit
from statebits.core.transition import CauseRef

__all__ = [
    "Store",
    "StoreConflictError",
    "KeyNotFoundError",
    "StoredStatebit",
    "HistoryColumns",
    "history_columns",
    "find_invalid_record",
    "statebit_key",
]

MAIN = "main"


def statebit_key(identity: str, branch: str) -> str:
    """Return the key of a statebit: the identity, or ``identity@branch`` for a fork."""
    return identity if branch == MAIN else f"{identity}@{branch}"


@dataclass(eq=False)
class StoredStatebit:
    """The genesis record of a stored statebit.

    ``base`` and ``base_len`` describe a fork stored with a shared prefix:
    steps 1 to ``base_len`` are the records of ``base``, and the fork's own
    records start at step ``base_len + 1``. ``handle`` is the backend's id.
    """

    identity: str
    branch: str
    initial_value: Any
    genesis: bytes
    created_at_ns: int
    lineage: str
    fork_point: int | None = None
    fork_reason: str | None = None
    base: "StoredStatebit | None" = None
    base_len: int = 0
    handle: Any = None

    @property
    def key(self) -> str:
        return statebit_key(self.identity, self.branch)


@dataclass(eq=False)
class HistoryColumns:
    """Transition records as columns, positions counted from 0.

    ``reasons`` may be one string shared by every record. ``tags`` is None
    when no record has tags. ``metadata`` and ``causes``
    are sparse, keyed by position. ``checksums`` has 32 bytes per record.
    """

    values: Sequence[Any]
    reasons: Sequence[str] | str
    confidences: Sequence[float]
    timestamps: Sequence[int]
    recorded: Sequence[int]
    tags: Sequence[tuple[str, ...]] | None
    metadata: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    causes: dict[int, tuple[CauseRef, ...]] = field(default_factory=dict)
    checksums: bytes = b""

    def __len__(self) -> int:
        return len(self.timestamps)


def history_columns(history: History, start: int, stop: int) -> HistoryColumns:
    """Copy transitions ``start`` to ``stop`` (0-based, stop excluded) of ``history`` into columns.

    A fork's history is read through its shared segments.
    """
    parts = []
    offset = 0
    for segment, count in history.segments():
        low = max(start - offset, 0)
        high = min(stop - offset, count)
        if low < high:
            parts.append((segment, low, high))
        offset += count
    if len(parts) == 1:
        return _segment_columns(*parts[0])
    merged = HistoryColumns([], [], [], [], [], [])
    tagged = False
    for part in parts:
        columns = _segment_columns(*part)
        position = len(merged)
        merged.values.extend(columns.values)  # type: ignore[attr-defined]
        merged.reasons.extend(columns.reasons)  # type: ignore[attr-defined]
        merged.confidences.extend(columns.confidences)  # type: ignore[attr-defined]
        merged.timestamps.extend(columns.timestamps)  # type: ignore[attr-defined]
        merged.recorded.extend(columns.recorded)  # type: ignore[attr-defined]
        merged.tags.extend(columns.tags or [()] * len(columns))  # type: ignore[union-attr]
        tagged = tagged or columns.tags is not None
        merged.metadata.update({position + key: value for key, value in columns.metadata.items()})
        merged.causes.update({position + key: value for key, value in columns.causes.items()})
        merged.checksums += columns.checksums
    if not tagged:
        merged.tags = None
    return merged


def _segment_columns(segment: History, low: int, high: int) -> HistoryColumns:
    """Copy own records ``low`` to ``high`` of one history segment."""
    reason_items = segment.reasons.items
    tag_codes = segment.tag_codes[low:high]
    tags = None
    if any(tag_codes):
        tag_items = segment.tagsets.items
        tags = [tag_items[code] for code in tag_codes]
    return HistoryColumns(
        values=segment.values[low:high],
        reasons=[reason_items[code] for code in segment.reason_codes[low:high]],
        confidences=segment.confidences[low:high],
        timestamps=segment.timestamps[low:high],
        recorded=segment.recorded[low:high],
        tags=tags,
        metadata=_sparse_slice(segment.metadata, low, high),
        causes=_sparse_slice(segment.causes, low, high),
        checksums=bytes(segment.checksums[32 * low : 32 * high]),
    )


def _sparse_slice(table: Mapping[int, Any], low: int, high: int) -> dict[int, Any]:
    """Return the entries of ``table`` with keys from ``low`` to ``high``, re-keyed from 0."""
    if high - low < len(table):
        # A short range (a single append) looks its keys up instead of scanning the table.
        return {local - low: table[local] for local in range(low, high) if local in table}
    return {local - low: item for local, item in table.items() if low <= local < high}


def find_invalid_record(columns: HistoryColumns) -> tuple[int, str] | None:
    """Return ``(position, problem)`` of the first record that statebits would never write.

    The rules are those that :meth:`Statebit.transition` enforces: confidences
    are floats from 0.0 to 1.0, timestamps and recording times are int64
    nanoseconds that never go backwards, reasons are non-empty strings, and
    every checksum has 32 bytes. The checks are vectorised with numpy.
    """
    import numpy as np

    count = len(columns)
    problems: list[tuple[int, str]] = []

    confidences = columns.confidences
    if count and not _holds_only(confidences, float, "d"):
        position = next(i for i, item in enumerate(confidences) if type(item) is not float)
        problems.append((position, f"confidence {confidences[position]!r} is not a float"))
    elif count:
        values = np.asarray(confidences, dtype=np.float64)
        outside = np.flatnonzero(~((values >= 0.0) & (values <= 1.0)))
        if outside.size:
            position = int(outside[0])
            problems.append((position, f"confidence {confidences[position]!r} is outside 0.0 to 1.0"))

    for name, column in (("timestamp", columns.timestamps), ("recorded_at", columns.recorded)):
        if count and not _holds_only(column, int, "q"):
            position = next(i for i, item in enumerate(column) if type(item) is not int)
            problems.append((position, f"{name} {column[position]!r} is not an integer"))
            continue
        try:
            times = np.asarray(column, dtype=np.int64)
        except OverflowError:
            position = next(i for i, item in enumerate(column) if not -(2**63) <= item < 2**63)
            problems.append((position, f"{name} {column[position]!r} is outside the int64 range"))
            continue
        backwards = np.flatnonzero(np.diff(times) < 0)
        if backwards.size:
            position = int(backwards[0]) + 1
            problems.append((position, f"{name} goes backwards from {column[position - 1]} to {column[position]}"))

    reasons = columns.reasons
    for reason in {reasons} if isinstance(reasons, str) else set(reasons):
        if type(reason) is not str or not reason.strip():
            position = 0 if isinstance(reasons, str) else list(reasons).index(reason)
            problems.append((position, f"reason {reason!r} is not a non-empty string"))

    if len(columns.checksums) != 32 * count:
        problems.append((min(len(columns.checksums) // 32, max(count - 1, 0)), "the checksum column does not hold 32 bytes per record"))
    others = [columns.values, columns.recorded, columns.confidences] + ([] if isinstance(reasons, str) else [reasons])
    for other in others:
        if len(other) != count:
            problems.append((min(len(other), count), "the record has missing fields"))

    return min(problems, default=None)


def _check_name(parameter: str, value: Any, method: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise invalid_parameter(parameter, value, "a non-empty string", f"Store.{method}")


def _holds_only(column: Sequence[Any], kind: type, typecode: str) -> bool:
    """Return whether every item of ``column`` has exactly the type ``kind``."""
    if isinstance(column, array):
        return column.typecode == typecode
    return set(map(type, column)) == {kind}


class _StoreSink:
    """The sink that a store attaches to a statebit (see :meth:`Statebit.attach_sink`)."""

    __slots__ = ("store", "stored")

    def __init__(self, store: "Store", stored: StoredStatebit) -> None:
        self.store = store
        self.stored = stored

    def write(self, statebit: Statebit, start: int, stop: int) -> None:
        self.store._persist(self.stored, statebit, start, stop)

    def __repr__(self) -> str:
        return f"<sink of {self.stored.key!r} into {self.store!r}>"


class Store(abc.ABC):
    """A place where statebits persist: the protocol of every store.

    Statebits returned by :meth:`open`, :meth:`load` and
    :meth:`load_collection`, and those passed to :meth:`save`, are attached
    to the store: each later ``transition()`` or ``batch_transition()`` is
    written in one transaction before the call returns, and a failed write
    undoes the append in memory too.

    Histories are append-only. A writer whose statebit no longer extends the
    stored head (another writer appended first) gets
    :class:`StoreConflictError`, which is a :class:`ConcurrencyError`.

    Stores are context managers that close themselves on exit.
    """

    def __init__(self, *, allow_pickle: bool = False) -> None:
        if not isinstance(allow_pickle, bool):
            raise invalid_parameter("allow_pickle", allow_pickle, "True or False", type(self).__name__)
        self.allow_pickle = allow_pickle
        self._closed = False

    # -- public API -------------------------------------------------------------

    def open(self, identity: str, initial_value: Any = None) -> Statebit:
        """Return the stored statebit ``identity``, creating it when it is missing.

        An existing statebit is loaded and its chain verified. The result is
        attached to the store.

        Parameters
        ----------
        identity : str
            Identity of the statebit (its main branch).
        initial_value : Any, default None
            Initial value of a new statebit. For an existing one it must be
            None or equal to the stored initial value.

        Raises
        ------
        ValidationError
            When ``initial_value`` differs from the stored one.
        IntegrityError
            When the stored history does not verify.
        """
        self._check_open()
        _check_name("identity", identity, "open")
        created = None
        with self._transaction():
            stored = self._find(identity, MAIN)
            if stored is None:
                # Built only when missing, so that reopening does not read the clock.
                created = Statebit(identity, initial_value)
                stored = self._create(self._describe(created, None, 0))
        if created is not None:
            self._attach(created, stored)
            return created

        if initial_value is not None and genesis_checksum(identity, snapshot(initial_value)) != stored.genesis:
            raise ValidationError(
                f"statebit {identity!r} is already stored with initial value {stored.initial_value!r}, "
                f"not {initial_value!r}; open it without initial_value or use another identity"
            )
        return self.load(identity)

    def save(self, target: Statebit | StatebitsCollection, *, attach: bool = True) -> Statebit | StatebitsCollection:
        """Persist a statebit or every member of a collection in one transaction.

        Records the store already contains are skipped, so saving again is cheap.
        A fork whose parent is already stored keeps only its own records and
        shares the parent's up to the fork point; otherwise its whole history
        is stored. A collection's name and members are recorded for
        :meth:`load_collection`.

        Parameters
        ----------
        target : Statebit or StatebitsCollection
        attach : bool, default True
            Attach the saved statebits so later appends persist. A statebit
            has one store at a time, so attaching moves it from a previous
            store. Pass False to copy statebits into this store only.

        Returns
        -------
        Statebit or StatebitsCollection
            ``target``.

        Raises
        ------
        StoreConflictError
            When the store holds a longer or different history under the
            same key; nothing is saved.
        """
        self._check_open()
        if isinstance(target, StatebitsCollection):
            members = list(target)
        elif isinstance(target, Statebit):
            members = [target]
        else:
            raise invalid_parameter("target", target, "a Statebit or a StatebitsCollection", f"{type(self).__name__}.save")
        # A parent is saved before its forks, so that the forks can share its records.
        members.sort(key=lambda member: len(member.history.segments()))

        with contextlib.ExitStack() as locks:
            for member in sorted(members, key=id):  # one lock order, as merge() uses
                locks.enter_context(member._lock)
            with self._transaction():
                stored = [self._save_one(member) for member in members]
                if isinstance(target, StatebitsCollection):
                    self._add_members(target.name, stored)
            if attach:
                for member, record in zip(members, stored):
                    self._attach(member, record)
        return target

    def load(self, identity: str, branch: str = MAIN) -> Statebit:
        """Load a stored statebit, verify its chain and attach it.

        Parameters
        ----------
        identity : str
        branch : str, default "main"
            Branch name, to load a stored fork.

        Raises
        ------
        KeyNotFoundError
            When nothing is stored under that identity and branch.
        IntegrityError
            When a stored record was changed; ``step`` is the first bad step
            (0 for the genesis record).
        """
        self._check_open()
        _check_name("identity", identity, "load")
        _check_name("branch", branch, "load")
        with self._snapshot():
            stored = self._require(identity, branch)
            columns = self._read(stored)
        statebit = self._restore(stored, columns)
        self._attach(statebit, stored)
        return statebit

    def load_collection(self, name: str | None = None) -> StatebitsCollection:
        """Load a saved collection, or every stored statebit, verified and attached.

        Parameters
        ----------
        name : str, optional
            Name of a collection passed to :meth:`save`. None loads every
            statebit in the store into a collection named "collection".

        Raises
        ------
        KeyNotFoundError
            When no collection of that name was saved.
        IntegrityError
            When a stored record was changed.
        """
        self._check_open()
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise invalid_parameter("name", name, "a collection name or None", f"{type(self).__name__}.load_collection")
        with self._snapshot():
            if name is None:
                members = self._list()
            else:
                found = self._members(name)
                if found is None:
                    known = self._collection_names()
                    raise KeyNotFoundError(f"no collection named {name!r} in {self!r}; saved collections are {known}")
                members = found
            columns = [self._read(stored) for stored in members]
        collection = StatebitsCollection(name if name is not None else "collection")
        for stored, record_columns in zip(members, columns):
            statebit = self._restore(stored, record_columns)
            self._attach(statebit, stored)
            collection.add(statebit)
        return collection

    def identities(self) -> list[str]:
        """Return the distinct stored identities, sorted."""
        self._check_open()
        with self._snapshot():
            return sorted({stored.identity for stored in self._list()})

    def keys(self) -> list[str]:
        """Return the keys of every stored statebit (``identity@branch`` for forks), sorted."""
        self._check_open()
        with self._snapshot():
            return sorted(stored.key for stored in self._list())

    def collections(self) -> list[str]:
        """Return the names of the saved collections, sorted."""
        self._check_open()
        with self._snapshot():
            return sorted(self._collection_names())

    def delete(self, identity: str) -> NoReturn:
        """Raise StoreError: stored histories are append-only and never deleted.

        To drop statebits, save the ones to keep into a new store with
        ``new_store.save(old_store.load_collection(), attach=False)``.
        """
        raise StoreError(
            f"cannot delete {identity!r}: {type(self).__name__} is append-only. To drop statebits, "
            "save the ones to keep into a new store"
        )

    def verify(self) -> dict[str, IntegrityReport]:
        """Recompute every stored chain and report the first bad step of each.

        Returns
        -------
        dict
            Key (``identity`` or ``identity@branch``) to
            :class:`IntegrityReport`. ``first_bad_step`` is 0 when the genesis
            record was changed.
        """
        self._check_open()
        with self._snapshot():
            members = self._list()
        reports: dict[str, IntegrityReport] = {}
        for stored in members:
            reports[stored.key] = self._report(stored)
        return reports

    def close(self) -> None:
        """Close the store. Later appends to its statebits raise StoreError and are undone."""
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- shared steps -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed; create a new store object to use it again")

    def _require(self, identity: str, branch: str) -> StoredStatebit:
        stored = self._find(identity, branch)
        if stored is None:
            keys = sorted(item.key for item in self._list())
            listed = keys[:10] + (["..."] if len(keys) > 10 else [])
            raise KeyNotFoundError(
                f"no statebit {statebit_key(identity, branch)!r} in {self!r}; stored keys are {listed}"
            )
        return stored

    def _describe(self, statebit: Statebit, base: StoredStatebit | None, base_len: int) -> StoredStatebit:
        return StoredStatebit(
            identity=statebit.identity,
            branch=statebit.branch,
            initial_value=statebit.initial_value,
            genesis=statebit.history.genesis,
            created_at_ns=statebit._created_ns,
            lineage=statebit.lineage,
            fork_point=statebit.fork_point,
            fork_reason=statebit.fork_reason,
            base=base,
            base_len=base_len,
        )

    def _attach(self, statebit: Statebit, stored: StoredStatebit) -> None:
        statebit.attach_sink(_StoreSink(self, stored))

    def _save_one(self, statebit: Statebit) -> StoredStatebit:
        """Store the records of ``statebit`` that the store lacks. Runs inside the caller's transaction."""
        history = statebit.history
        stored = self._find(statebit.identity, statebit.branch)
        if stored is None:
            base, base_len = self._shared_base(history)
            stored = self._create(self._describe(statebit, base, base_len))
            start = base_len
        else:
            if stored.genesis != history.genesis:
                raise StoreConflictError(
                    f"cannot save {statebit.key!r}: the store contains a statebit with initial value "
                    f"{stored.initial_value!r} under that key, not {statebit.initial_value!r}; use another identity"
                )
            start, head = self._head(stored)
            if start > len(history) or (start and head != history.checksum_of(start - 1)):
                raise StoreConflictError(
                    f"cannot save {statebit.key!r}: the store contains {start} transitions that this history "
                    f"({len(history)} transitions) does not extend; load the stored one with "
                    f"load({statebit.identity!r}, branch={statebit.branch!r}) or save under another identity"
                )
        if start < len(history):
            self._append_rows(stored, start + 1, history_columns(history, start, len(history)))
        return stored

    def _shared_base(self, history: History) -> tuple[StoredStatebit | None, int]:
        """Return the stored parent that a fork can share records with, and how many."""
        base = history.base
        if base is None or history.base_len == 0:
            return None, 0
        stored = self._find(base.identity, base.branch)
        if stored is None or self._head(stored)[0] < history.base_len:
            return None, 0
        if self._checksum_at(stored, history.base_len) != history.checksum_of(history.base_len - 1):
            return None, 0
        return stored, history.base_len

    def _persist(self, stored: StoredStatebit, statebit: Statebit, start: int, stop: int) -> None:
        """Append transitions ``start`` to ``stop`` of ``statebit``; called by its sink under its lock."""
        if self._closed:
            raise StoreError(
                f"cannot persist step(s) {start + 1}-{stop} of {stored.key!r}: {self!r} is closed, "
                "so the append was undone; open the store again and reload the statebit"
            )
        history = statebit.history
        columns = history_columns(history, start, stop)
        expected_head = history.checksum_of(start - 1)
        with self._transaction():
            length, head = self._head(stored)
            if length != start or head != expected_head:
                raise self._conflict(stored, start, length)
            self._append_rows(stored, start + 1, columns)

    def _conflict(self, stored: StoredStatebit, start: int, length: int) -> StoreConflictError:
        if length == start:
            cause = f"the stored history differs from this one at step {start}"
        else:
            cause = f"the store contains {length} transitions but this statebit has {start}, so another writer appended first"
        branch = "" if stored.branch == MAIN else f", branch={stored.branch!r}"
        return StoreConflictError(
            f"cannot append step {start + 1} to {stored.key!r}: {cause}. The append was undone; "
            f"reload with load({stored.identity!r}{branch}) and retry"
        )

    def _restore(self, stored: StoredStatebit, columns: HistoryColumns) -> Statebit:
        """Build a statebit from stored columns, raising IntegrityError at the first bad step."""
        self._check_genesis(stored)
        problem = find_invalid_record(columns)
        if problem is not None:
            position, detail = problem
            raise IntegrityError(
                f"{stored.key}: stored record at step {position + 1} is invalid: {detail}; statebits never "
                "writes such a record, so it was changed after it was written",
                step=position + 1,
            )
        return self._build(stored, columns, columns.checksums)

    def _build(self, stored: StoredStatebit, columns: HistoryColumns, checksums: bytes | None) -> Statebit:
        """Build a statebit from columns that passed :func:`find_invalid_record`.

        With ``checksums`` the chain is verified while it is built, and the
        first mismatch raises IntegrityError.
        """
        values = columns.values
        if isinstance(values, list) and values and set(map(type, values)) == {float}:
            values = array("d", values)  # restore_statebit keeps a float array without copying each value
        return restore_statebit(
            Statebit,
            identity=stored.identity,
            initial_value=stored.initial_value,
            created_at_ns=stored.created_at_ns,
            values=values,  # type: ignore[arg-type]
            reasons=columns.reasons,  # type: ignore[arg-type]
            confidences=columns.confidences,  # type: ignore[arg-type]
            timestamps=columns.timestamps,  # type: ignore[arg-type]
            recorded=columns.recorded,  # type: ignore[arg-type]
            tags=columns.tags,  # type: ignore[arg-type]
            metadata=columns.metadata,
            causes=columns.causes,
            checksums=checksums,
            lineage=stored.lineage,
            branch=stored.branch,
            fork_point=stored.fork_point,
            fork_reason=stored.fork_reason,
        )

    def _check_genesis(self, stored: StoredStatebit) -> None:
        expected = genesis_checksum(stored.identity, stored.initial_value)
        if expected != stored.genesis:
            raise IntegrityError(
                f"{stored.key}: the genesis record (step 0) does not match its checksum: stored "
                f"{stored.genesis.hex()}, recomputed {expected.hex()}; the identity or initial value "
                "was changed after it was written",
                step=0,
            )

    def _report(self, stored: StoredStatebit) -> IntegrityReport:
        """Verify one stored statebit without raising."""
        key = stored.key
        try:
            with self._snapshot():
                columns = self._read(stored)
            self._check_genesis(stored)
        except IntegrityError as exc:
            step = exc.step or 0
            return IntegrityReport(key, max(step - 1, 0), step)
        problem = find_invalid_record(columns)
        if problem is not None:
            position = problem[0]
            found = columns.checksums[32 * position : 32 * position + 32].hex() or None
            return IntegrityReport(key, position, position + 1, None, found)

        # Recompute a fresh chain and compare it with the stored checksums.
        rebuilt = self._build(stored, columns, None).history
        computed = bytes(rebuilt.checksums)
        if computed == columns.checksums:
            return IntegrityReport(key, len(columns))
        position = _first_difference(computed, columns.checksums)
        return IntegrityReport(
            key,
            position,
            position + 1,
            rebuilt.checksum_of(position).hex(),
            columns.checksums[32 * position : 32 * position + 32].hex(),
        )

    # -- backend primitives ---------------------------------------------------------

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """Return a context in which primitive calls form one atomic, isolated write.

        Leaving it by an exception undoes every write made inside. Nested
        uses join the outer transaction.
        """

    @abc.abstractmethod
    def _snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Return a context in which reads see one consistent state of the store."""

    @abc.abstractmethod
    def _find(self, identity: str, branch: str) -> StoredStatebit | None:
        """Return the genesis record stored for (identity, branch), or None."""

    @abc.abstractmethod
    def _list(self) -> list[StoredStatebit]:
        """Return every stored genesis record, sorted by identity and branch."""

    @abc.abstractmethod
    def _create(self, stored: StoredStatebit) -> StoredStatebit:
        """Store a new genesis record and return it with its ``handle`` set."""

    @abc.abstractmethod
    def _head(self, stored: StoredStatebit) -> tuple[int, bytes]:
        """Return the stored number of transitions and the newest checksum (the genesis when empty)."""

    @abc.abstractmethod
    def _checksum_at(self, stored: StoredStatebit, step: int) -> bytes | None:
        """Return the stored checksum at ``step`` (0 gives the genesis), or None when absent."""

    @abc.abstractmethod
    def _append_rows(self, stored: StoredStatebit, first_step: int, columns: HistoryColumns) -> None:
        """Store ``columns`` as steps ``first_step`` onwards. Duplicate steps must raise StoreConflictError."""

    @abc.abstractmethod
    def _read(self, stored: StoredStatebit) -> HistoryColumns:
        """Return every stored record of ``stored`` from step 1, shared prefix included.

        A record that cannot be decoded raises IntegrityError naming its step.
        """

    @abc.abstractmethod
    def _add_members(self, name: str, members: list[StoredStatebit]) -> None:
        """Record that the collection ``name`` contains ``members``."""

    @abc.abstractmethod
    def _members(self, name: str) -> list[StoredStatebit] | None:
        """Return the members of the collection ``name``, or None when it was never saved."""

    @abc.abstractmethod
    def _collection_names(self) -> list[str]:
        """Return the names of the saved collections."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the backend's resources."""


def _first_difference(left: bytes, right: bytes) -> int:
    """Return the index of the first 32-byte block that differs between two checksum columns."""
    import numpy as np

    count = min(len(left), len(right)) // 32
    a = np.frombuffer(left[: 32 * count], dtype=np.uint8).reshape(count, 32)
    b = np.frombuffer(right[: 32 * count], dtype=np.uint8).reshape(count, 32)
    differing = np.flatnonzero((a != b).any(axis=1))
    return int(differing[0]) if differing.size else count
