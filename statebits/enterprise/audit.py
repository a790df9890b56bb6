"""Audit logging: every transition of attached statebits as one hash-chained JSON line.

Each entry stores the digest of the entry before it and its own digest, a
SHA-256 (or an HMAC-SHA256 when the logger has a key) over its canonical
JSON. Editing, deleting, inserting or reordering lines therefore breaks the
chain at the first changed line, which :meth:`AuditLogger.verify` reports.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statebits.core import clock as _clock
from statebits.core.canonical import to_jsonable
from statebits.core.confidence import ConfidenceLevel, check_confidence
from statebits.core.errors import IntegrityError, ValidationError, invalid_parameter
from statebits.core.statebit import Statebit
from statebits.core.transition import StateTransition
from statebits.enterprise._signing import ZERO_DIGEST, canonical_json, check_key, digest

__all__ = ["AuditLogger", "AuditVerification"]

logger = logging.getLogger(__name__)

_STORAGES = ("file", "memory")
#: Metadata keys read as the acting user, in order of preference.
DEFAULT_USER_KEYS = ("user", "user_id", "username", "actor")


@dataclass(frozen=True)
class AuditVerification:
    """The result of verifying an audit log's hash chain.

    Attributes
    ----------
    ok : bool
        True when every line verifies (and the head matches, when one was expected).
    checked : int
        Number of lines read.
    first_bad_line : int or None
        1-based line number of the first line that fails.
    message : str
        One line describing the result.
    head : str
        Digest of the last valid line, or 64 zeros for an empty log.
    """

    ok: bool
    checked: int
    first_bad_line: int | None
    message: str
    head: str

    def __bool__(self) -> bool:
        return self.ok

    def raise_if_broken(self) -> None:
        """Raise :class:`IntegrityError` when the log did not verify.

        The error carries the line number as its ``line`` attribute.
        """
        if not self.ok:
            error = IntegrityError(self.message)
            error.line = self.first_bad_line  # type: ignore[attr-defined]
            raise error


class AuditLogger:
    """Log every transition of attached statebits, tamper-evidently.

    Each transition becomes one JSON line. The line contains the identity,
    branch, step, from and to values (through the statebits JSON codec),
    reason, confidence, tags, metadata, causes, the valid and recorded
    times, the transition's checksum and the time it was logged. It also
    contains the log's own hash chain (``prev`` and ``hash``). Attaching
    and detaching are logged too.

    Parameters
    ----------
    storage : {"memory", "file"}, default "memory"
        Where entries are kept. With ``"file"`` each entry is appended to
        ``filepath`` and flushed before the observer returns. An existing
        file is continued, so a log can be closed, reopened and verified.
    filepath : str or path-like, optional
        Required with ``storage="file"``.
    key : bytes or str, optional
        Secret for HMAC-SHA256 digests. Without a key anyone who can write
        the file can recompute a consistent chain after editing it; with a
        key only holders of the key can. Verification needs the same key.
    user_keys : sequence of str, default ("user", "user_id", "username", "actor")
        Metadata keys read as the acting user in compliance reports.
    low_confidence : float, default 0.6 (ConfidenceLevel.MEDIUM)
        Transitions with a confidence below this are listed as
        low-confidence changes in compliance reports.
    fsync : bool, default False
        Also ``os.fsync`` after each entry, so an entry survives a power
        loss once the transition returns; slower.

    Notes
    -----
    One process should write a given file at a time; entries from two
    writers would interleave and break the chain. The logger writes from
    a statebit observer, so a failed write (a full disk, say) does not undo
    the transition: the error is logged by the ``statebits.core.statebit``
    logger and the compliance report lists the step as missing.

    Examples
    --------
    >>> from statebits import AuditLogger, Statebit
    >>> audit = AuditLogger(storage="memory")
    >>> sb = Statebit(identity="audited", initial_value=1000)
    >>> audit.attach(sb)
    >>> _ = sb.transition(1500, "Deposit", metadata={"user": "alice"})
    >>> [entry["event"] for entry in audit.entries("audited")]
    ['attach', 'transition']
    >>> audit.verify().ok
    True
    >>> audit.generate_compliance_report("audited")["users"]
    ['alice']
    """

    def __init__(
        self,
        storage: str = "memory",
        filepath: str | os.PathLike[str] | None = None,
        *,
        key: bytes | str | None = None,
        user_keys: Iterable[str] = DEFAULT_USER_KEYS,
        low_confidence: float = float(ConfidenceLevel.MEDIUM),
        fsync: bool = False,
    ) -> None:
        if storage not in _STORAGES:
            raise invalid_parameter("storage", storage, "'file' or 'memory'", "AuditLogger")
        if storage == "file" and filepath is None:
            raise invalid_parameter("filepath", filepath, "a file path when storage='file'", "AuditLogger")
        if storage == "memory" and filepath is not None:
            raise invalid_parameter("filepath", filepath, "None when storage='memory' (use storage='file' to write a file)", "AuditLogger")
        if isinstance(user_keys, str) or not all(isinstance(item, str) for item in user_keys):
            raise invalid_parameter("user_keys", user_keys, "a sequence of metadata key names", "AuditLogger")

        self.storage = storage
        self.filepath = Path(filepath) if filepath is not None else None
        self.user_keys = tuple(user_keys)
        self.low_confidence = check_confidence(low_confidence)
        self.fsync = bool(fsync)
        self._key = check_key(key, "AuditLogger")
        self._lock = threading.RLock()
        self._lines: list[str] = []
        self._file: Any = None
        # Attached statebits by object id: (statebit, observer).
        self._attached: dict[int, tuple[Statebit, Any]] = {}
        # The statebit most recently attached under each identity, for reports.
        self._known: dict[str, Statebit] = {}
        self._sequence = 0
        self._head = ZERO_DIGEST
        self._closed = False
        if self.filepath is not None:
            self._sequence, self._head = _read_tail(self.filepath)

    def __repr__(self) -> str:
        where = f", filepath={str(self.filepath)!r}" if self.filepath is not None else ""
        return f"AuditLogger(storage={self.storage!r}{where}, entries={self._sequence}, attached={len(self._attached)})"

    @property
    def head(self) -> str:
        """Digest of the last entry; keep it elsewhere to detect later truncation with ``verify(expected_head=...)``."""
        return self._head

    # -- attaching ------------------------------------------------------------------

    def attach(self, sb: Statebit) -> None:
        """Log every later transition of ``sb``, and log the attachment itself.

        Transitions recorded before attaching are not logged; the attach
        entry records the step and checksum the statebit had then.

        Raises ValidationError when ``sb`` is not a Statebit or is already attached.
        """
        if not isinstance(sb, Statebit):
            raise invalid_parameter("sb", sb, "a Statebit", "AuditLogger.attach")

        def observe(statebit: Statebit, transition: StateTransition) -> None:
            self._log_transition(statebit, transition)

        # Locks are always taken statebit first, then logger: observers run
        # with the statebit's lock held during merges. Holding the statebit's
        # lock also keeps any transition from falling between the attach
        # entry and the first logged transition.
        with sb._lock, self._lock:
            if id(sb) in self._attached:
                raise ValidationError(f"statebit {sb.key!r} is already attached to this AuditLogger")
            self._append(_statebit_event("attach", sb))
            sb.add_observer(observe)
            self._attached[id(sb)] = (sb, observe)
            self._known[sb.identity] = sb

    def detach(self, sb: Statebit) -> None:
        """Stop logging ``sb`` and log the detachment.

        Raises ValidationError when ``sb`` is not attached.
        """
        with self._lock:
            found = self._attached.get(id(sb))
        if found is None:
            identity = getattr(sb, "key", sb)
            raise ValidationError(f"statebit {identity!r} is not attached to this AuditLogger")
        statebit, observe = found
        with statebit._lock, self._lock:
            if self._attached.pop(id(sb), None) is None:
                raise ValidationError(f"statebit {statebit.key!r} was detached by another thread")
            statebit.remove_observer(observe)
            self._append(_statebit_event("detach", statebit))

    def close(self) -> None:
        """Detach every statebit and close the file; the logger can then no longer write."""
        with self._lock:
            attached = [statebit for statebit, _ in self._attached.values()]
        for statebit in attached:
            try:
                self.detach(statebit)
            except ValidationError:
                pass  # detached by another thread meanwhile
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._closed = True

    def __enter__(self) -> "AuditLogger":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------

    def _log_transition(self, sb: Statebit, transition: StateTransition) -> None:
        entry: dict[str, Any] = {
            "event": "transition",
            "identity": sb.identity,
            "branch": transition.branch,
            "lineage": sb.lineage,
            "step": transition.step,
            "timestamp": transition.timestamp.isoformat(),
            "recorded_at": transition.recorded_at.isoformat(),
            "from_value": to_jsonable(transition.from_value),
            "to_value": to_jsonable(transition.to_value),
            "reason": transition.reason,
            "confidence": transition.confidence,
            "tags": list(transition.tags),
            "metadata": to_jsonable(dict(transition.metadata)),
            "caused_by": [ref.as_dict() for ref in transition.caused_by],
            "checksum": transition.checksum,
        }
        self._append(entry)

    def _append(self, fields: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                raise ValidationError("this AuditLogger is closed; create a new one to continue the log")
            entry = dict(fields)
            entry["seq"] = self._sequence + 1
            entry["logged_at"] = _clock.from_ns(_clock.now_ns()).isoformat()
            entry["prev"] = self._head
            entry_hash = digest(canonical_json(entry), self._key)
            entry["hash"] = entry_hash
            line = canonical_json(entry)
            if self.filepath is None:
                self._lines.append(line)
            else:
                self._write_line(self.filepath, line)
            # Advanced only after the entry is stored, so a failed write leaves
            # the chain continuing from the last entry actually written.
            self._sequence += 1
            self._head = entry_hash

    def _write_line(self, path: Path, line: str) -> None:
        if self._file is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", newline="\n")
        self._file.write(line + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    # -- reading ----------------------------------------------------------------------

    def _iter_lines(self) -> Iterator[str]:
        with self._lock:
            if self.filepath is None:
                return iter(list(self._lines))
            # Entries are flushed before the lock is released, so the size read
            # here ends after a complete line even while others keep writing.
            size = self.filepath.stat().st_size if self.filepath.exists() else 0
        if size == 0:
            return iter(())
        return _read_lines(self.filepath, size)

    def entries(self, identity: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        """Return the logged entries as dicts, oldest first.

        Values stay in their JSON form (see ``statebits.core.canonical.from_jsonable``).

        Parameters
        ----------
        identity : str, optional
            Only entries of statebits with this identity.
        event : {"attach", "transition", "detach"}, optional
            Only entries of this kind.

        Raises
        ------
        IntegrityError
            When a line is not valid JSON; run :meth:`verify` to locate damage.
        """
        found = []
        for number, line in enumerate(self._iter_lines(), start=1):
            entry = _parse_line(line, number)
            if identity is not None and entry.get("identity") != identity:
                continue
            if event is not None and entry.get("event") != event:
                continue
            found.append(entry)
        return found

    def verify(self, raise_on_error: bool = False, expected_head: str | None = None) -> AuditVerification:
        """Recompute the log's hash chain and report the first line that fails.

        Parameters
        ----------
        raise_on_error : bool, default False
            Raise :class:`IntegrityError` instead of returning a failed result.
        expected_head : str, optional
            A :attr:`head` digest saved earlier. The log must still contain
            that entry as its last line or later ones, which detects lines
            removed from the end.
        """
        result = _verify_lines(self._iter_lines(), self._key, expected_head, str(self.filepath or "memory log"))
        if raise_on_error:
            result.raise_if_broken()
        return result

    @classmethod
    def verify_file(cls, filepath: str | os.PathLike[str], key: bytes | str | None = None, expected_head: str | None = None) -> AuditVerification:
        """Verify an audit log file without opening it for writing, such as an archived or damaged log."""
        path = Path(filepath)
        if not path.is_file():
            raise ValidationError(f"audit log {str(path)!r} not found")
        return _verify_lines(_read_lines(path), check_key(key, "AuditLogger.verify_file"), expected_head, str(path))

    # -- reporting ---------------------------------------------------------------------

    def generate_compliance_report(self, identity: str, start: Any = None, end: Any = None) -> dict[str, Any]:
        """Summarise the audit trail of one identity as a JSON-ready dict.

        Parameters
        ----------
        identity : str
        start, end : datetime or str, optional
            Only transitions whose valid time lies in ``[start, end]``.

        Returns
        -------
        dict
            With these keys (times as ISO 8601 strings, values in JSON form):

            - ``identity``, ``generated_at``.
            - ``period``: ``start`` and ``end`` of the logged transitions,
              and the requested bounds.
            - ``counts``: ``entries``, ``transitions``, ``attached``, ``detached``.
            - ``users`` found in metadata under :attr:`user_keys`, with
              ``changes_by_user`` and ``unattributed_changes``.
            - ``tags`` (count per tag), ``first_value``, ``last_value``.
            - ``low_confidence_threshold`` and ``low_confidence_changes``
              (step, reason, confidence, to_value, user of each).
            - ``log_integrity``: ``ok``, ``checked``, ``first_bad_line``, ``message``.
            - ``statebit_integrity``: ``ok``, ``checked``, ``first_bad_step``,
              ``message``. None when no statebit of that identity was attached.
            - ``coverage``: ``attached_at_step``, ``current_step``,
              ``logged_steps``, ``missing_steps`` (recorded while attached
              but never logged), ``mismatched_steps`` (logged checksum
              differs from the statebit's) and ``complete``. None like
              ``statebit_integrity``.
            - ``all_checks_passed``: the log and the statebit verify and the
              coverage is complete.

        Raises
        ------
        ValidationError
            When the identity has no entries in this log.
        """
        if not isinstance(identity, str):
            raise invalid_parameter("identity", identity, "a statebit identity string", "generate_compliance_report")
        low = None if start is None else _clock.to_ns(start)
        high = None if end is None else _clock.to_ns(end)
        entries = self.entries(identity)
        if not entries:
            raise ValidationError(f"no audit entries for identity {identity!r}; attach the statebit with attach(sb) first")

        transitions = [entry for entry in entries if entry["event"] == "transition"]
        if low is not None or high is not None:
            transitions = [entry for entry in transitions if _in_range(entry["timestamp"], low, high)]

        users: Counter[str] = Counter()
        tags: Counter[str] = Counter()
        unattributed = 0
        low_confidence = []
        for entry in transitions:
            user = self._user_of(entry)
            if user is None:
                unattributed += 1
            else:
                users[user] += 1
            tags.update(entry.get("tags", ()))
            if entry["confidence"] < self.low_confidence:
                low_confidence.append(
                    {
                        "step": entry["step"],
                        "reason": entry["reason"],
                        "confidence": entry["confidence"],
                        "to_value": entry["to_value"],
                        "user": user,
                    }
                )

        log_check = self.verify()
        sb = self._known.get(identity)
        statebit_check = None if sb is None else sb.integrity_report()
        coverage = None if sb is None else _coverage(sb, entries)
        all_passed = log_check.ok and statebit_check is not None and statebit_check.ok and coverage is not None and coverage["complete"]

        return {
            "identity": identity,
            "generated_at": _clock.from_ns(_clock.now_ns()).isoformat(),
            "period": {
                "start": transitions[0]["timestamp"] if transitions else None,
                "end": transitions[-1]["timestamp"] if transitions else None,
                "requested_start": None if low is None else _clock.from_ns(low).isoformat(),
                "requested_end": None if high is None else _clock.from_ns(high).isoformat(),
            },
            "counts": {
                "entries": len(entries),
                "transitions": len(transitions),
                "attached": sum(entry["event"] == "attach" for entry in entries),
                "detached": sum(entry["event"] == "detach" for entry in entries),
            },
            "users": sorted(users),
            "changes_by_user": dict(sorted(users.items())),
            "unattributed_changes": unattributed,
            "tags": dict(sorted(tags.items())),
            "first_value": transitions[0]["from_value"] if transitions else None,
            "last_value": transitions[-1]["to_value"] if transitions else None,
            "low_confidence_threshold": self.low_confidence,
            "low_confidence_changes": low_confidence,
            "log_integrity": {
                "ok": log_check.ok,
                "checked": log_check.checked,
                "first_bad_line": log_check.first_bad_line,
                "message": log_check.message,
            },
            "statebit_integrity": None
            if statebit_check is None
            else {
                "ok": statebit_check.ok,
                "checked": statebit_check.checked,
                "first_bad_step": statebit_check.first_bad_step,
                "message": statebit_check.message,
            },
            "coverage": coverage,
            "all_checks_passed": all_passed,
        }

    def _user_of(self, entry: dict[str, Any]) -> str | None:
        metadata = entry.get("metadata") or {}
        for name in self.user_keys:
            value = metadata.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return str(value)
        return None


# -- helpers ----------------------------------------------------------------------------


def _statebit_event(event: str, sb: Statebit) -> dict[str, Any]:
    history = sb.history
    return {
        "event": event,
        "identity": sb.identity,
        "branch": sb.branch,
        "lineage": sb.lineage,
        "step": len(history),
        "checksum": history.head_checksum().hex(),
    }


def _coverage(sb: Statebit, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare the transitions logged for ``sb`` with its history.

    Only steps recorded while the statebit was attached are expected in the
    log: from each attach entry's step + 1 to the next detach entry's step.
    """
    own = [entry for entry in entries if entry.get("lineage") == sb.lineage and entry.get("branch") == sb.branch]
    history = sb.history
    expected: set[int] = set()
    logged: dict[int, str] = {}
    attached_from: int | None = None
    first_attach: int | None = None
    for entry in own:
        if entry["event"] == "attach":
            attached_from = entry["step"]
            first_attach = entry["step"] if first_attach is None else first_attach
        elif entry["event"] == "detach" and attached_from is not None:
            expected.update(range(attached_from + 1, entry["step"] + 1))
            attached_from = None
        elif entry["event"] == "transition":
            logged[entry["step"]] = entry["checksum"]
    if attached_from is not None:
        expected.update(range(attached_from + 1, len(history) + 1))

    missing = sorted(step for step in expected if step not in logged)
    # A logged step beyond the history, or with another checksum, means the
    # statebit and the log disagree about what happened at that step.
    mismatched = sorted(
        step for step, checksum in logged.items() if step > len(history) or checksum != history.checksum_of(step - 1).hex()
    )
    return {
        "attached_at_step": first_attach,
        "current_step": len(history),
        "logged_steps": len(logged),
        "missing_steps": missing,
        "mismatched_steps": mismatched,
        "complete": not missing and not mismatched,
    }


def _in_range(timestamp: str, low: int | None, high: int | None) -> bool:
    moment = _clock.to_ns(timestamp)
    return (low is None or moment >= low) and (high is None or moment <= high)


def _parse_line(line: str, number: int) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"audit log line {number} is not valid JSON ({exc.msg}); run verify() to check the log") from None
    if not isinstance(entry, dict):
        raise IntegrityError(f"audit log line {number} is not a JSON object; run verify() to check the log")
    return entry


