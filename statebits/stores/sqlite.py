"""SQLiteStore: the embedded, durable store.

One SQLite file in WAL mode contains every statebit. Transitions are rows of an
append-only table keyed by (statebit, step), written in one transaction per
append or batch. Reasons and tag sets are kept once each in side tables.
Loading reads the rows column by column and verifies the hash chain.

The REFERENCES clauses document the schema, but foreign keys are not
enforced: the checks cost about a tenth of the insert time, the store writes
side-table rows before the rows that use them, and loading reports a
missing side-table row as an IntegrityError at its step.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import repeat
from typing import Any

from statebits.core.errors import IntegrityError, StoreError, ValidationError, invalid_parameter
from statebits.stores._codec import decode_causes, decode_json, decode_value, encode_causes, encode_json, encode_value, encode_values
from statebits.stores.base import HistoryColumns, Store, StoreConflictError, StoredStatebit

__all__ = ["SQLiteStore"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
_LAST_STEP = 2**63 - 1
# SQLite's default limit of parameters per statement is 999 before version 3.32.
_IN_CHUNK = 500
# Rows fetched per call while loading. Short-lived row tuples keep the cyclic
# garbage collector from rescanning millions of live tuples.
_FETCH_ROWS = 4096

_SCHEMA = (
    """
    CREATE TABLE statebits (
        id INTEGER PRIMARY KEY,
        identity TEXT NOT NULL,
        branch TEXT NOT NULL,
        initial_codec TEXT,
        initial_value,
        genesis BLOB NOT NULL CHECK (length(genesis) = 32),
        created_at_ns INTEGER NOT NULL,
        lineage TEXT NOT NULL,
        fork_point INTEGER,
        fork_reason TEXT,
        base_id INTEGER REFERENCES statebits (id),
        base_len INTEGER NOT NULL DEFAULT 0,
        UNIQUE (identity, branch)
    )
    """,
    "CREATE TABLE reasons (id INTEGER PRIMARY KEY, reason TEXT NOT NULL UNIQUE)",
    "CREATE TABLE tagsets (id INTEGER PRIMARY KEY, tags TEXT NOT NULL UNIQUE)",
    "INSERT INTO tagsets (id, tags) VALUES (0, '[]')",
    # `value` and `confidence` have no declared type, so SQLite keeps what is
    # bound. REAL affinity would store -0.0 as 0 and break the checksum.
    # value_codec is NULL when `value` is native (its storage class gives the
    # Python type), and otherwise names the codec of `value` (see _codec.py).
    """
    CREATE TABLE transitions (
        statebit_id INTEGER NOT NULL REFERENCES statebits (id),
        step INTEGER NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        recorded_at_ns INTEGER NOT NULL,
        confidence NOT NULL CHECK (typeof(confidence) = 'real'),
        value_codec TEXT,
        value,
        reason_id INTEGER NOT NULL REFERENCES reasons (id),
        tagset_id INTEGER NOT NULL DEFAULT 0 REFERENCES tagsets (id),
        metadata TEXT,
        caused_by TEXT,
        checksum BLOB NOT NULL CHECK (length(checksum) = 32),
        PRIMARY KEY (statebit_id, step)
    ) WITHOUT ROWID
    """,
    # Rows that need decoding are found through this partial index, so
    # loading plain numeric histories never scans for them.
    """
    CREATE INDEX transitions_encoded ON transitions (statebit_id, step)
    WHERE value_codec IS NOT NULL OR metadata IS NOT NULL OR caused_by IS NOT NULL
    """,
    "CREATE TABLE collections (name TEXT PRIMARY KEY)",
    """
    CREATE TABLE collection_members (
        collection TEXT NOT NULL REFERENCES collections (name),
        statebit_id INTEGER NOT NULL REFERENCES statebits (id),
        PRIMARY KEY (collection, statebit_id)
    ) WITHOUT ROWID
    """,
    *(
        f"""
        CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, 'statebits stores are append-only: {table} rows cannot be {action}d'); END
        """
        for table in ("statebits", "reasons", "tagsets", "transitions", "collections", "collection_members")
        for action in ("update", "delete")
    ),
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_STATEBIT_COLUMNS = (
    "id, identity, branch, initial_codec, initial_value, genesis, created_at_ns, lineage, "
    "fork_point, fork_reason, base_id, base_len"
)
_MEMBER_COLUMNS = ", ".join(f"s.{column}" for column in _STATEBIT_COLUMNS.split(", "))
_INSERT_STATEBIT = (
    "INSERT INTO statebits (identity, branch, initial_codec, initial_value, genesis, created_at_ns, lineage, "
    "fork_point, fork_reason, base_id, base_len) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TRANSITION_COLUMNS = ("statebit_id", "step", "timestamp_ns", "recorded_at_ns", "confidence", "value", "reason_id", "checksum")
_SELECT_ROWS = (
    "SELECT timestamp_ns, recorded_at_ns, confidence, value, reason_id, tagset_id, checksum "
    "FROM transitions WHERE statebit_id = ? AND step BETWEEN ? AND ? ORDER BY step"
)
_COUNT_ROWS = "SELECT count(*), max(step) FROM transitions WHERE statebit_id = ? AND step BETWEEN ? AND ?"
_SELECT_ENCODED = (
    "SELECT step, value_codec, value, metadata, caused_by FROM transitions INDEXED BY transitions_encoded "
    "WHERE statebit_id = ? AND step BETWEEN ? AND ? "
    "AND (value_codec IS NOT NULL OR metadata IS NOT NULL OR caused_by IS NOT NULL) ORDER BY step"
)


class SQLiteStore(Store):
    """The embedded, durable store: one SQLite file in WAL mode.

    Every append of an attached statebit is one transaction, and so is every
    batch. Two processes (or two store objects) may write to one file: a
    writer that appends from a stale head gets :class:`StoreConflictError`,
    a :class:`~statebits.ConcurrencyError`. Loading verifies the hash chain.

    Parameters
    ----------
    path : str or os.PathLike
        The database file, created when missing. ``":memory:"`` gives a
        private in-memory database.
    synchronous : {"FULL", "NORMAL", "EXTRA"}, default "FULL"
        SQLite's ``synchronous`` setting. With "FULL" a committed append
        survives a power loss or an OS crash. With "NORMAL" it survives a
        crash of the process, but the newest appends may be lost on power
        loss, and commits do not wait for the disk.
    timeout : float, default 5.0
        Maximum time in seconds to wait for another connection's write lock
        before an append fails with StoreError.
    allow_pickle : bool, default False
        Values with no JSON form (arbitrary objects) are stored as pickles.
        Loading one runs code from the file, so it must be allowed
        explicitly, for trusted files only.

    Examples
    --------
    >>> from statebits.stores import SQLiteStore
    >>> with SQLiteStore(":memory:") as store:
    ...     account = store.open("checking", initial_value=1000.0)
    ...     _ = account.transition(1500.0, "Deposit received")
    ...     store.load("checking").value
    1500.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        timeout: float = 5.0,
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(allow_pickle=allow_pickle)
        if synchronous not in _SYNCHRONOUS:
            raise invalid_parameter("synchronous", synchronous, f"one of {', '.join(_SYNCHRONOUS)}", "SQLiteStore")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise invalid_parameter("timeout", timeout, "a number of seconds >= 0", "SQLiteStore")
        self.path = os.fspath(path)
        self.synchronous = synchronous
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._depth = 0
        # Reason and tag-set ids known to be committed, and the keys added by
        # the open transaction, which a rollback removes again.
        self._reason_ids: dict[str, int] = {}
        self._tagset_ids: dict[tuple[str, ...], int] = {(): 0}
        self._uncommitted: list[tuple[dict[Any, int], Any]] = []
        try:
            self._connection = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        try:
            self._configure()
        except BaseException:
            self._connection.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _configure(self) -> None:
        connection = self._connection
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            connection.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        if mode != "wal" and self.path != ":memory:":
            logger.warning("SQLite store %s runs in journal mode %r because WAL is not available there", self.path, mode)
        with self._transaction():
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:
                    connection.execute(statement)
            elif version != SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open SQLite store {self.path!r}: its schema version is {version}, and this "
                    f"statebits reads version {SCHEMA_VERSION}; upgrade statebits to open it"
                )

    # -- transactions -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                yield
                return
            self._run("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
                self._connection.execute("COMMIT")
            except BaseException as exc:
                self._abort()
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc) from exc
                raise
            finally:
                self._depth = 0
                self._uncommitted.clear()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                yield
                return
            self._run("BEGIN")
            self._depth = 1
            try:
                yield
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            finally:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    self._connection.execute("COMMIT")

    def _run(self, statement: str) -> None:
        try:
            self._connection.execute(statement)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._connection.execute("ROLLBACK")
        for cache, key in self._uncommitted:
            cache.pop(key, None)

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in text and "transitions" in text:
            return StoreConflictError(f"another writer stored the same step first in {self.path!r} ({text}); reload and retry")
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            return StoreError(
                f"timed out after {self.timeout} s waiting for the write lock of {self.path!r} ({text}); "
                "another connection holds it, so retry or pass a larger timeout"
            )
        return StoreError(f"SQLite error in {self.path!r}: {text}")

    # -- genesis records ------------------------------------------------------------

    def _find(self, identity: str, branch: str) -> StoredStatebit | None:
        row = self._connection.execute(
            f"SELECT {_STATEBIT_COLUMNS} FROM statebits WHERE identity = ? AND branch = ?", (identity, branch)
        ).fetchone()
        return None if row is None else self._stored(row, {})

    def _list(self) -> list[StoredStatebit]:
        rows = self._connection.execute(f"SELECT {_STATEBIT_COLUMNS} FROM statebits ORDER BY identity, branch").fetchall()
        known: dict[int, StoredStatebit] = {}
        return [self._stored(row, known) for row in rows]

    def _stored(self, row: Sequence[Any], known: dict[int, StoredStatebit]) -> StoredStatebit:
        """Build a genesis record from a row of ``statebits``, resolving its base through ``known``."""
        handle, identity, branch, codec, initial, genesis, created, lineage, fork_point, fork_reason, base_id, base_len = row
        if handle in known:
            return known[handle]
        try:
            initial_value = decode_value(codec, initial, self.allow_pickle)
        except ValueError as exc:
            raise IntegrityError(f"{identity}: the initial value in {self.path!r} cannot be decoded ({exc})", step=0) from None
        base = None
        if base_id is not None:
            base = known.get(base_id)
            if base is None:
                base_row = self._connection.execute(f"SELECT {_STATEBIT_COLUMNS} FROM statebits WHERE id = ?", (base_id,)).fetchone()
                if base_row is None:
                    raise IntegrityError(f"{identity}@{branch}: its base statebit (id {base_id}) is missing from {self.path!r}", step=1)
                base = self._stored(base_row, known)
        stored = StoredStatebit(
            identity=identity,
            branch=branch,
            initial_value=initial_value,
            genesis=genesis,
            created_at_ns=created,
            lineage=lineage,
            fork_point=fork_point,
            fork_reason=fork_reason,
            base=base,
            base_len=base_len,
            handle=handle,
        )
        known[handle] = stored
        return stored

    def _create(self, stored: StoredStatebit) -> StoredStatebit:
        codec, initial = encode_value(stored.initial_value)
        base_id = stored.base.handle if stored.base is not None else None
        cursor = self._connection.execute(
            _INSERT_STATEBIT,
            (
                stored.identity,
                stored.branch,
                codec,
                initial,
                stored.genesis,
                stored.created_at_ns,
                stored.lineage,
                stored.fork_point,
                stored.fork_reason,
                base_id,
                stored.base_len,
            ),
        )
        return replace(stored, handle=cursor.lastrowid)

    # -- transitions ------------------------------------------------------------------

    def _head(self, stored: StoredStatebit) -> tuple[int, bytes]:
        row = self._connection.execute(
            "SELECT step, checksum FROM transitions WHERE statebit_id = ? ORDER BY step DESC LIMIT 1", (stored.handle,)
        ).fetchone()
        if row is not None:
            return row[0], row[1]
        if stored.base is not None and stored.base_len:
            return stored.base_len, self._checksum_at(stored.base, stored.base_len) or b""
        return 0, stored.genesis

    def _checksum_at(self, stored: StoredStatebit, step: int) -> bytes | None:
        if step == 0:
            return stored.genesis
        if step <= stored.base_len and stored.base is not None:
            return self._checksum_at(stored.base, step)
        row = self._connection.execute(
            "SELECT checksum FROM transitions WHERE statebit_id = ? AND step = ?", (stored.handle, step)
        ).fetchone()
        return None if row is None else row[0]

    def _append_rows(self, stored: StoredStatebit, first_step: int, columns: HistoryColumns) -> None:
        count = len(columns)
        codecs, values = encode_values(columns.values)
        checksums = columns.checksums
        data: list[Iterable[Any]] = [
            repeat(stored.handle),
            range(first_step, first_step + count),
            columns.timestamps,
            columns.recorded,
            columns.confidences,
            values,
            self._ids(self._reason_ids, "reasons", "reason", columns.reasons, str),
            _split_checksums(checksums),
        ]
        # Columns that are NULL or 0 in every row are left to their defaults:
        # each bound parameter costs time on every row.
        optional: list[str] = []
        if codecs is not None:
            optional.append("value_codec")
            data.append(codecs)
        if columns.tags is not None:
            optional.append("tagset_id")
            data.append(self._ids(self._tagset_ids, "tagsets", "tags", columns.tags, _encode_tags))
        if columns.metadata:
            optional.append("metadata")
            data.append(_sparse_column(count, columns.metadata, lambda meta: encode_json(dict(meta))))
        if columns.causes:
            optional.append("caused_by")
            data.append(_sparse_column(count, columns.causes, encode_causes))
        self._connection.executemany(_insert_statement(tuple(optional)), zip(*data))

    def _ids(self, cache: dict[Any, int], table: str, column: str, items: Sequence[Any], to_text: Any) -> list[int]:
        """Return the side-table id of each item and insert the missing ones. Runs inside a transaction."""
        missing = [item for item in dict.fromkeys(items) if item not in cache]
        if missing:
            texts = {to_text(item): item for item in missing}
            connection = self._connection
            connection.executemany(f"INSERT OR IGNORE INTO {table} ({column}) VALUES (?)", [(text,) for text in texts])
            for chunk in _chunks(list(texts), _IN_CHUNK):
                marks = ", ".join("?" * len(chunk))
                for row_id, text in connection.execute(f"SELECT id, {column} FROM {table} WHERE {column} IN ({marks})", chunk):
                    item = texts[text]
                    cache[item] = row_id
                    self._uncommitted.append((cache, item))
        return list(map(cache.__getitem__, items))

    def _read(self, stored: StoredStatebit) -> HistoryColumns:
        parts = [self._read_segment(stored, *segment) for segment in _segments(stored)]
        timestamps, recorded, confidences, values, reason_ids, tagset_ids, checksums, encoded = parts[0]
        for part in parts[1:]:
            timestamps, recorded, confidences, values, reason_ids, tagset_ids = (
                _extend(column, more) for column, more in zip((timestamps, recorded, confidences, values, reason_ids, tagset_ids), part)
            )
            checksums += part[6]
            encoded += part[7]

        key = stored.key
        metadata: dict[int, Any] = {}
        causes: dict[int, Any] = {}
        decoded_values: dict[int, Any] = {}
        for step, codec, value, meta, cause in encoded:
            position = step - 1
            try:
                if codec is not None:
                    decoded_values[position] = decode_value(codec, value, self.allow_pickle)
                if meta is not None:
                    decoded = decode_json(meta, self.allow_pickle)
                    if not isinstance(decoded, dict):
                        raise ValueError(f"metadata is a {type(decoded).__name__}, not an object")
                    metadata[position] = decoded
                if cause is not None:
                    causes[position] = decode_causes(cause)
            except ValidationError as exc:
                raise ValidationError(f"{key}: cannot load step {step} from {self.path!r}: {exc}") from None
            except (ValueError, TypeError) as exc:
                raise _bad_record(key, step, f"it cannot be decoded ({exc})") from None
        if decoded_values:
            if isinstance(values, array) and not all(type(item) is float for item in decoded_values.values()):
                values = values.tolist()
            for position, item in decoded_values.items():
                values[position] = item

        return HistoryColumns(
            values=values,
            reasons=self._reasons(key, reason_ids),
            confidences=confidences,
            timestamps=timestamps,
            recorded=recorded,
            tags=self._texts(key, "tagsets", "tags", tagset_ids, _decode_tags) if any(tagset_ids) else None,
            metadata=metadata,
            causes=causes,
            checksums=bytes(checksums),
        )

    def _read_segment(self, stored: StoredStatebit, handle: int, low: int, high: int) -> tuple[Any, ...]:
        """Read steps ``low`` to ``high`` of one stored statebit as columns, plus its encoded rows.

        Numeric columns are collected in arrays, which the cyclic garbage
        collector does not traverse. A cell of an unexpected type turns its
        column into a list, so that validation can name the record.
        """
        connection = self._connection
        count, last = connection.execute(_COUNT_ROWS, (handle, low, high)).fetchone()
        if count and last != low + count - 1:
            steps = [step for (step,) in connection.execute(
                "SELECT step FROM transitions WHERE statebit_id = ? AND step BETWEEN ? AND ? ORDER BY step", (handle, low, high)
            )]
            position = next(i for i, step in enumerate(steps) if step != low + i)
            raise _bad_record(stored.key, low + position, "it is missing from the store")
        if high != _LAST_STEP and count != high - low + 1:
            raise _bad_record(stored.key, low + count, "it is missing from the store, though a fork shares it")

        columns: list[Any] = [array("q"), array("q"), array("d"), array("d"), array("q"), array("q")]
        checksums = bytearray()
        cursor = connection.execute(_SELECT_ROWS, (handle, low, high))
        while rows := cursor.fetchmany(_FETCH_ROWS):
            parts = list(zip(*rows))
            for index in range(6):
                columns[index] = _extend(columns[index], parts[index])
            checksums += _join_checksums(stored.key, parts[6], low + len(checksums) // 32)
        encoded = connection.execute(_SELECT_ENCODED, (handle, low, high)).fetchall()
        return (*columns, checksums, encoded)

    def _reasons(self, key: str, ids: Sequence[int]) -> list[str] | str:
        """Return the reason of each record, or the one reason when all records share it."""
        if ids and ids[0] == ids[-1] and len(set(ids)) == 1:
            return self._texts(key, "reasons", "reason", ids[:1], str)[0]
        return self._texts(key, "reasons", "reason", ids, str)

    def _texts(self, key: str, table: str, column: str, ids: Sequence[int], from_text: Any) -> list[Any]:
        """Map side-table ids to their items, read fresh so that a changed side table is seen."""
        found: dict[int, Any] = {}
        requested = list(set(ids))
        for chunk in _chunks(requested, _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            for row_id, text in self._connection.execute(f"SELECT id, {column} FROM {table} WHERE id IN ({marks})", chunk):
                try:
                    found[row_id] = from_text(text)
                except (ValueError, TypeError):
                    pass
        try:
            return list(map(found.__getitem__, ids))
        except KeyError:
            position = next(i for i, item in enumerate(ids) if item not in found)
            raise _bad_record(key, position + 1, f"its {column} (id {ids[position]}) is missing or invalid") from None

    # -- collections ------------------------------------------------------------------

    def _add_members(self, name: str, members: list[StoredStatebit]) -> None:
        self._connection.execute("INSERT OR IGNORE INTO collections (name) VALUES (?)", (name,))
        self._connection.executemany(
            "INSERT OR IGNORE INTO collection_members (collection, statebit_id) VALUES (?, ?)",
            [(name, stored.handle) for stored in members],
        )

    def _members(self, name: str) -> list[StoredStatebit] | None:
        if self._connection.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone() is None:
            return None
        rows = self._connection.execute(
            f"SELECT {_MEMBER_COLUMNS} "
            "FROM collection_members AS m JOIN statebits AS s ON s.id = m.statebit_id "
            "WHERE m.collection = ? ORDER BY s.identity, s.branch",
            (name,),
        ).fetchall()
        known: dict[int, StoredStatebit] = {}
        return [self._stored(row, known) for row in rows]

    def _collection_names(self) -> list[str]:
        return [name for (name,) in self._connection.execute("SELECT name FROM collections")]

    def _close(self) -> None:
        with self._lock:
            self._connection.close()


def _segments(stored: StoredStatebit) -> list[tuple[int, int, int]]:
    """Return ``(handle, first step, last step)`` of each stored part of a history, oldest first."""
    segments = []
    node: StoredStatebit | None = stored
    last = _LAST_STEP
    while node is not None:
        segments.append((node.handle, node.base_len + 1, last))
        last = node.base_len
        node = node.base if node.base_len else None
    segments.reverse()
    return segments


def _split_checksums(checksums: bytes) -> list[bytes]:
    """Split packed 32-byte checksums into one bytes object each."""
    import numpy as np

    # The void dtype keeps trailing zero bytes, which the "S32" dtype would strip.
    return np.frombuffer(checksums, dtype="V32").tolist()


@functools.lru_cache(maxsize=None)
def _insert_statement(optional: tuple[str, ...]) -> str:
    """Return the INSERT of one transition row with the base columns and ``optional`` ones."""
    names = _TRANSITION_COLUMNS + optional
    return f"INSERT INTO transitions ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def _sparse_column(count: int, entries: dict[int, Any], encode: Any) -> list[str | None]:
    column: list[str | None] = [None] * count
    for position, item in entries.items():
        column[position] = encode(item)
    return column


def _encode_tags(tags: tuple[str, ...]) -> str:
    return json.dumps(list(tags), separators=(",", ":"))


def _decode_tags(text: str) -> tuple[str, ...]:
    tags = json.loads(text)
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f"invalid tag set {text!r}")
    return tuple(tags)


def _join_checksums(key: str, checksums: Sequence[Any], first_step: int) -> bytes:
    """Join stored checksums, raising IntegrityError at the first one that is not 32 bytes."""
    try:
        joined = b"".join(checksums)
    except TypeError:
        joined = b""
    if len(joined) == 32 * len(checksums):
        # A short checksum next to a long one keeps the total; the chain check then fails at the short one.
        return joined
    position = next(i for i, item in enumerate(checksums) if type(item) is not bytes or len(item) != 32)
    raise _bad_record(key, first_step + position, "its checksum is not 32 bytes")


def _extend(column: Any, items: Sequence[Any]) -> Any:
    """Extend an array or list with ``items`` and return it.

    An array that cannot store the items exactly is first turned into a list.
    A float array would turn ints into floats, so it takes only floats.
    """
    if isinstance(column, array):
        size = len(column)
        try:
            if column.typecode == "d" and set(map(type, items)) - {float}:
                raise TypeError("not all items are floats")
            column.extend(items)
            return column
        except TypeError:
            del column[size:]  # array.extend keeps the items before the one it rejected
            column = column.tolist()
    column.extend(items)
    return column


def _bad_record(key: str, step: int, problem: str) -> IntegrityError:
    return IntegrityError(
        f"{key}: stored record at step {step} is invalid: {problem}; it was changed after it was written",
        step=step,
    )


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
