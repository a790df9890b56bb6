"""Backups of registered statebits: full, or incremental and chained to the previous one.

A backup is one JSON document. For each statebit it stores the transitions
since a base step together with the step and checksum it ended at. A full
backup starts every statebit at step 0, with the data needed to rebuild it.
An incremental backup stores only the transitions recorded since the
previous backup, and names that backup and its digest as its parent.
Restoring follows the parents back to a full copy, joins the pieces and
rebuilds each statebit with ``Statebit.from_dict``, which recomputes its
hash chain. The document's own SHA-256 (or HMAC-SHA256 with a key) digest
covers everything else in it, such as names and parent links.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from statebits.core import clock as _clock
from statebits.core.errors import IntegrityError, ValidationError, invalid_parameter
from statebits.core.serialize import transition_to_row
from statebits.core.statebit import Statebit
from statebits.enterprise._signing import canonical_json, check_key, digest
from statebits.enterprise.tenancy import admit_to_active_tenants

__all__ = ["BackupManager", "BackupInfo"]

BACKUP_FORMAT = "statebits-backup/1"
_STRATEGIES = ("full", "incremental")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SUFFIX = ".json"


@dataclass(frozen=True)
class BackupInfo:
    """Summary of one stored backup.

    Attributes
    ----------
    backup_id : str
        ``"<sequence>-<name>"``, such as ``"000001-pre_migration"``.
    name : str
    kind : str
        "full" or "incremental".
    created_at : datetime
        Aware UTC, from the statebits clock.
    parent : str or None
        Backup an incremental backup builds on.
    statebits : int
        Number of statebits in the backup.
    transitions : int
        Number of transitions stored in this backup itself.
    """

    backup_id: str
    name: str
    kind: str
    created_at: datetime
    parent: str | None
    statebits: int
    transitions: int


class BackupManager:
    """Back up and restore registered statebits.

    Parameters
    ----------
    strategy : {"full", "incremental"}, default "full"
        ``full`` stores every registered statebit's whole history in each
        backup. ``incremental`` stores only the transitions recorded since
        the previous backup and chains to it. The first backup is full, and
        so is the copy of any statebit whose history does not extend what
        the previous backup stored (a replaced or newly registered one).
    directory : str or path-like, optional
        Folder for backup files (``<backup_id>.json``, created when
        missing). Backups already in it are listed and continued. None
        keeps backups in memory for the lifetime of the manager.
    key : bytes or str, optional
        Secret for HMAC-SHA256 digests. Without a key, someone who edits a
        file and recomputes its digests goes undetected; with a key they
        also need the key. Restoring needs the same key.

    Notes
    -----
    Each statebit is copied under its own lock, so its copy is consistent,
    but statebits changed by other threads during a backup may be captured
    at slightly different moments. Restored statebits are plain
    :class:`Statebit` objects, also when an :class:`AsyncStatebit` was
    backed up. One manager at a time should write to a directory.

    Examples
    --------
    >>> import asyncio
    >>> from statebits import BackupManager, Statebit
    >>> sb = Statebit(identity="ledger", initial_value=0)
    >>> _ = sb.transition(10, "Opening deposit")
    >>> manager = BackupManager(strategy="incremental")
    >>> manager.register(sb)
    >>> backup_id = asyncio.run(manager.create_backup("nightly"))
    >>> backup_id
    '000001-nightly'
    >>> restored = asyncio.run(manager.restore_backup(backup_id))
    >>> restored.value, restored.verify_integrity()
    (10, True)
    """

    def __init__(
        self,
        strategy: str = "full",
        directory: str | os.PathLike[str] | None = None,
        *,
        key: bytes | str | None = None,
    ) -> None:
        if strategy not in _STRATEGIES:
            raise invalid_parameter("strategy", strategy, "'full' or 'incremental'", "BackupManager")
        self.strategy = strategy
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None and self.directory.exists() and not self.directory.is_dir():
            raise invalid_parameter("directory", str(self.directory), "a folder path, not a file", "BackupManager")
        self._key = check_key(key, "BackupManager")
        # _lock guards the registry. _write_lock orders creating and deleting
        # backups. Statebits are copied under _write_lock and their own locks
        # only, so register() never waits for a backup in progress.
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._registered: dict[str, Statebit] = {}
        self._memory: dict[str, str] = {}

    def __repr__(self) -> str:
        where = f", directory={str(self.directory)!r}" if self.directory is not None else ""
        return f"BackupManager(strategy={self.strategy!r}{where}, registered={len(self._registered)})"

    # -- registration ---------------------------------------------------------------

    def register(self, sb: Statebit) -> None:
        """Include ``sb`` in every later backup.

        Statebits are keyed by ``sb.key`` (the identity, or
        ``identity@branch`` for a fork). Registering the same object again
        changes nothing.

        Raises
        ------
        ValidationError
            When ``sb`` is not a Statebit, or another statebit with the same
            key is registered; unregister that one first.
        """
        if not isinstance(sb, Statebit):
            raise invalid_parameter("sb", sb, "a Statebit", "BackupManager.register")
        with self._lock:
            existing = self._registered.get(sb.key)
            if existing is not None and existing is not sb:
                raise ValidationError(
                    f"another statebit with key {sb.key!r} is already registered; unregister it before registering this one"
                )
            self._registered[sb.key] = sb

    def unregister(self, sb: Statebit) -> None:
        """Leave ``sb`` out of later backups; raises ValidationError when it is not registered."""
        with self._lock:
            key = getattr(sb, "key", None)
            if key is None or self._registered.get(key) is not sb:
                raise ValidationError(f"statebit {key or sb!r} is not registered with this BackupManager")
            del self._registered[key]

    def registered(self) -> list[Statebit]:
        """Return the registered statebits, in registration order."""
        with self._lock:
            return list(self._registered.values())

    # -- creating -----------------------------------------------------------------------

    async def create_backup(self, name: str, *, full: bool = False) -> str:
        """Back up every registered statebit and return the new backup's id.

        Parameters
        ----------
        name : str
            Letters, digits, ``.``, ``_`` and ``-``, up to 100 characters,
            starting with a letter or digit.
        full : bool, default False
            Store a full backup even with ``strategy="incremental"``, which
            bounds the chain that a later restore has to read.

        Returns
        -------
        str
            The backup id, ``"<sequence>-<name>"``.

        Raises
        ------
        ValidationError
            For an invalid name or when no statebit is registered.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise invalid_parameter(
                "name", name, "letters, digits, '.', '_' or '-' (up to 100, starting with a letter or digit)", "create_backup"
            )
        return await asyncio.to_thread(self._create, name, bool(full))

    def _create(self, name: str, full: bool) -> str:
        with self._write_lock:
            statebits = self.registered()
            if not statebits:
                raise ValidationError("no statebits are registered; call register(sb) before create_backup()")
            latest = self._latest()
            previous = None if latest is None else self._load(latest)
            incremental = self.strategy == "incremental" and not full and previous is not None
            bases = _heads(previous) if incremental else {}

            entries = {}
            for sb in statebits:
                entries[sb.key] = _snapshot(sb, bases.get(sb.key))
            sequence = 1 if latest is None else _sequence_of(latest) + 1
            backup_id = f"{sequence:06d}-{name}"
            document: dict[str, Any] = {
                "format": BACKUP_FORMAT,
                "backup_id": backup_id,
                "name": name,
                "sequence": sequence,
                "kind": "incremental" if incremental else "full",
                "created_at": _clock.from_ns(_clock.now_ns()).isoformat(),
                "parent": previous["backup_id"] if incremental else None,
                "parent_digest": previous["digest"] if incremental else None,
                "statebits": entries,
            }
            document["digest"] = digest(canonical_json(document), self._key)
            self._store(backup_id, canonical_json(document))
            return backup_id

    # -- restoring -------------------------------------------------------------------------

    async def restore_backup(
        self, backup_id: str, identity: str | None = None, *, allow_pickle: bool = False
    ) -> Statebit | dict[str, Statebit]:
        """Rebuild the statebits of a backup and verify them.

        The restored statebits are new objects; the registered ones are not
        changed. Inside a ``TenantManager.tenant_context`` they are
        registered with the active tenant once all of them have verified.

        Parameters
        ----------
        backup_id : str
            An id returned by :meth:`create_backup` or :meth:`list_backups`.
        identity : str, optional
            Restore only the statebit with this key and return it.
        allow_pickle : bool, default False
            Allow values that were stored as pickles. Loading a pickle runs
            code from the backup, so allow it only for trusted backups.

        Returns
        -------
        Statebit or dict of str to Statebit
            The statebit when ``identity`` is given or the backup contains
            one statebit; otherwise a dict from key to statebit.

        Raises
        ------
        ValidationError
            For an unknown backup or identity, or a missing parent backup.
        IntegrityError
            When a digest, a parent link or a statebit's hash chain does not
            verify: the backup was changed after it was written.
        """
        context = contextvars.Context()
        # Rebuilt in an empty context, so no tenant counts a statebit whose
        # backup then fails to verify; the active tenants admit them below.
        restored = await asyncio.to_thread(context.run, self._restore, backup_id, identity, allow_pickle)
        admit_to_active_tenants(restored.values())
        if identity is not None or len(restored) == 1:
            return next(iter(restored.values()))
        return restored

    def _restore(self, backup_id: str, identity: str | None, allow_pickle: bool) -> dict[str, Statebit]:
        with self._lock:
            document = self._load(backup_id)
            entries = document["statebits"]
            if identity is not None:
                if identity not in entries:
                    raise ValidationError(f"statebit {identity!r} not found in backup {backup_id!r}; it contains {sorted(entries)}")
                keys = [identity]
            else:
                keys = list(entries)
            chain = {backup_id: document}
            restored = {}
            for key in keys:
                try:
                    data = self._assemble(document, key, chain)
                except (KeyError, TypeError, AttributeError) as exc:
                    # The digest matched, so the document was written this way
                    # on purpose, or rewritten with its digest recomputed.
                    raise IntegrityError(f"backup {backup_id!r}: the entry of statebit {key!r} is malformed ({exc!r})") from None
                try:
                    sb = Statebit.from_dict(data, allow_pickle=allow_pickle)
                except IntegrityError as exc:
                    raise IntegrityError(f"backup {backup_id!r}: statebit {key!r} does not verify: {exc}", step=exc.step) from None
                except ValidationError as exc:
                    if "allow_pickle" in str(exc):
                        raise
                    raise IntegrityError(f"backup {backup_id!r}: statebit {key!r} contains invalid data: {exc}") from None
                if sb.history.head_checksum().hex() != entries[key]["head_checksum"]:
                    raise IntegrityError(f"backup {backup_id!r}: statebit {key!r} does not end at the step and checksum the backup recorded")
                restored[key] = sb
            return restored

    def _assemble(self, document: dict[str, Any], key: str, chain: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Join the transitions of ``key`` from ``document`` and its parents into ``Statebit.to_dict`` data."""
        entry = document["statebits"][key]
        pieces = [entry["transitions"]]
        current = document
        while entry["base_step"] > 0:
            parent_id = current["parent"]
            if parent_id is None:
                raise IntegrityError(f"backup {current['backup_id']!r}: statebit {key!r} starts at step {entry['base_step']} but the backup has no parent")
            parent = chain.get(parent_id)
            if parent is None:
                parent = self._load(parent_id, child=current["backup_id"])
                chain[parent_id] = parent
            if parent["digest"] != current["parent_digest"]:
                raise IntegrityError(
                    f"backup {current['backup_id']!r} was made on a different version of its parent {parent_id!r}; "
                    "the parent was replaced or changed"
                )
            base = parent["statebits"].get(key)
            if base is None or base["head_step"] != entry["base_step"] or base["head_checksum"] != entry["base_checksum"]:
                raise IntegrityError(
                    f"backup {current['backup_id']!r}: statebit {key!r} continues from step {entry['base_step']}, "
                    f"which its parent {parent_id!r} does not hold"
                )
            pieces.append(base["transitions"])
            entry = base
            current = parent
        if "statebit" not in entry:
            raise IntegrityError(f"backup {current['backup_id']!r}: the full copy of statebit {key!r} is missing its data")

        data = dict(entry["statebit"])
        data["transitions"] = [row for piece in reversed(pieces) for row in piece]
        data["frozen"] = document["statebits"][key]["frozen"]
        return data

    # -- listing and deleting ------------------------------------------------------------------

    def list_backups(self) -> list[BackupInfo]:
        """Return every stored backup, oldest first.

        Raises IntegrityError when a stored backup cannot be read.
        """
        with self._lock:
            infos = []
            for backup_id in self._backup_ids():
                document = self._load(backup_id)
                infos.append(
                    BackupInfo(
                        backup_id=backup_id,
                        name=document["name"],
                        kind=document["kind"],
                        created_at=datetime.fromisoformat(document["created_at"]),
                        parent=document["parent"],
                        statebits=len(document["statebits"]),
                        transitions=sum(len(entry["transitions"]) for entry in document["statebits"].values()),
                    )
                )
            return infos

    def delete_backup(self, backup_id: str) -> None:
        """Delete a backup that no other backup builds on.

        Raises ValidationError for an unknown backup, or when an incremental
        backup names it as parent; delete that one first.
        """
        with self._write_lock:
            self._load(backup_id)
            children = [item for item in self._backup_ids() if item != backup_id and self._load(item)["parent"] == backup_id]
            if children:
                raise ValidationError(f"backup {backup_id!r} is the parent of {children}; delete those first")
            if self.directory is None:
                del self._memory[backup_id]
            else:
                (self.directory / f"{backup_id}{_SUFFIX}").unlink()

    # -- storage ----------------------------------------------------------------------------------

    def _backup_ids(self) -> list[str]:
        if self.directory is None:
            found = list(self._memory)
        elif not self.directory.exists():
            return []
        else:
            found = [path.name[: -len(_SUFFIX)] for path in self.directory.glob(f"*{_SUFFIX}")]
        # The zero-padded sequence at the start makes name order creation order.
        return sorted(item for item in found if _sequence_of(item) is not None)

    def _latest(self) -> str | None:
        ids = self._backup_ids()
        return ids[-1] if ids else None

    def _store(self, backup_id: str, text: str) -> None:
        if self.directory is None:
            self._memory[backup_id] = text
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{backup_id}{_SUFFIX}"
        if target.exists():
            raise ValidationError(f"backup file {str(target)!r} already exists; another manager is writing to this directory")
        # Written to a temporary file and renamed, so a crash never leaves a
        # half-written backup under a backup's name.
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{backup_id}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _load(self, backup_id: str, child: str | None = None) -> dict[str, Any]:
        """Read a backup and check its format and digest."""
        text = self._read(backup_id, child)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"backup {backup_id!r} is not valid JSON ({exc.msg}); it was changed or damaged") from None
        if not isinstance(document, dict) or document.get("format") != BACKUP_FORMAT:
            raise IntegrityError(f"backup {backup_id!r} is not a statebits backup in format {BACKUP_FORMAT!r}")
        stored = document.pop("digest", None)
        if stored != digest(canonical_json(document), self._key):
            hint = "" if self._key is None else " or was written with another key"
            raise IntegrityError(f"backup {backup_id!r} does not match its digest; it was changed after it was written{hint}")
        if document.get("backup_id") != backup_id:
            raise IntegrityError(f"backup {backup_id!r} contains the content of backup {document.get('backup_id')!r}; files were renamed")
        document["digest"] = stored
        return document

    def _read(self, backup_id: str, child: str | None) -> str:
        missing = (
            f"parent backup {backup_id!r} of {child!r} not found; the incremental chain is broken"
            if child is not None
            else f"backup {backup_id!r} not found; list_backups() shows the stored backups"
        )
        if not isinstance(backup_id, str):
            raise invalid_parameter("backup_id", backup_id, "a backup id string from create_backup()", "BackupManager")
        if self.directory is None:
            text = self._memory.get(backup_id)
            if text is None:
                raise ValidationError(missing)
            return text
        if _sequence_of(backup_id) is None:
            raise ValidationError(missing)
        try:
            return (self.directory / f"{backup_id}{_SUFFIX}").read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValidationError(missing) from None


# -- helpers ------------------------------------------------------------------------------------


def _sequence_of(backup_id: str) -> int | None:
    prefix, separator, name = backup_id.partition("-")
    if not separator or len(prefix) != 6 or not prefix.isdigit() or not _NAME.fullmatch(name):
        return None
    return int(prefix)


def _heads(document: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {key: (entry["head_step"], entry["head_checksum"]) for key, entry in document["statebits"].items()}


def _snapshot(sb: Statebit, base: tuple[int, str] | None) -> dict[str, Any]:
    """Copy the transitions of ``sb`` after ``base``, or all of it when the base no longer applies."""
    with sb._lock:
        history = sb.history
        size = len(history)
        base_step = 0
        if base is not None:
            step, checksum = base
            # Equal checksums at a step mean equal histories up to it, so the
            # tail after it extends exactly what the previous backup holds.
            if 0 < step <= size and history.checksum_of(step - 1).hex() == checksum:
                base_step = step
        entry: dict[str, Any] = {
            "base_step": base_step,
            "base_checksum": base[1] if base_step else None,
            "head_step": size,
            "head_checksum": history.head_checksum().hex(),
            "frozen": sb.frozen,
        }
        if base_step == 0:
            data = sb.to_dict()
            entry["transitions"] = data.pop("transitions")
            entry["statebit"] = data
        else:
            entry["transitions"] = [transition_to_row(transition, history.branch) for transition in history[base_step:]]
    return entry