def _read_lines(path: Path, size: int | None = None) -> Iterator[str]:
    """Yield the lines of ``path`` without their newline, reading at most ``size`` bytes."""
    remaining = size
    with open(path, "rb") as handle:
        for raw in handle:
            if remaining is not None:
                if remaining <= 0:
                    return
                raw = raw[:remaining]
                remaining -= len(raw)
            # Invalid UTF-8 is replaced, so such a line fails its digest check.
            text = raw.decode("utf-8", "replace")
            yield text[:-1] if text.endswith("\n") else text


def _verify_lines(lines: Iterable[str], key: bytes | None, expected_head: str | None, source: str) -> AuditVerification:
    previous = ZERO_DIGEST
    checked = 0
    heads_seen = expected_head is None or expected_head == ZERO_DIGEST
    for number, line in enumerate(lines, start=1):
        checked = number
        problem = _check_line(line, number, previous, key)
        if problem is not None:
            return AuditVerification(False, checked, number, f"{source}: line {number} {problem}", previous)
        previous = json.loads(line)["hash"]
        heads_seen = heads_seen or previous == expected_head
    if not heads_seen:
        return AuditVerification(
            False,
            checked,
            checked + 1,
            f"{source}: the expected head {expected_head} is not in the log; entries were removed from its end",
            previous,
        )
    return AuditVerification(True, checked, None, f"{source}: {checked} entries verified", previous)


