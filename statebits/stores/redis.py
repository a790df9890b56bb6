"""RedisStore: histories kept in Redis and shared by every process that reaches the server.

Keys, for the default prefix ``sb``::

    sb:{identity}:branch:meta   hash: "record" (genesis record, JSON), "count"
                                (stored steps, a fork's shared prefix included)
                                and "head" (hex checksum of step "count")
    sb:{identity}:branch:log    list: one JSON entry per own transition, oldest first
    sb:{identity}:branch:turn   string, expiring: the DistributedStatebit writer
                                whose turn it is to append (see APPEND_SCRIPT)
    sb:{identity}:events        pub/sub channel: one message per append to any branch
    sb:statebits                set: the key stem (``sb:{identity}:branch``) of every statebit
    sb:collections              set: names of saved collections
    sb:collection:name          set: key stems of one collection's members

Identity, branch and collection names are percent-encoded where they contain
``%``, ``{``, ``}``, ``:``, a space or a character outside printable ASCII,
so every name maps to its own keys. The braces make the identity the hash
tag: Redis Cluster keeps every key of one identity, forks included, in one
slot, and the append script only touches keys of that slot.

An append is one Lua script: it compares the stored step count and head
checksum with those the writer extends and, only when both match, pushes the
entries, moves the head and publishes on the identity's channel. A writer
that extends an old head gets :class:`StoreConflictError`. Saving and
creating statebits use WATCH/MULTI/EXEC instead, because they read several
keys before they write.

The helpers for keys, entries and scripts are shared with
:class:`statebits.distributed.DistributedStatebit`, which writes the same
layout through ``redis.asyncio``.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from statebits._dependencies import import_optional
from statebits.core.canonical import from_jsonable, to_jsonable
from statebits.core.errors import IntegrityError, StoreError, ValidationError, invalid_parameter
from statebits.core.statebit import Statebit
from statebits.core.transition import CauseRef
from statebits.stores.base import MAIN, HistoryColumns, Store, StoreConflictError, StoredStatebit, history_columns

__all__ = [
    "RedisStore",
    "RedisKeys",
    "StatebitKeys",
    "APPEND_SCRIPT",
    "CREATE_SCRIPT",
    "RELEASE_SCRIPT",
    "DEFAULT_URL",
    "encode_entries",
    "decode_entries",
    "encode_genesis",
    "decode_genesis",
    "append_arguments",
    "event_message",
    "describe_url",
]

DEFAULT_URL = "redis://localhost:6379"
RECORD_FORMAT = "statebits-redis/1"
# Characters kept as they are in key names, besides letters, digits and "_.-~".
_SAFE = "!$&'()*+,;=@/<>?[]^|#"
# Entries pushed per RPUSH, which keeps Lua's unpack() below its stack limit.
_PUSH_CHUNK = 1000

# KEYS[1] meta hash, KEYS[2] own log list, KEYS[3] turn key.
# ARGV[1] expected count, ARGV[2] expected head, ARGV[3] new count,
# ARGV[4] new head, ARGV[5] channel, ARGV[6] message, ARGV[7] position in the
# log from which a rejection lists the stored entries (-1 for none), ARGV[8]
# writer token ("" ignores turns), ARGV[9] milliseconds to hold the turn
# after a conflict (0 for none), ARGV[10...] the entries.
#
# A writer that keeps losing the compare-and-set to a faster writer claims
# the turn: while the turn key holds another writer's token, appends from
# writers with a token are rejected as "busy", so the claimant's next
# attempt succeeds. The key expires by itself if the claimant stops.
APPEND_SCRIPT = """
local state = redis.call('HMGET', KEYS[1], 'count', 'head')
if not state[1] then
  return {'missing'}
end
if state[1] == ARGV[3] and state[2] == ARGV[4] then
  -- A retried call whose first attempt was stored before its reply was lost.
  return {'stored'}
end
local token = ARGV[8]
local holder = false
if token ~= '' then
  holder = redis.call('GET', KEYS[3])
end
local status = false
if holder and holder ~= token then
  status = 'busy'
