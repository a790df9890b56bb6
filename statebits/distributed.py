"""DistributedStatebit: one history shared through Redis by many processes.

Every process that creates a DistributedStatebit with the same identity and
server works on one stored history. The history uses the key layout of
:class:`~statebits.stores.redis.RedisStore`, so a RedisStore on the same
server and prefix loads it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from statebits._dependencies import import_optional
from statebits.aio import AsyncStatebit
from statebits.core.canonical import freeze_mapping
from statebits.core.errors import IntegrityError, StatebitError, StoreError, ValidationError, invalid_parameter
from statebits.core.history import History, extend_history, genesis_checksum
from statebits.core.statebit import Statebit, creation_hooks_suspended
from statebits.core.transition import StateTransition
from statebits.stores.base import MAIN, HistoryColumns, StoreConflictError, StoredStatebit, find_invalid_record, history_columns
from statebits.stores.redis import (
    APPEND_SCRIPT,
    CREATE_SCRIPT,
    DEFAULT_URL,
    RELEASE_SCRIPT,
    RedisKeys,
    append_arguments,
    decode_entries,
    decode_genesis,
    describe_url,
    encode_genesis,
)

__all__ = ["DistributedStatebit"]

logger = logging.getLogger(__name__)

_FEATURE = "DistributedStatebit"
# Delays in seconds between attempts of the pub/sub listener after a Redis error.
_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0
# How long a writer that lost the compare-and-set twice holds the turn to append (ms).
_TURN_MS = 1000
# Mean pause in seconds before appending again while another writer holds the turn.
_BUSY_WAIT = 0.001
# Seconds of waiting for other writers' turns after which an append raises ConcurrencyError.
_MAX_BUSY = 10.0


class DistributedStatebit(AsyncStatebit):
    """A statebit whose history lives in Redis and is shared by every process that connects.

    ``await connect()`` loads the stored history and verifies its hash chain,
    or stores a new statebit when the identity is not in Redis yet. Each
    ``await transition(...)`` is appended with a compare-and-set on the
    stored step count and head checksum, so two processes writing to one
    identity never lose an update.

    When another writer appended first, the append is undone in memory, the
    other writer's transitions are fetched and verified, and the change is
    recorded again on top of them, at most ``max_retries`` more times. From
    the second attempt on, a conflict also claims the turn to append for up
    to one second, so a faster writer cannot starve this one. After the last
    attempt, :class:`~statebits.ConcurrencyError` is raised and the statebit
    contains the fetched transitions but not its own. ``rollback()`` and
    ``merge()`` depend on the newest transitions, so they are not retried:
    a conflict raises ConcurrencyError at once.

    Other processes' transitions arrive through ``await sync()``, or, with
    ``auto_sync=True``, through a background task that listens on the
    identity's pub/sub channel. Observers are called for those transitions
    as well as for local ones.

    Parameters
    ----------
    identity : str
        Name of the shared value; every process uses the same one.
    redis_url : str, default "redis://localhost:6379"
        Server URL (``redis://``, ``rediss://`` or ``unix://``).
    initial_value : Any, default None
        Initial value of a new statebit. When the identity is already stored
        it must be None or equal to the stored initial value.
    created_at : datetime or str, optional
        Creation time of a new statebit; defaults to the active clock.
    prefix : str, default "sb"
        First part of every Redis key, as in RedisStore.
    max_retries : int, default 10
        How many times ``transition()`` and ``batch_transition()`` record
        again after another writer appended first.
    auto_sync : bool, default False
        Listen for other processes' appends in a background task while
        connected.
    timeout : float, default 5.0
        Seconds to wait for the connection and for each reply.
    allow_pickle : bool, default False
        Values with no JSON form are stored as pickles. Loading one runs code
        from the server's data, so it must be allowed explicitly.

    Attributes
    ----------
    conflicts : int
        Number of appends of this object that found another writer's
        transitions first (retried or raised).

    Raises
    ------
    MissingDependencyError
        When redis-py is not installed (the ``distributed`` extra).

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     async with DistributedStatebit("shared_mood", initial_value="neutral") as mood:
    ...         await mood.transition("happy", "Distributed update")
    ...         return mood.value
    >>> asyncio.run(main())  # doctest: +SKIP
    'happy'
    """

    def __init__(
        self,
        identity: str,
        redis_url: str = DEFAULT_URL,
        initial_value: Any = None,
        *,
        created_at: Any = None,
        prefix: str = "sb",
        max_retries: int = 10,
        auto_sync: bool = False,
        timeout: float = 5.0,
        allow_pickle: bool = False,
    ) -> None:
        import_optional("redis.asyncio", feature=_FEATURE)
        if not isinstance(redis_url, str):
            raise invalid_parameter("redis_url", redis_url, "a redis://, rediss:// or unix:// URL", _FEATURE)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise invalid_parameter("max_retries", max_retries, "an integer >= 0", _FEATURE)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise invalid_parameter("timeout", timeout, "a number of seconds > 0", _FEATURE)
        for name, flag in (("auto_sync", auto_sync), ("allow_pickle", allow_pickle)):
            if not isinstance(flag, bool):
                raise invalid_parameter(name, flag, "True or False", _FEATURE)
        keys = RedisKeys(prefix)
        super().__init__(identity, initial_value, created_at=created_at)

        self.redis_url = redis_url
        self.prefix = prefix
        self.max_retries = max_retries
        self.auto_sync = auto_sync
        self.timeout = float(timeout)
        self.allow_pickle = allow_pickle
        self.conflicts = 0
        self._keys = keys.statebit(identity, MAIN)
        self._index_key = keys.index
        self._initial_given = initial_value is not None
        self._token = uuid.uuid4().hex  # identifies this writer's claims on the turn to append
        self._client: Any = None
        self._append_script: Any = None
        self._release_script: Any = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"DistributedStatebit(identity={self.identity!r}, value={self.value!r}, "
            f"transitions={len(self.history)}, redis_url={describe_url(self.redis_url)!r}, connected={self.connected})"
        )

    @property
    def connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._client is not None

    # -- connection ------------------------------------------------------------------

    async def connect(self) -> "DistributedStatebit":
        """Connect to Redis, then load and verify the stored history or store a new statebit.

        Connecting again after :meth:`disconnect` fetches the transitions
        appended in the meantime. Calling it while connected does nothing.

        Returns
        -------
        DistributedStatebit
            self.

        Raises
        ------
        StoreError
            When the server cannot be reached; the message names the URL.
        IntegrityError
            When a stored record was changed; ``step`` is the first bad step
            (0 for the genesis record).
        ValidationError
            When ``initial_value`` differs from the stored initial value.
        """
        async with self._get_async_lock():
            if self._client is not None:
                return self
            redis_asyncio = import_optional("redis.asyncio", feature=_FEATURE)
            url = describe_url(self.redis_url)
            try:
                client = redis_asyncio.Redis.from_url(
                    self.redis_url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout
                )
            except ValueError as exc:
                raise invalid_parameter("redis_url", url, f"a redis://, rediss:// or unix:// URL ({exc})", _FEATURE) from None

            pubsub = None
            try:
                await client.ping()
                if self.auto_sync:
                    # Subscribe before loading, so no append between the two goes unnoticed.
                    pubsub = client.pubsub()
                    await pubsub.subscribe(self._keys.channel)
                self._client = client
                self._append_script = client.register_script(APPEND_SCRIPT)
                self._release_script = client.register_script(RELEASE_SCRIPT)
                await self._load_or_create(client)
            except BaseException as exc:
                self._client = None
                self._append_script = None
                self._release_script = None
                await _close_quietly(pubsub, client)
                if isinstance(exc, _redis_error()):
                    raise StoreError(
                        f"cannot connect {self.identity!r} to Redis at {url}: {exc}; start redis-server there "
                        "or pass the redis_url of a running server"
                    ) from exc
                raise

            if pubsub is not None:
                self._pubsub = pubsub
                self._listener = asyncio.create_task(self._listen(pubsub), name=f"statebits sync of {self.identity}")
            logger.info("connected %r to Redis at %s with %d transitions", self.identity, url, len(self.history))
            return self

    async def disconnect(self) -> None:
        """Stop the pub/sub listener and close the connection; later appends raise StoreError.

        The statebit keeps its history in memory and can connect again.
        """
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        async with self._get_async_lock():
            client, self._client = self._client, None
            pubsub, self._pubsub = self._pubsub, None
            self._append_script = None
            self._release_script = None
            if client is None:
                return
            await _close_quietly(pubsub, client)
        logger.info("disconnected %r from Redis at %s", self.identity, describe_url(self.redis_url))

    async def __aenter__(self) -> "DistributedStatebit":
        return await self.connect()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.disconnect()

    async def _load_or_create(self, client: Any) -> None:
        """Load the stored history into this object, or store this statebit when it is missing."""
        history = self._history
        record = await client.hget(self._keys.meta, "record")
        if record is None and len(history):
            raise StoreError(
                f"Redis at {describe_url(self.redis_url)} has no statebit {self.identity!r}, but this object has "
                f"{len(history)} transitions, so the server lost its data; save them with "
                "RedisStore(redis_url).save(statebit) or create a new DistributedStatebit"
            )
        if record is None:
            described = StoredStatebit(
                identity=self.identity,
                branch=MAIN,
                initial_value=history.initial_value,
                genesis=history.genesis,
                created_at_ns=self._created_ns,
                lineage=self.lineage,
            )
            create = client.register_script(CREATE_SCRIPT)
            arguments = [encode_genesis(described), history.genesis.hex(), self._keys.stem]
            created, record = await create(keys=[self._keys.meta, self._index_key], args=arguments)
            if int(created):
                logger.info("stored new statebit %r in Redis at %s", self.identity, describe_url(self.redis_url))
                return
            # Another process created it between the read and the script: load that one.

        stored, _ = decode_genesis(self.identity, record, self.allow_pickle)
        self._check_stored_genesis(stored)
        if len(history):
            await self._pull()
            return

        async with client.pipeline(transaction=True) as pipe:
            pipe.hmget(self._keys.meta, ["count", "head"])
            pipe.lrange(self._keys.log, 0, -1)
            (count, head), entries = await pipe.execute()
        loaded = History(self.identity, stored.initial_value)
        merged_heads: set[str] = set()
        self._add_remote(loaded, count, head, entries, merged_heads)
        with self._lock:
            self._history = loaded
            self._created_ns = stored.created_at_ns
            self.lineage = stored.lineage
            self._merged_heads = merged_heads

    def _check_stored_genesis(self, stored: StoredStatebit) -> None:
        expected = genesis_checksum(stored.identity, stored.initial_value)
        if stored.identity != self.identity or expected != stored.genesis:
            raise IntegrityError(
                f"{self.identity}: the genesis record (step 0) in Redis does not match its checksum: stored "
                f"{stored.genesis.hex()}, recomputed {expected.hex()}; the identity or initial value was changed "
                "after it was written",
                step=0,
            )
        if stored.genesis == self._history.genesis:
            return
        if len(self._history):
            raise StoreConflictError(
                f"the statebit {self.identity!r} in Redis at {describe_url(self.redis_url)} has initial value "
                f"{stored.initial_value!r}, not {self.initial_value!r} as this object's history, so the Redis data "
                "was replaced; create a new DistributedStatebit to load it"
            )
        if self._initial_given:
            raise ValidationError(
                f"statebit {self.identity!r} is already stored in Redis at {describe_url(self.redis_url)} with "
                f"initial value {stored.initial_value!r}, not {self.initial_value!r}; pass initial_value=None "
                "or the stored value, or use another identity"
            )

    # -- recording -------------------------------------------------------------------------

    async def transition(  # type: ignore[override]
        self,
        new_value: Any,
        reason: str,
        confidence: float = 1.0,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        caused_by: Any = None,
    ) -> StateTransition:
        """Record a change and append it to the shared history; see :meth:`Statebit.transition`.

        Raises
        ------
        StoreError
            When the statebit is not connected or Redis fails; nothing is recorded.
        ConcurrencyError
            When other writers appended first ``max_retries + 1`` times in a row.
        """
        async with self._get_async_lock():
            return await self._append(
                lambda: self._record(new_value, reason, confidence, tags, metadata, timestamp, caused_by),
                self.max_retries,
                "transition()",
            )

    async def batch_transition(self, transitions: Sequence[Mapping[str, Any]]) -> list[StateTransition]:  # type: ignore[override]
        """Record several transitions and append them as one unit; see :meth:`Statebit.batch_transition`."""
        if isinstance(transitions, Iterable) and not isinstance(transitions, (str, bytes, Mapping)):
            transitions = list(transitions)  # a retry reads the items again
        async with self._get_async_lock():
            return await self._append(
                lambda: Statebit.batch_transition(self, transitions), self.max_retries, "batch_transition()"
            )

    async def rollback(self, steps: int = 1, reason: str | None = None, **kwargs: Any) -> StateTransition:  # type: ignore[override]
        """Return to an earlier value as a new shared transition; see :meth:`Statebit.rollback`.

        Not retried on a conflict, because the value it returns to depends
        on the newest transitions.
        """
        async with self._get_async_lock():
            return await self._append(lambda: Statebit.rollback(self, steps, reason, **kwargs), 0, "rollback()")

    async def merge(  # type: ignore[override]
        self, other: Statebit, strategy: str = "latest", resolver: Any = None, reason: str | None = None
    ) -> StateTransition | None:
        """Merge a related statebit and append the merge transition; see :meth:`Statebit.merge`.

        Not retried on a conflict, because the merged value depends on the
        newest transitions.
        """
        async with self._get_async_lock():
            return await self._append(lambda: Statebit.merge(self, other, strategy, resolver, reason), 0, "merge()")

    async def _append(self, record: Callable[[], Any], retries: int, action: str) -> Any:
        """Record locally with ``record()``, then append the new transitions with the compare-and-set script.

        The caller holds the asyncio lock. A failed or rejected append is
        undone in memory before the error is raised.
        """
        script = self._require_connection(action)
        attempt = 0
        busy_since: float | None = None
        claimed = False
        try:
            while True:
                with self._lock:
                    start = len(self._history)
                    # Observers hear of the transitions once Redis has stored them.
                    observers, self._observers = self._observers, []
                    try:
                        result = record()
                    finally:
                        self._observers = observers
                    stop = len(self._history)
                    if stop == start:
                        return result
                    columns = history_columns(self._history, start, stop)
                    expected_head = self._history.checksum_of(start - 1)
                # From the second attempt on, a conflict claims the turn, so that a faster writer cannot starve this one.
                claim_ms = _TURN_MS if attempt else 0
                claimed = claimed or bool(claim_ms)
                keys, arguments = append_arguments(
                    self._keys, self.identity, MAIN, start, expected_head, columns,
                    conflict_from=max(start - 1, 0), token=self._token, claim_ms=claim_ms,
                )

                # NOTE: when the task is cancelled or the connection drops during this call, the append
                # may be stored though it is undone here. The next sync() or append fetches it.
                try:
                    reply = await script(keys=keys, args=arguments)
                except BaseException as exc:
                    self._undo(start)
                    if isinstance(exc, _redis_error()):
                        raise StoreError(
                            f"cannot append step(s) {start + 1}-{stop} of {self.identity!r} to Redis at "
                            f"{describe_url(self.redis_url)}: {exc}; nothing was recorded"
                        ) from exc
                    raise

                status = _text(reply[0])
                if status in ("ok", "stored"):
                    claimed = False  # the script gave the turn up with the append
                    for transition in self._history[start:stop]:
                        self._notify(transition)
                    return result
                self._undo(start)
                if status == "missing":
                    raise StoreError(
                        f"cannot append step {start + 1} to {self.identity!r}: it is no longer stored in Redis at "
                        f"{describe_url(self.redis_url)}, so nothing was recorded; connect a new DistributedStatebit"
                    )
                fetched = self._apply_pulled(reply[1], reply[2], reply[3:])

                if status == "busy":
                    # Another writer holds the turn for at most _TURN_MS; wait for it without counting a retry.
                    now = time.monotonic()
                    busy_since = now if busy_since is None else busy_since
                    if now - busy_since > _MAX_BUSY:
                        raise StoreConflictError(
                            f"cannot append step {start + 1} to {self.identity!r}: other writers held the turn to "
                            f"append for {now - busy_since:.1f} s; call {action} again"
                        )
                    await asyncio.sleep(random.uniform(_BUSY_WAIT / 2, _BUSY_WAIT * 2))
                    continue

                self.conflicts += 1
                if attempt >= retries:
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    raise StoreConflictError(
                        f"cannot append step {start + 1} to {self.identity!r}{tried}: other writers appended to "
                        f"Redis first. This statebit now contains their {len(fetched)} newest transitions but not "
                        f"this {action} call; call it again"
                    )
                attempt += 1
                logger.debug(
                    "retrying %s on %r after %d transitions from other writers (attempt %d of %d)",
                    action, self.identity, len(fetched), attempt, retries,
                )
        finally:
            if claimed and self._release_script is not None:
                with contextlib.suppress(Exception):
                    await self._release_script(keys=[self._keys.turn], args=[self._token])

    def _undo(self, start: int) -> None:
        with self._lock:
            self._history.truncate(start)

    def _require_connection(self, action: str) -> Any:
        if self._append_script is None:
            raise StoreError(
                f"DistributedStatebit {self.identity!r} is not connected to Redis, so {action} cannot record; "
                "await connect() first or use `async with`"
            )
        return self._append_script

    # -- receiving other writers' transitions ------------------------------------------------

    async def sync(self) -> list[StateTransition]:
        """Fetch, verify and add the transitions other processes appended since the last fetch.

        Returns
        -------
        list of StateTransition
            The new transitions, oldest first; observers are called for each.

        Raises
        ------
        StoreError
            When not connected, or when Redis contains fewer transitions than
            this statebit (the server lost its data).
        StoreConflictError
            When the stored history no longer extends this one.
        IntegrityError
            When a fetched record does not verify; nothing is added.
        """
        async with self._get_async_lock():
            self._require_connection("sync()")
            return await self._pull()

    async def _pull(self) -> list[StateTransition]:
        """Fetch the stored transitions after this history's head; the caller holds the asyncio lock."""
        first = max(len(self._history) - 1, 0)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hmget(self._keys.meta, ["count", "head"])
            pipe.lrange(self._keys.log, first, -1)
            (count, head), entries = await pipe.execute()
        return self._apply_pulled(count, head, entries)

    def _apply_pulled(self, count: Any, head: Any, entries: Sequence[bytes]) -> list[StateTransition]:
        """Add fetched entries to this history and notify observers.

        ``entries`` start at the newest step this history contains (or step 1
        for an empty history), as :meth:`_pull` and the conflict reply of the
        append script return them.
        """
        with self._lock:
            start = len(self._history)
            merged_heads: set[str] = set()
            self._add_remote(self._history, count, head, entries, merged_heads)
            self._merged_heads |= merged_heads
            new = self._history[start:]
        for transition in new:
            self._notify(transition)
        return new

    def _add_remote(self, history: History, count: Any, head: Any, entries: Sequence[bytes], merged_heads: set[str]) -> None:
        """Verify fetched entries against ``history`` and extend it, or raise and leave it unchanged."""
        url = describe_url(self.redis_url)
        size = len(history)
        if count is None or head is None:
            raise StoreError(
                f"statebit {self.identity!r} is no longer stored in Redis at {url} (its meta hash "
                f"{self._keys.meta} is missing); connect a new DistributedStatebit"
            )
        count = int(count)
        if count < size:
            raise StoreError(
                f"Redis at {url} contains {count} transitions of {self.identity!r} but this statebit has {size}, "
                "so the server lost data; connect a new DistributedStatebit to load what it contains"
            )
        if size:
            overlap = decode_entries(self.identity, entries[:1], size, self.allow_pickle) if entries else None
            if overlap is None or overlap.checksums != history.checksum_of(size - 1):
                raise StoreConflictError(
                    f"the history of {self.identity!r} in Redis at {url} differs from this one at step {size}, "
                    "so the Redis data was replaced; connect a new DistributedStatebit to load it"
                )
            entries = entries[1:]

        if len(entries) != count - size:
            step = size + min(len(entries), count - size) + 1
            raise IntegrityError(
                f"{self.identity}: stored record at step {step} is invalid: Redis counts {count} steps but "
                f"contains {size + len(entries)} records; it was changed after it was written",
                step=step,
            )
        columns = decode_entries(self.identity, entries, size + 1, self.allow_pickle)
        newest = columns.checksums[-32:] if len(columns) else history.head_checksum()
        if _text(head) != newest.hex():
            raise IntegrityError(
                f"{self.identity}: the head checksum in {self._keys.meta} ({_text(head)}) differs from the checksum "
                f"of step {count} ({newest.hex()}); it was changed after it was written",
                step=count,
            )
        _extend_verified(history, columns, size + 1, merged_heads)

    async def _listen(self, pubsub: Any) -> None:
        """Fetch new transitions whenever another process announces an append, until cancelled."""
        url = describe_url(self.redis_url)
        delay = _FIRST_DELAY
        missed = False
        last_error = ""
        logger.info("listening for appends to %r on %s at %s", self.identity, self._keys.channel, url)
        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    delay = _FIRST_DELAY
                    if message is None and not missed:
                        continue
                    if missed or self._announces_new(message):
                        async with self._get_async_lock():
                            if self._client is None:
                                return
                            await self._pull()
                        missed = False
                        last_error = ""
                except _redis_error() as exc:
                    # Messages sent while the connection was down are lost, so the next round fetches.
                    missed = True
                    logger.warning(
                        "pub/sub of %r at %s failed (%s); retrying in %.1f s", self.identity, url, exc, delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_DELAY)
                except StatebitError as exc:
                    # The same broken record fails every fetch, so only a new error is logged at ERROR.
                    level = logging.DEBUG if str(exc) == last_error else logging.ERROR
                    last_error = str(exc)
                    logger.log(level, "cannot add other writers' transitions to %r from %s: %s", self.identity, url, exc)
        except Exception:
            logger.exception("the pub/sub listener of %r stopped after an unexpected error", self.identity)
        finally:
            logger.info("stopped listening for appends to %r", self.identity)

    def _announces_new(self, message: Any) -> bool:
        """Return whether a pub/sub message announces steps that this history lacks."""
        try:
            data = json.loads(message["data"])
            return data.get("branch") == MAIN and int(data["count"]) > len(self._history)
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("unreadable pub/sub message on %s: %r; fetching to be safe", self._keys.channel, message)
            return True

    # -- local copies ---------------------------------------------------------------------------

    def fork(self, reason: str, at: int | None = None, branch: str | None = None) -> AsyncStatebit:  # type: ignore[override]
        """Branch off a local what-if copy; see :meth:`Statebit.fork`.

        The fork is an :class:`~statebits.AsyncStatebit` kept in this process
        only. Merge it back with ``await shared.merge(fork)``.
        """
        from statebits.core.merging import fork

        with self._lock:
            # merging.fork builds the child with the source's class and constructor,
            # which for this class would read initial_value as redis_url.
            with creation_hooks_suspended():
                source = AsyncStatebit(self.identity, self.initial_value, created_at=self._created_ns)
            source._history = self._history
            source.lineage = self.lineage
            source._fork_count = self._fork_count
            source._merged_heads = self._merged_heads
            child = fork(source, reason, at, branch)
            self._fork_count = source._fork_count
        child.parent = self
        return child

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], allow_pickle: bool = False) -> "Statebit":
        """Raise StatebitError: a shared history is loaded from Redis by :meth:`connect`."""
        raise StatebitError(
            "DistributedStatebit.from_dict() is not supported because a shared history is loaded from Redis by "
            "connect(); use Statebit.from_dict() or AsyncStatebit.from_dict() for a local copy"
        )

    @classmethod
    def from_frame(cls, frame: Any) -> "Statebit":
        """Raise StatebitError: a shared history is loaded from Redis by :meth:`connect`."""
        raise StatebitError(
            "DistributedStatebit.from_frame() is not supported because a shared history is loaded from Redis by "
            "connect(); use Statebit.from_frame() for a local copy"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # Connections belong to one process and event loop; a copy starts disconnected.
        for name in ("_client", "_append_script", "_release_script", "_pubsub", "_listener"):
            state[name] = None
        state["_token"] = uuid.uuid4().hex  # a copy is another writer
        return state


def _extend_verified(history: History, columns: HistoryColumns, first_step: int, merged_heads: set[str]) -> None:
    """Validate fetched records and append them to ``history``, verifying each checksum.

    Raises IntegrityError naming the first bad step and leaves ``history``
    unchanged.
    """
    identity = history.identity
    problem = find_invalid_record(columns)
    if problem is not None:
        position, detail = problem
        raise IntegrityError(
            f"{identity}: stored record at step {first_step + position} is invalid: {detail}; statebits never "
            "writes such a record, so it was changed after it was written",
            step=first_step + position,
        )
    if not len(columns):
        return
    if len(history) and (
        columns.timestamps[0] < history.last_timestamp_ns or columns.recorded[0] < history.last_recorded_ns
    ):
        raise IntegrityError(
            f"{identity}: stored record at step {first_step} is invalid: its times are earlier than those of "
            f"step {first_step - 1}; statebits never writes such a record",
            step=first_step,
        )
    metadata = {position: freeze_mapping(item) for position, item in columns.metadata.items()}
    extend_history(
        history,
        columns.values,
        columns.reasons,
        columns.confidences,
        columns.timestamps,
        columns.recorded,
        columns.tags,
        metadata,
        columns.causes,
        expected=columns.checksums,
    )
    for item in metadata.values():
        if item and "merged_head" in item:
            merged_heads.add(item["merged_head"])


def _redis_error() -> type[Exception]:
    return import_optional("redis", feature=_FEATURE).RedisError


async def _close_quietly(pubsub: Any, client: Any) -> None:
    """Close a pub/sub object and a client, logging instead of raising errors while closing."""
    for closable in (pubsub, client):
        if closable is None:
            continue
        # redis-py 4.x has only close(); 5.x added aclose() and deprecated close().
        close = getattr(closable, "aclose", None) or closable.close
        try:
            await close()
        except Exception as exc:  # the connection may already be broken; closing must not mask the cause
            logger.debug("closing %r failed: %s", closable, exc)


def _text(item: bytes | str) -> str:
    return item.decode("utf-8") if isinstance(item, bytes) else item