def _check_line(line: str, number: int, previous: str, key: bytes | None) -> str | None:
    """Return what is wrong with one line, or None when it extends the chain."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"is not valid JSON ({exc.msg}); it was edited or only partly written"
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
        return "is not an audit entry (a JSON object with a 'hash' field)"
    if entry.get("seq") != number:
        return f"has sequence number {entry.get('seq')!r}, expected {number}; lines were removed, inserted or reordered"
    if entry.get("prev") != previous:
        return "does not follow the line before it (its 'prev' digest differs); lines were removed, inserted or reordered"
    stored = entry.pop("hash")
    if digest(canonical_json(entry), key) != stored:
        reason = "its content was changed" if key is None else "its content was changed or the key is wrong"
        return f"does not match its digest; {reason}"
    return None


def _read_tail(path: Path) -> tuple[int, str]:
    """Return the sequence number and digest of the last entry of an existing log, or (0, zeros)."""
    if not path.exists():
        return 0, ZERO_DIGEST
    if not path.is_file():
        raise invalid_parameter("filepath", str(path), "a file path, not a directory", "AuditLogger")
    last = _last_line(path)
    if last is None:
        return 0, ZERO_DIGEST
    text, complete = last
    try:
        entry = json.loads(text) if complete else None
    except json.JSONDecodeError:
        entry = None
    if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int) or not isinstance(entry.get("hash"), str):
        with open(path, "rb") as handle:
            newlines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        number = newlines if complete else newlines + 1
        raise IntegrityError(
            f"audit log {str(path)!r} ends in a damaged entry at line {number}, so it cannot be continued; "
            "check it with AuditLogger.verify_file() and start a new log file"
        )
    return entry["seq"], entry["hash"]


def _last_line(path: Path, block: int = 65536) -> tuple[str, bool] | None:
    """Return the last line of a file and whether it ends with a newline, or None for an empty file."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        if position == 0:
            return None
        # Read blocks backwards until the newline before the last line is in view.
        tail = b""
        while position > 0:
            step = min(block, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
            if b"\n" in tail[:-1]:
                break
    complete = tail.endswith(b"\n")
    body = tail[:-1] if complete else tail
    return body.rsplit(b"\n", 1)[-1].decode("utf-8", "replace"), complete
