"""MemoryStore: the store protocol kept in process memory, for tests and as the default."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

from statebits.core.canonical import snapshot
from statebits.stores.base import HistoryColumns, Store, StoreConflictError, StoredStatebit

__all__ = ["MemoryStore"]


class _Record(NamedTuple):
    """One stored transition."""

    timestamp: int
    recorded: int
    confidence: float
    value: Any
    reason: str
    tags: tuple[str, ...]
    metadata: Any
    causes: tuple[Any, ...] | None
    checksum: bytes


class MemoryStore(Store):
    """A store that keeps histories in memory, with the semantics of the durable stores.

    Loading returns a new statebit rebuilt from copies of the stored
    records, and two statebits loaded from one MemoryStore conflict as two
    writers of a database would. Nothing survives the process.

    Examples
    --------
    >>> from statebits.stores import MemoryStore
    >>> store = MemoryStore()
    >>> counter = store.open("counter", 0)
    >>> _ = counter.transition(1, "first visit")
    >>> len(store.load("counter").history)
    1
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._genesis: dict[tuple[str, str], StoredStatebit] = {}
        self._records: dict[tuple[str, str], list[_Record]] = {}  # own records, without a shared prefix
        self._collections: dict[str, list[tuple[str, str]]] = {}
        self._undo: list[Callable[[], None]] | None = None

    def __repr__(self) -> str:
        return f"MemoryStore(statebits={len(self._genesis)})"

    # -- primitives -----------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            if self._undo is not None:
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException:
                for step in reversed(self._undo):
                    step()
                raise
            finally:
                self._undo = None

    def _snapshot(self) -> contextlib.AbstractContextManager[Any]:
        return self._lock

    def _find(self, identity: str, branch: str) -> StoredStatebit | None:
        return self._genesis.get((identity, branch))

    def _list(self) -> list[StoredStatebit]:
        return [self._genesis[key] for key in sorted(self._genesis)]

    def _create(self, stored: StoredStatebit) -> StoredStatebit:
        key = (stored.identity, stored.branch)
        if key in self._genesis:
            raise StoreConflictError(f"cannot create {stored.key!r}: another writer created it first; load it instead")
        created = replace(stored, initial_value=snapshot(stored.initial_value), handle=key)
        self._genesis[key] = created
        self._records[key] = []
        self._on_undo(lambda: (self._genesis.pop(key), self._records.pop(key)))
        return created

    def _head(self, stored: StoredStatebit) -> tuple[int, bytes]:
        records = self._records[stored.handle]
        if records:
            return stored.base_len + len(records), records[-1].checksum
        if stored.base is not None:
            return stored.base_len, self._checksum_at(stored.base, stored.base_len) or b""
        return 0, stored.genesis

    def _checksum_at(self, stored: StoredStatebit, step: int) -> bytes | None:
        if step == 0:
            return stored.genesis
        if step <= stored.base_len and stored.base is not None:
            return self._checksum_at(stored.base, step)
        records = self._records[stored.handle]
        local = step - stored.base_len - 1
        return records[local].checksum if local < len(records) else None

    def _append_rows(self, stored: StoredStatebit, first_step: int, columns: HistoryColumns) -> None:
        records = self._records[stored.handle]
        if first_step != stored.base_len + len(records) + 1:
            stored_count = stored.base_len + len(records)
            raise StoreConflictError(
                f"cannot store step {first_step} of {stored.key!r}: the store contains {stored_count} transitions, "
                f"so the next step is {stored_count + 1}"
            )
        tags = columns.tags
        checksums = columns.checksums
        size = len(records)
        for position in range(len(columns)):
            metadata = columns.metadata.get(position)
            records.append(
                _Record(
                    columns.timestamps[position],
                    columns.recorded[position],
                    columns.confidences[position],
                    snapshot(columns.values[position]),
                    columns.reasons[position],
                    tags[position] if tags is not None else (),
                    None if metadata is None else snapshot(dict(metadata)),
                    columns.causes.get(position),
                    bytes(checksums[32 * position : 32 * position + 32]),
                )
            )
        self._on_undo(lambda: records.__delitem__(slice(size, None)))

    def _read(self, stored: StoredStatebit) -> HistoryColumns:
        records = self._all_records(stored, None)
        metadata = {}
        causes = {}
        for position, record in enumerate(records):
            if record.metadata is not None:
                metadata[position] = record.metadata
            if record.causes:
                causes[position] = record.causes
        tags = [record.tags for record in records]
        return HistoryColumns(
            values=[record.value for record in records],  # restore_statebit copies mutable values
            reasons=[record.reason for record in records],
            confidences=[record.confidence for record in records],
            timestamps=[record.timestamp for record in records],
            recorded=[record.recorded for record in records],
            tags=tags if any(tags) else None,
            metadata=metadata,  # type: ignore[arg-type]
            causes=causes,
            checksums=b"".join(record.checksum for record in records),
        )

    def _all_records(self, stored: StoredStatebit, upto: int | None) -> list[_Record]:
        """Return the records of steps 1 to ``upto`` (all when None), shared prefix included."""
        prefix = self._all_records(stored.base, stored.base_len) if stored.base is not None else []
        own = self._records[stored.handle]
        if upto is not None:
            own = own[: max(upto - stored.base_len, 0)]
        return prefix + own

    def _add_members(self, name: str, members: list[StoredStatebit]) -> None:
        existing = self._collections.setdefault(name, [])
        size = len(existing)
        for stored in members:
            if stored.handle not in existing:
                existing.append(stored.handle)

        def undo() -> None:
            del existing[size:]
            if not existing:
                self._collections.pop(name, None)

        self._on_undo(undo)

    def _members(self, name: str) -> list[StoredStatebit] | None:
        keys = self._collections.get(name)
        if keys is None:
            return None
        return [self._genesis[key] for key in keys]

    def _collection_names(self) -> list[str]:
        return list(self._collections)

    def _close(self) -> None:
        """Keep the data: a closed MemoryStore rejects calls but is not cleared."""

    def _on_undo(self, step: Callable[[], Any]) -> None:
        if self._undo is not None:
            self._undo.append(step)