elseif state[1] ~= ARGV[1] or state[2] ~= ARGV[2] then
  status = 'conflict'
  if token ~= '' and tonumber(ARGV[9]) > 0 then
    redis.call('SET', KEYS[3], token, 'NX', 'PX', ARGV[9])
  end
end
if status then
  local reply = {status, state[1], state[2]}
  local first = tonumber(ARGV[7])
  if first >= 0 then
    for _, entry in ipairs(redis.call('LRANGE', KEYS[2], first, -1)) do
      reply[#reply + 1] = entry
    end
  end
  return reply
end
for low = 10, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, low, math.min(low + 999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'count', ARGV[3], 'head', ARGV[4])
if holder == token then
  redis.call('DEL', KEYS[3])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {'ok'}
"""

# KEYS[1] turn key, ARGV[1] writer token: give up a claimed turn.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] meta hash, KEYS[2] index set. ARGV[1] genesis record, ARGV[2]
# genesis checksum, ARGV[3] key stem. Returns {1, record} when it created
# the statebit and {0, stored record} when it existed.
CREATE_SCRIPT = """
if redis.call('HSETNX', KEYS[1], 'record', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'count', '0', 'head', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
  return {1, ARGV[1]}
end
return {0, redis.call('HGET', KEYS[1], 'record')}
"""


# -- keys -----------------------------------------------------------------------------


def _escape(name: str) -> str:
    return urllib.parse.quote(name.encode("utf-8", "surrogatepass"), safe=_SAFE)


def _unescape(text: str) -> str:
    return urllib.parse.unquote_to_bytes(text).decode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class StatebitKeys:
    """The Redis keys of one stored statebit (identity and branch)."""

    stem: str
    meta: str
    log: str
    turn: str
    channel: str


class RedisKeys:
    """The key layout under one prefix (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise invalid_parameter("prefix", prefix, "a non-empty string without '{' or '}'", "RedisStore")
        self.prefix = prefix
        self.index = f"{prefix}:statebits"
        self.collections = f"{prefix}:collections"

    def statebit(self, identity: str, branch: str) -> StatebitKeys:
        tag = f"{self.prefix}:{{{_escape(identity)}}}"
        stem = f"{tag}:{_escape(branch)}"
        return StatebitKeys(stem=stem, meta=f"{stem}:meta", log=f"{stem}:log", turn=f"{stem}:turn", channel=f"{tag}:events")

    def channel(self, identity: str) -> str:
        return f"{self.prefix}:{{{_escape(identity)}}}:events"

    def collection(self, name: str) -> str:
        return f"{self.prefix}:collection:{_escape(name)}"

    def collection_name(self, member: bytes | str) -> str:
        return _unescape(_text(member))

    def escaped(self, name: str) -> str:
        return _escape(name)


def describe_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username or ''}:***@{host}"
    query = parts.query
    if "password" in query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = urllib.parse.urlencode([(key, "***" if key == "password" else value) for key, value in pairs])
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _client_url(client: Any) -> str:
    """Describe where a client connects, from its connection pool's settings."""
    try:
        settings = client.connection_pool.connection_kwargs
    except AttributeError:
        return repr(client)
    if settings.get("path"):
        return f"unix://{settings['path']}?db={settings.get('db', 0)}"
    return f"redis://{settings.get('host', 'localhost')}:{settings.get('port', 6379)}/{settings.get('db', 0)}"


def _text(item: bytes | str) -> str:
    return item.decode("utf-8") if isinstance(item, bytes) else item


# -- genesis records ----------------------------------------------------------------------


def encode_genesis(stored: StoredStatebit) -> str:
    """Encode the genesis record of ``stored`` as the JSON text kept in its meta hash."""
    base_branch = stored.base.branch if stored.base is not None and stored.base_len else None
    return json.dumps(
        {
            "format": RECORD_FORMAT,
            "identity": to_jsonable(stored.identity),
            "branch": to_jsonable(stored.branch),
            "initial_value": to_jsonable(stored.initial_value),
            "genesis": stored.genesis.hex(),
            "created_at_ns": stored.created_at_ns,
            "lineage": stored.lineage,
            "fork_point": stored.fork_point,
            "fork_reason": None if stored.fork_reason is None else to_jsonable(stored.fork_reason),
            "base_branch": None if base_branch is None else to_jsonable(base_branch),
            "base_len": stored.base_len if base_branch is not None else 0,
        },
        separators=(",", ":"),
    )


def decode_genesis(key: str, text: bytes | str, allow_pickle: bool) -> tuple[StoredStatebit, str | None]:
    """Decode a genesis record; returns the record without its base, and the base's branch.

    Raises IntegrityError (step 0) when the record is not valid.
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError(f"expected format {RECORD_FORMAT!r}")
        identity = from_jsonable(data["identity"])
        branch = from_jsonable(data["branch"])
        base_branch = None if data["base_branch"] is None else from_jsonable(data["base_branch"])
        fork_reason = None if data["fork_reason"] is None else from_jsonable(data["fork_reason"])
        stored = StoredStatebit(
            identity=identity,
            branch=branch,
            initial_value=from_jsonable(data["initial_value"], allow_pickle),
            genesis=bytes.fromhex(data["genesis"]),
            created_at_ns=data["created_at_ns"],
            lineage=data["lineage"],
            fork_point=data["fork_point"],
            fork_reason=fork_reason,
            base_len=data["base_len"],
        )
        checks = [
            (identity, str), (branch, str), (stored.created_at_ns, int), (stored.lineage, str), (stored.base_len, int),
        ]
        if any(type(item) is not kind for item, kind in checks) or len(stored.genesis) != 32:
            raise ValueError("a field has the wrong type")
    except ValidationError as exc:
        raise ValidationError(f"{key}: cannot load the initial value: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        raise IntegrityError(f"{key}: the genesis record in Redis is invalid ({exc}); it was changed after it was written", step=0) from None
    return stored, base_branch


# -- transition entries ---------------------------------------------------------------------


def encode_entries(columns: HistoryColumns) -> list[str]:
    """Encode transition records as JSON entries, one per transition.

    An entry is ``[timestamp_ns, recorded_at_ns, confidence, value, reason,
    tags, metadata, caused_by, checksum]``. Values, reasons, tags and
    metadata go through :func:`~statebits.core.canonical.to_jsonable`, which
    keeps their exact type. ``tags``, ``metadata`` and ``caused_by`` are null
    when empty. ``checksum`` is hex.
    """
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    reasons = columns.reasons
    shared_reason = to_jsonable(reasons) if isinstance(reasons, str) else None
    tags = columns.tags
    checksums = columns.checksums
    entries = []
    for position in range(len(columns)):
        record_tags = tags[position] if tags is not None else ()
        metadata = columns.metadata.get(position)
        causes = columns.causes.get(position)
        entries.append(
            dumps(
                [
                    columns.timestamps[position],
                    columns.recorded[position],
                    columns.confidences[position],
                    to_jsonable(columns.values[position]),
                    shared_reason if shared_reason is not None else to_jsonable(reasons[position]),
                    [to_jsonable(tag) for tag in record_tags] if record_tags else None,
                    to_jsonable(dict(metadata)) if metadata else None,
                    [to_jsonable(ref.as_dict()) for ref in causes] if causes else None,
                    checksums[32 * position : 32 * position + 32].hex(),
                ]
            )
        )
    return entries


def decode_entries(key: str, entries: Sequence[bytes | str], first_step: int, allow_pickle: bool) -> HistoryColumns:
    """Decode JSON entries written by :func:`encode_entries` into columns.

    ``first_step`` is the step of the first entry, used in messages. An entry
    that cannot be decoded raises IntegrityError naming its step; a pickled
    value raises ValidationError unless ``allow_pickle``.
    """
    rows = _parse_entries(key, entries, first_step)
    count = len(rows)
    values: list[Any] = [None] * count
    reasons: list[Any] = [None] * count
    tags: list[tuple[str, ...]] = [()] * count
    metadata: dict[int, Any] = {}
    causes: dict[int, tuple[CauseRef, ...]] = {}
    checksums = bytearray()
    for position, row in enumerate(rows):
        step = first_step + position
        try:
            if not isinstance(row, list) or len(row) != 9:
                raise ValueError("expected a list of 9 fields")
            values[position] = from_jsonable(row[3], allow_pickle)
            reasons[position] = from_jsonable(row[4])
            if row[5] is not None:
                items = tuple(from_jsonable(item) for item in row[5])
                if not items or not all(type(item) is str and item for item in items):
                    raise ValueError(f"invalid tags {row[5]!r}")
                tags[position] = items
            if row[6] is not None:
                decoded = from_jsonable(row[6], allow_pickle)
                if not isinstance(decoded, dict) or not decoded:
                    raise ValueError(f"metadata is a {type(decoded).__name__}, not a non-empty object")
                metadata[position] = decoded
            if row[7] is not None:
                causes[position] = tuple(CauseRef(**from_jsonable(item)) for item in row[7])
            checksum = bytes.fromhex(row[8])
            if len(checksum) != 32:
                raise ValueError("the checksum is not 32 bytes")
            checksums += checksum
        except ValidationError as exc:
            raise ValidationError(f"{key}: cannot load step {step}: {exc}") from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError, binascii.Error) as exc:
            raise _bad_entry(key, step, f"it cannot be decoded ({exc})") from None
    return HistoryColumns(
        values=values,
        reasons=reasons,
        confidences=[row[2] for row in rows],
        timestamps=[row[0] for row in rows],
        recorded=[row[1] for row in rows],
        tags=tags if any(tags) else None,
        metadata=metadata,
        causes=causes,
        checksums=bytes(checksums),
    )


def _parse_entries(key: str, entries: Sequence[bytes | str], first_step: int) -> list[Any]:
    """Parse every entry with one json.loads call, or find the first entry that is not JSON."""
    if not entries:
        return []
    joined = b",".join(item if isinstance(item, bytes) else item.encode("utf-8") for item in entries)
    try:
        return json.loads(b"[" + joined + b"]")
    except ValueError:
        pass
    rows = []
    for position, entry in enumerate(entries):
        try:
            rows.append(json.loads(entry))
        except ValueError as exc:
            raise _bad_entry(key, first_step + position, f"it is not JSON ({exc})") from None
    return rows


def _bad_entry(key: str, step: int, problem: str) -> IntegrityError:
    return IntegrityError(
        f"{key}: stored record at step {step} is invalid: {problem}; it was changed after it was written",
        step=step,
    )


def append_arguments(
    keys: StatebitKeys,
    identity: str,
    branch: str,
    start: int,
    expected_head: bytes,
    columns: HistoryColumns,
    *,
    conflict_from: int = -1,
    token: str = "",
    claim_ms: int = 0,
) -> tuple[list[str], list[Any]]:
    """Return the KEYS and ARGV of :data:`APPEND_SCRIPT` for appending ``columns`` after step ``start``.

    ``conflict_from`` is the position in the own log from which a rejection
    lists the stored entries, or -1 for none. ``token`` identifies the
    writer for turns ("" ignores them), and ``claim_ms`` is how long a
    conflict claims the turn for it (0 for no claim).
    """
    count = start + len(columns)
    head = columns.checksums[-32:].hex()
    message = event_message(identity, branch, count, head)
    arguments: list[Any] = [start, expected_head.hex(), count, head, keys.channel, message, conflict_from, token, claim_ms]
    arguments.extend(encode_entries(columns))
    return [keys.meta, keys.log, keys.turn], arguments


def event_message(identity: str, branch: str, count: int, head: str) -> str:
    """Return the pub/sub message sent after an append: the branch's new step count and head."""
    return json.dumps(
        {"identity": to_jsonable(identity), "branch": to_jsonable(branch), "count": count, "head": head},
        separators=(",", ":"),
    )


# -- the store ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Transaction:
    """Reads and buffered writes of one WATCH/MULTI/EXEC transaction."""

    pipe: Any
    watched: set[str] = field(default_factory=set)
    writes: list[Any] = field(default_factory=list)
    created: dict[str, StoredStatebit] = field(default_factory=dict)
    # Key stem -> (step count, head checksum), including the buffered appends.
    heads: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # Key stem -> (step count before this transaction, checksums buffered since).
    pending: dict[str, tuple[int, list[bytes]]] = field(default_factory=dict)


class RedisStore(Store):
    """A store in Redis, shared by every process that connects to the server.

    Each append of an attached statebit is one Lua script that checks the
    stored head and appends atomically. A writer whose statebit no longer
    extends the stored head gets :class:`StoreConflictError`, a
    :class:`~statebits.ConcurrencyError`, and its append is undone in memory.
    Every append is published on the channel ``<prefix>:{identity}:events``.
    Loading verifies the hash chain.

    Parameters
    ----------
    url : str, optional
        Server URL, such as ``"redis://localhost:6379/0"``. Defaults to
        ``"redis://localhost:6379"`` when ``client`` is not given either.
    client : redis.Redis, optional
        A synchronous client to use instead of ``url``. The store does not
        close a client it did not create.
    prefix : str, default "sb"
        First part of every key, so that several stores can share one
        database.
    allow_pickle : bool, default False
        Values with no JSON form are stored as pickles. Loading one runs code
        from the server's data, so it must be allowed explicitly.

    Raises
    ------
    MissingDependencyError
        When redis-py is not installed (the ``distributed`` extra).
    StoreError
        When the server does not reply to a PING.

    Examples
    --------
    >>> from statebits.stores.redis import RedisStore
    >>> with RedisStore("redis://localhost:6379") as store:  # doctest: +SKIP
    ...     mood = store.open("shared_mood", "neutral")
    ...     _ = mood.transition("happy", "Good news")
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "sb",
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(allow_pickle=allow_pickle)
        self._keys = RedisKeys(prefix)
        redis = import_optional("redis", feature="RedisStore")
        self._redis_error: type[Exception] = redis.RedisError
        self._watch_error: type[Exception] = redis.WatchError

        if client is not None and url is not None:
            raise invalid_parameter("url", url, "None when `client` is given", "RedisStore")
        if client is None:
            if url is None:
                url = DEFAULT_URL
            if not isinstance(url, str):
                raise invalid_parameter("url", url, "a redis://, rediss:// or unix:// URL (pass clients as client=)", "RedisStore")
            try:
                client = redis.Redis.from_url(url)
            except ValueError as exc:
                raise invalid_parameter("url", describe_url(url), f"a redis://, rediss:// or unix:// URL ({exc})", "RedisStore") from None
            self._owns_client = True
            self.url = describe_url(url)
        else:
            if not callable(getattr(client, "register_script", None)) or not callable(getattr(client, "pipeline", None)):
                raise invalid_parameter("client", client, "a synchronous redis.Redis client", "RedisStore")
            self._owns_client = False
            self.url = _client_url(client)

        self.prefix = prefix
        self._client = client
        self._append = client.register_script(APPEND_SCRIPT)
        self._lock = threading.RLock()
        self._tx: _Transaction | None = None

        try:
            client.ping()
        except self._redis_error as exc:
            if self._owns_client:
                client.close()
            raise StoreError(
                f"cannot connect to Redis at {self.url}: {exc}; start redis-server there or pass the URL of a running server"
            ) from exc

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"

    # -- transactions ---------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            if self._tx is not None:
                yield
                return
            pipe = self._client.pipeline(transaction=True)
            self._tx = _Transaction(pipe)
            try:
                with self._translated("writing"):
                    yield
                    writes = self._tx.writes
                    if writes:
                        pipe.multi()
                        for write in writes:
                            write(pipe)
                        pipe.execute()
            finally:
                self._tx = None
                pipe.reset()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        with self._lock:
            if self._tx is not None:
                yield
                return
            with self._translated("reading"):
                yield

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Turn redis-py errors into StoreConflictError (a watched key changed) or StoreError."""
        try:
            yield
        except self._watch_error:
            raise StoreConflictError(
                f"another writer changed the stored statebits in Redis at {self.url} while this store was "
                f"{action} them, so nothing was written; load them again and retry"
            ) from None
        except self._redis_error as exc:
            raise StoreError(f"Redis at {self.url} failed while {action} statebits: {exc}") from exc

    def _reader(self, *watched: str) -> Any:
        """Return the client for reads: the watching pipeline inside a transaction, after watching ``watched``."""
        tx = self._tx
        if tx is None:
            return self._client
        new = [key for key in watched if key not in tx.watched]
        if new:
            tx.pipe.watch(*new)
            tx.watched.update(new)
        return tx.pipe

    def _write(self, step: Any) -> None:
        """Buffer ``step(pipeline)`` until the transaction commits."""
        assert self._tx is not None, "writes happen inside _transaction()"
        self._tx.writes.append(step)

    # -- genesis records ------------------------------------------------------------

    def _find(self, identity: str, branch: str) -> StoredStatebit | None:
        keys = self._keys.statebit(identity, branch)
        if self._tx is not None and keys.stem in self._tx.created:
            return self._tx.created[keys.stem]
        record = self._reader(keys.meta).hget(keys.meta, "record")
        if record is None:
            return None
        return self._stored(keys.stem, record, {})

    def _stored(self, stem: str, record: bytes | str, known: dict[str, StoredStatebit]) -> StoredStatebit:
        """Build a genesis record with its base resolved, through ``known`` where possible."""
        if stem in known:
            return known[stem]
        stored, base_branch = decode_genesis(stem, record, self.allow_pickle)
        stored = replace(stored, handle=stem)
        if base_branch is not None:
            base_keys = self._keys.statebit(stored.identity, base_branch)
            base = known.get(base_keys.stem)
            if base is None and self._tx is not None:
                base = self._tx.created.get(base_keys.stem)
            if base is None:
                base_record = self._reader(base_keys.meta).hget(base_keys.meta, "record")
                if base_record is None:
                    raise IntegrityError(
                        f"{stored.key}: its base branch {base_branch!r} is missing from Redis at {self.url}", step=1
                    )
                base = self._stored(base_keys.stem, base_record, known)
            stored.base = base
        known[stem] = stored
        return stored

    def _list(self) -> list[StoredStatebit]:
        stems = sorted(_text(item) for item in self._reader(self._keys.index).smembers(self._keys.index))
        stored = self._records(stems)
        if self._tx is not None:
            stored.extend(item for stem, item in self._tx.created.items() if stem not in stems)
        return sorted(stored, key=lambda item: (item.identity, item.branch))

    def _records(self, stems: list[str]) -> list[StoredStatebit]:
        """Return the genesis records of the statebits with key stems ``stems``."""
        if self._tx is None:
            pipe = self._client.pipeline(transaction=False)
            for stem in stems:
                pipe.hget(f"{stem}:meta", "record")
            records = pipe.execute()
        else:
            records = [self._reader(f"{stem}:meta").hget(f"{stem}:meta", "record") for stem in stems]
        known: dict[str, StoredStatebit] = {}
        result = []
        for stem, record in zip(stems, records):
            if record is None:
                raise IntegrityError(
                    f"{stem}: listed in {self._keys.index} but its genesis record is missing from Redis at {self.url}",
                    step=0,
                )
            result.append(self._stored(stem, record, known))
        return result

    def _create(self, stored: StoredStatebit) -> StoredStatebit:
        with self._transaction():
            tx = self._tx
            assert tx is not None
            keys = self._keys.statebit(stored.identity, stored.branch)
            if self._reader(keys.meta).exists(keys.meta) or keys.stem in tx.created:
                raise StoreConflictError(f"cannot create {stored.key!r}: another writer created it first; load it instead")
            if stored.base is not None and stored.base_len:
                head = self._checksum_at(stored.base, stored.base_len)
                if head is None:
                    raise StoreConflictError(f"cannot create {stored.key!r}: its base has fewer than {stored.base_len} steps")
            else:
                head = stored.genesis
            created = replace(stored, handle=keys.stem)
            record = encode_genesis(created)
            count = stored.base_len

            def write(pipe: Any) -> None:
                pipe.hset(keys.meta, mapping={"record": record, "count": count, "head": head.hex()})
                pipe.sadd(self._keys.index, keys.stem)

            self._write(write)
            tx.created[keys.stem] = created
            tx.heads[keys.stem] = (count, head)
            return created

    # -- transitions ----------------------------------------------------------------

    def _head(self, stored: StoredStatebit) -> tuple[int, bytes]:
        tx = self._tx
        if tx is not None and stored.handle in tx.heads:
            return tx.heads[stored.handle]
        meta = f"{stored.handle}:meta"
        count, head = self._reader(meta).hmget(meta, ["count", "head"])
        if count is None or head is None:
            raise StoreError(f"{stored.key!r} is no longer stored in Redis at {self.url}: its meta hash {meta} is missing")
        state = (int(count), bytes.fromhex(_text(head)))
        if tx is not None:
            tx.heads[stored.handle] = state
        return state

    def _checksum_at(self, stored: StoredStatebit, step: int) -> bytes | None:
        if step == 0:
            return stored.genesis
        if step <= stored.base_len and stored.base is not None:
            return self._checksum_at(stored.base, step)
        tx = self._tx
        if tx is not None and stored.handle in tx.pending:
            before, checksums = tx.pending[stored.handle]
            if step > before:
                return checksums[step - before - 1] if step - before <= len(checksums) else None
        if tx is not None and stored.handle in tx.created:
            return None
        log = f"{stored.handle}:log"
        entry = self._reader(f"{stored.handle}:meta").lindex(log, step - stored.base_len - 1)
        if entry is None:
            return None
        try:
            return bytes.fromhex(json.loads(entry)[8])
        except (ValueError, TypeError, IndexError, KeyError):
            return None

    def _append_rows(self, stored: StoredStatebit, first_step: int, columns: HistoryColumns) -> None:
        with self._transaction():
            tx = self._tx
            assert tx is not None
            count, head = self._head(stored)
            if first_step != count + 1:
                raise StoreConflictError(
                    f"cannot store step {first_step} of {stored.key!r}: Redis contains {count} transitions, "
                    f"so the next step is {count + 1}"
                )
            new_count = count + len(columns)
            new_head = columns.checksums[-32:]
            entries = encode_entries(columns)
            meta = f"{stored.handle}:meta"
            log = f"{stored.handle}:log"
            channel = self._keys.channel(stored.identity)
            message = event_message(stored.identity, stored.branch, new_count, new_head.hex())

            def write(pipe: Any) -> None:
                for low in range(0, len(entries), _PUSH_CHUNK):
                    pipe.rpush(log, *entries[low : low + _PUSH_CHUNK])
                pipe.hset(meta, mapping={"count": new_count, "head": new_head.hex()})
                pipe.publish(channel, message)

            self._write(write)
            before, checksums = tx.pending.setdefault(stored.handle, (count, []))
            checksums.extend(columns.checksums[low : low + 32] for low in range(0, len(columns.checksums), 32))
            tx.heads[stored.handle] = (new_count, new_head)

    def _persist(self, stored: StoredStatebit, statebit: Statebit, start: int, stop: int) -> None:
        """Append transitions ``start`` to ``stop`` with one compare-and-set script."""
        if self._closed:
            raise StoreError(
                f"cannot persist step(s) {start + 1}-{stop} of {stored.key!r}: {self!r} is closed, "
                "so the append was undone; open the store again and reload the statebit"
            )
        history = statebit.history
        columns = history_columns(history, start, stop)
        keys = self._keys.statebit(stored.identity, stored.branch)
        script_keys, arguments = append_arguments(
            keys, stored.identity, stored.branch, start, history.checksum_of(start - 1), columns
        )
        with self._translated(f"appending to {stored.key!r} in"):
            reply = self._append(keys=script_keys, args=arguments, client=self._client)
        status = _text(reply[0])
        if status == "conflict":
            raise self._conflict(stored, start, int(reply[1]))
        if status == "missing":
            raise StoreError(
                f"cannot append step {start + 1} to {stored.key!r}: it is no longer stored in Redis at "
                f"{self.url} (its meta hash {keys.meta} is missing), so the append was undone"
            )

    def _read(self, stored: StoredStatebit) -> HistoryColumns:
        segments = _segments(stored)
        meta = f"{stored.handle}:meta"
        if self._tx is None:
            pipe = self._client.pipeline(transaction=True)
            pipe.hmget(meta, ["count", "head"])
            for stem, low, high in segments:
                pipe.lrange(f"{stem}:log", low, high)
            replies = pipe.execute()
        else:
            reader = self._reader(meta, *(f"{stem}:meta" for stem, _, _ in segments))
            replies = [reader.hmget(meta, ["count", "head"])]
            replies.extend(reader.lrange(f"{stem}:log", low, high) for stem, low, high in segments)
        (count, head), parts = replies[0], replies[1:]

        entries: list[bytes] = []
        for (stem, low, high), part in zip(segments, parts):
            if high != -1 and len(part) != high - low + 1:
                raise _bad_entry(stored.key, len(entries) + len(part) + 1, "it is missing from Redis, though a fork shares it")
            entries.extend(part)
        if count is None or head is None:
            raise IntegrityError(f"{stored.key}: its meta hash {meta} has no step count or head checksum", step=0)
        count = int(count)
        if len(entries) < count:
            raise _bad_entry(stored.key, len(entries) + 1, f"it is missing from Redis, which counts {count} steps")
        if len(entries) > count:
            raise _bad_entry(stored.key, count + 1, f"Redis counts {count} steps but contains {len(entries)} records")
        columns = decode_entries(stored.key, entries, 1, self.allow_pickle)
        stored_head = columns.checksums[-32:] if count else stored.genesis
        if _text(head) != stored_head.hex():
            raise IntegrityError(
                f"{stored.key}: the head checksum in {meta} ({_text(head)}) differs from the checksum of step "
                f"{count} ({stored_head.hex()}); it was changed after it was written",
                step=count,
            )
        return columns

    # -- collections ------------------------------------------------------------------

    def _add_members(self, name: str, members: list[StoredStatebit]) -> None:
        with self._transaction():
            escaped = self._keys.escaped(name)
            key = self._keys.collection(name)
            stems = [stored.handle for stored in members]

            def write(pipe: Any) -> None:
                pipe.sadd(self._keys.collections, escaped)
                if stems:
                    pipe.sadd(key, *stems)

            self._write(write)

    def _members(self, name: str) -> list[StoredStatebit] | None:
        key = self._keys.collection(name)
        reader = self._reader(self._keys.collections, key)
        if not reader.sismember(self._keys.collections, self._keys.escaped(name)):
            return None
        stems = sorted(_text(item) for item in reader.smembers(key))
        return sorted(self._records(stems), key=lambda item: (item.identity, item.branch))

    def _collection_names(self) -> list[str]:
        members = self._reader(self._keys.collections).smembers(self._keys.collections)
        return [self._keys.collection_name(item) for item in members]

    def _close(self) -> None:
        with self._lock:
            if self._owns_client:
                self._client.close()


def _segments(stored: StoredStatebit) -> list[tuple[str, int, int]]:
    """Return ``(key stem, first log position, last log position or -1)`` of each stored part, oldest first."""
    segments = []
    node: StoredStatebit | None = stored
    last_step: int | None = None
    while node is not None:
        high = -1 if last_step is None else last_step - node.base_len - 1
        segments.append((node.handle, 0, high))
        last_step = node.base_len
        node = node.base if node.base_len else None
    segments.reverse()
    return [segment for segment in segments if segment[2] == -1 or segment[2] >= segment[1]]
