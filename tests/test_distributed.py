"""DistributedStatebit against real redis-server processes started on loopback by these tests."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import pickle
import socket
import subprocess
import sys
import time

import pytest

import statebits
from statebits import AsyncStatebit, ConcurrencyError, IntegrityError, MissingDependencyError, StoreError, ValidationError
from statebits.core.canonical import to_jsonable

from test_redis_store import RedisServer, free_port, start_redis_server  # noqa: E402 - shared server helpers

redis = pytest.importorskip("redis", reason="redis-py is not installed; install statebits[distributed]")

from statebits.distributed import DistributedStatebit  # noqa: E402 - after the redis-py check
from statebits.stores.redis import RedisStore  # noqa: E402

pytestmark = pytest.mark.redis

GUIDE_EXAMPLE = """\
from statebits import DistributedStatebit
import asyncio
async def main():
    mood = DistributedStatebit(
        identity="shared_mood",
        redis_url="redis://localhost:6379",
        initial_value="neutral"
    )
    await mood.connect()
    try:
        await mood.transition("happy", "Distributed update")
    finally:
        await mood.disconnect()
asyncio.run(main())
"""

# Run by two processes at once: wait for the test's start signal, then append.
WRITER = """\
import asyncio, sys
import redis.asyncio
from statebits.distributed import DistributedStatebit

async def main(url, prefix, name, count):
    signals = redis.asyncio.Redis.from_url(url)
    async with DistributedStatebit("shared", redis_url=url, initial_value=0, prefix=prefix) as sb:
        await signals.rpush(prefix + ":ready", name)
        await signals.blpop([prefix + ":go"], timeout=30)
        for index in range(count):
            await sb.transition(f"{name}-{index}", f"written by {name}")
        print(sb.conflicts)
    await signals.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


@pytest.fixture(scope="module")
def server():
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def raw(server):
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


@pytest.fixture
def prefix(tmp_path) -> str:
    return "t-" + tmp_path.name


@pytest.fixture
def shared(server, prefix):
    """Return a factory of DistributedStatebits on the test's server and prefix."""

    def make(identity: str = "shared", **options) -> DistributedStatebit:
        return DistributedStatebit(identity, redis_url=server.url, prefix=prefix, **options)

    return make


def stored_values(server, prefix, identity: str = "shared") -> list:
    with RedisStore(server.url, prefix=prefix) as store:
        loaded = store.load(identity)
        assert loaded.verify_integrity()
        return [transition.to_value for transition in loaded.history]


# -- the user guide ---------------------------------------------------------------------


def test_guide_example_runs_as_written(tmp_path):
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", 6379, proto=socket.IPPROTO_TCP)}
    if not all(ipaddress.ip_address(address).is_loopback for address in addresses):
        pytest.skip(f"localhost resolves to {sorted(addresses)}, not only to loopback addresses")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", 6379))
        except OSError:
            pytest.skip("port 6379 on 127.0.0.1 is in use, and the guide example needs its own server there")
    server = RedisServer(port=6379).start()
    try:
        script = tmp_path / "guide_example.py"
        script.write_text(GUIDE_EXAMPLE)
        subprocess.run([sys.executable, str(script)], check=True, timeout=120, cwd=tmp_path)

        with RedisStore("redis://127.0.0.1:6379") as store:
            mood = store.load("shared_mood")
    finally:
        server.stop()

    assert mood.initial_value == "neutral"
    assert mood.value == "happy"
    assert mood.history[0].reason == "Distributed update"
    assert mood.verify_integrity()


# -- connecting ------------------------------------------------------------------------------


def test_connect_creates_then_loads(shared, server, prefix, fixed_clock):
    async def main():
        async with shared("mood", initial_value="neutral") as first:
            await first.transition("happy", "good news", confidence=0.8, tags=["news"], metadata={"source": "mail"})
            await first.transition("calm", "tea")
        second = await shared("mood").connect()
        await second.disconnect()
        return first, second

    first, second = asyncio.run(main())

    assert second.initial_value == "neutral"
    assert second.created_at == first.created_at
    assert second.lineage == first.lineage
    assert [t.to_dict() for t in second.history] == [t.to_dict() for t in first.history]
    assert stored_values(server, prefix, "mood") == ["happy", "calm"]


def test_async_with_disconnects(shared):
    async def main():
        async with shared() as sb:
            assert sb.connected
        return sb

    sb = asyncio.run(main())

    assert not sb.connected
    assert "connected=False" in repr(sb)


def test_other_initial_value_is_rejected(shared):
    async def main():
        async with shared(initial_value="neutral"):
            pass
        with pytest.raises(ValidationError, match="initial value 'neutral', not 'sad'"):
            await shared(initial_value="sad").connect()
        async with shared() as loaded:
            return loaded.initial_value

    assert asyncio.run(main()) == "neutral"


def test_concurrent_connects_create_once(shared, raw, prefix):
    async def main():
        first, second = shared(initial_value=1), shared(initial_value=1)
        await asyncio.gather(first.connect(), second.connect())
        await first.transition(2, "after both connected")
        await second.transition(3, "second writer")
        await first.disconnect()
        await second.disconnect()

    asyncio.run(main())

    assert raw.smembers(f"{prefix}:statebits") == {f"{prefix}:{{shared}}:main".encode()}
    assert raw.llen(f"{prefix}:{{shared}}:main:log") == 2


def test_missing_server_error_names_url():
    url = f"redis://127.0.0.1:{free_port()}"
    sb = DistributedStatebit("shared", redis_url=url, initial_value=0)

    with pytest.raises(StoreError, match=f"cannot connect 'shared' to Redis at {url}"):
        asyncio.run(sb.connect())

    assert not sb.connected


def test_transition_before_connect_raises(shared):
    sb = shared(initial_value=0)

    with pytest.raises(StoreError, match=r"not connected.*await connect\(\)"):
        asyncio.run(sb.transition(1, "too early"))
    with pytest.raises(StoreError, match="not connected"):
        asyncio.run(sb.sync())

    assert len(sb.history) == 0
    assert sb.value == 0


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValidationError, match="redis_url"):
        DistributedStatebit("x", redis_url=6379)
    with pytest.raises(ValidationError, match="max_retries"):
        DistributedStatebit("x", max_retries=-1)
    with pytest.raises(ValidationError, match="timeout"):
        DistributedStatebit("x", timeout=0)
    with pytest.raises(ValidationError, match="prefix"):
        DistributedStatebit("x", prefix="{}")
    with pytest.raises(ValidationError, match="redis_url"):
        asyncio.run(DistributedStatebit("x", redis_url="http://127.0.0.1").connect())


def test_missing_redis_names_extra(monkeypatch):
    for name in [module for module in sys.modules if module == "redis" or module.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)

    with pytest.raises(MissingDependencyError) as caught:
        DistributedStatebit("shared_mood", redis_url="redis://127.0.0.1:1", initial_value="neutral")

    assert isinstance(caught.value, ImportError)
    assert "pip install 'statebits[distributed]'" in str(caught.value)
    assert "DistributedStatebit" in str(caught.value)


# -- concurrent writers -----------------------------------------------------------------------


def test_two_instances_lose_nothing(shared, server, prefix):
    async def writer(sb, name):
        for index in range(100):
            await sb.transition(f"{name}-{index}", f"written by {name}")

    async def main():
        first, second = shared(initial_value=0), shared(initial_value=0)
        await first.connect()
        await second.connect()
        await asyncio.gather(writer(first, "a"), writer(second, "b"))
        await first.sync()
        await second.sync()
        await first.disconnect()
        await second.disconnect()
        return first, second

    first, second = asyncio.run(main())
    values = stored_values(server, prefix)

    assert len(values) == 200
    assert sorted(values) == sorted([f"a-{i}" for i in range(100)] + [f"b-{i}" for i in range(100)])
    assert [value for value in values if value.startswith("a-")] == [f"a-{i}" for i in range(100)]
    assert first.conflicts + second.conflicts > 0
    assert first.history.head_checksum() == second.history.head_checksum()
    assert first.verify_integrity()


def test_two_processes_lose_nothing(server, raw, prefix):
    count = 300
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, server.url, prefix, name, str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in ("p", "q")
    ]
    deadline = time.monotonic() + 60
    while raw.llen(f"{prefix}:ready") < 2 and time.monotonic() < deadline and all(w.poll() is None for w in writers):
        time.sleep(0.05)
    raw.rpush(f"{prefix}:go", "p", "q")
    outputs = [writer.communicate(timeout=120) for writer in writers]

    assert [writer.returncode for writer in writers] == [0, 0], outputs
    values = stored_values(server, prefix)
    assert len(values) == 2 * count
    for name in ("p", "q"):
        assert [value for value in values if value.startswith(name)] == [f"{name}-{i}" for i in range(count)]
    conflicts = [int(stdout) for stdout, _ in outputs]
    assert sum(conflicts) > 0, "the processes never overlapped, so the test did not exercise conflicts"


def test_stale_writer_without_retries_raises(shared, server, prefix):
    async def main():
        first = await shared(initial_value=0).connect()
        second = await shared(max_retries=0).connect()
        await first.transition(1, "first writer")
        seen = []
        second.add_observer(lambda sb, transition: seen.append(transition.reason))

        with pytest.raises(ConcurrencyError, match="other writers appended to Redis first") as caught:
            await second.transition(2, "stale writer")
        after_conflict = ([t.to_value for t in second.history], list(seen))

        await second.transition(2, "called again")
        await first.disconnect()
        await second.disconnect()
        return second, caught.value, after_conflict

    second, error, (values, seen) = asyncio.run(main())

    assert values == [1]
    assert seen == ["first writer"]
    assert "stale writer" not in [t.reason for t in second.history]
    assert second.conflicts == 1
    assert isinstance(error, StoreError)
    assert stored_values(server, prefix) == [1, 2]


def test_stale_writer_retries_on_top(shared, server, prefix):
    async def main():
        first = await shared(initial_value=0).connect()
        second = await shared().connect()
        await first.transition(1, "first writer")
        recorded = await second.transition(2, "second writer")
        await first.disconnect()
        await second.disconnect()
        return second, recorded

    second, recorded = asyncio.run(main())

    assert recorded.step == 2
    assert recorded.from_value == 1
    assert [t.to_value for t in second.history] == [1, 2]
    assert second.conflicts == 1
    assert stored_values(server, prefix) == [1, 2]


def test_rollback_conflict_is_not_retried(shared, server, prefix):
    async def main():
        first = await shared(initial_value=0).connect()
        second = await shared().connect()
        await first.transition(1, "one")
        await second.sync()
        await first.transition(2, "two")

        with pytest.raises(ConcurrencyError, match=r"rollback\(\) call"):
            await second.rollback(1)
        await second.rollback(1)
        await first.disconnect()
        await second.disconnect()

    asyncio.run(main())

    assert stored_values(server, prefix) == [1, 2, 1]


def test_failed_append_leaves_memory_unchanged(tmp_path):
    own_server = start_redis_server()

    async def main():
        sb = await DistributedStatebit("shared", redis_url=own_server.url, initial_value=0).connect()
        await sb.transition(1, "stored")
        own_server.stop()
        with pytest.raises(StoreError, match=f"to Redis at {own_server.url}") as caught:
            await sb.transition(2, "server is gone")
        await sb.disconnect()
        return sb, caught.value

    try:
        sb, error = asyncio.run(main())
    finally:
        own_server.stop()

    assert "nothing was recorded" in str(error)
    assert [t.to_value for t in sb.history] == [1]
    assert sb.value == 1


def test_deleted_statebit_append_raises(shared, raw, prefix):
    async def main():
        sb = await shared(initial_value=0).connect()
        await sb.transition(1, "stored")
        raw.delete(f"{prefix}:{{shared}}:main:meta")
        with pytest.raises(StoreError, match="no longer stored"):
            await sb.transition(2, "after the data was deleted")
        await sb.disconnect()
        return sb

    assert [t.to_value for t in asyncio.run(main()).history] == [1]


# -- integrity ---------------------------------------------------------------------------------


def tamper_value(raw, prefix: str, step: int, value) -> None:
    log = f"{prefix}:{{shared}}:main:log"
    entry = json.loads(raw.lindex(log, step - 1))
    entry[3] = to_jsonable(value)
    raw.lset(log, step - 1, json.dumps(entry))


def test_tampered_entry_detected_on_connect(shared, raw, prefix):
    async def main():
        async with shared(initial_value=0.0) as sb:
            for value in range(1, 6):
                await sb.transition(float(value), "entry")
        tamper_value(raw, prefix, 3, 300.0)
        fresh = shared()
        with pytest.raises(IntegrityError, match="step 3") as caught:
            await fresh.connect()
        return fresh, caught.value

    fresh, error = asyncio.run(main())

    assert error.step == 3
    assert not fresh.connected


def test_tampered_entry_detected_on_sync(shared, raw, prefix):
    async def main():
        writer = await shared(initial_value=0.0).connect()
        reader = await shared().connect()
        for value in range(1, 6):
            await writer.transition(float(value), "entry")
        tamper_value(raw, prefix, 4, -1.0)
        with pytest.raises(IntegrityError, match="step 4") as caught:
            await reader.sync()
        await writer.disconnect()
        await reader.disconnect()
        return reader, caught.value

    reader, error = asyncio.run(main())

    assert error.step == 4
    assert len(reader.history) == 0


def test_tampered_initial_value_is_step_zero(shared, raw, prefix):
    async def main():
        async with shared(initial_value=10):
            pass
        meta = f"{prefix}:{{shared}}:main:meta"
        record = json.loads(raw.hget(meta, "record"))
        record["initial_value"] = 99
        raw.hset(meta, "record", json.dumps(record))
        with pytest.raises(IntegrityError, match="step 0") as caught:
            await shared().connect()
        return caught.value

    assert asyncio.run(main()).step == 0


# -- receiving other writers' transitions ----------------------------------------------------------


def test_sync_fetches_new_transitions(shared):
    async def main():
        writer = await shared(initial_value=0).connect()
        reader = await shared().connect()
        for value in (1, 2, 3):
            await writer.transition(value, "count")
        fetched = await reader.sync()
        again = await reader.sync()
        await writer.disconnect()
        await reader.disconnect()
        return reader, fetched, again

    reader, fetched, again = asyncio.run(main())

    assert [t.to_value for t in fetched] == [1, 2, 3]
    assert again == []
    assert reader.value == 3
    assert reader.verify_integrity()


def test_pubsub_delivers_to_other_instance(shared):
    async def main():
        listener = await shared(initial_value="neutral", auto_sync=True).connect()
        received = asyncio.Event()
        seen = []

        def observe(sb, transition):
            seen.append((transition.to_value, transition.reason))
            received.set()

        listener.add_observer(observe)
        async with shared() as writer:
            await writer.transition("happy", "Distributed update")
        await asyncio.wait_for(received.wait(), timeout=10)
        await listener.disconnect()
        return listener, seen

    listener, seen = asyncio.run(main())

    assert seen == [("happy", "Distributed update")]
    assert listener.value == "happy"
    assert listener.verify_integrity()


def test_listener_recovers_after_lost_connection(shared, raw, caplog):
    async def main():
        listener = await shared(initial_value=0, auto_sync=True).connect()
        received = asyncio.Event()
        listener.add_observer(lambda sb, transition: received.set())
        await asyncio.sleep(0.1)  # the listener is waiting for messages
        assert raw.client_kill_filter(_type="pubsub") >= 1
        async with shared() as writer:
            await writer.transition(1, "sent while the listener was cut off")
        await asyncio.wait_for(received.wait(), timeout=10)
        await listener.disconnect()
        return listener

    with caplog.at_level("WARNING", logger="statebits.distributed"):
        listener = asyncio.run(main())

    assert listener.value == 1
    assert "pub/sub of 'shared'" in caplog.text


def test_reconnect_fetches_missed_transitions(shared):
    async def main():
        sb = await shared(initial_value=0).connect()
        await sb.transition(1, "before disconnect")
        await sb.disconnect()
        async with shared() as other:
            await other.transition(2, "while disconnected")
        await sb.connect()
        await sb.transition(3, "after reconnect")
        await sb.disconnect()
        return sb

    assert [t.to_value for t in asyncio.run(main()).history] == [1, 2, 3]


def test_redis_store_and_distributed_share_history(shared, server, prefix):
    async def main(store_statebit):
        sb = await shared().connect()
        store_statebit.transition(2, "written through RedisStore")
        fetched = await sb.sync()
        await sb.transition(3, "written through DistributedStatebit")
        await sb.disconnect()
        return fetched

    with RedisStore(server.url, prefix=prefix) as store:
        attached = store.open("shared", 0)
        attached.transition(1, "first")
        fetched = asyncio.run(main(attached))

        assert [t.to_value for t in fetched] == [2]
        assert [t.to_value for t in store.load("shared").history] == [1, 2, 3]


# -- the rest of the statebit API --------------------------------------------------------------------


def test_batch_rollback_fork_and_merge_are_stored(shared, server, prefix):
    async def main():
        async with shared(initial_value=0) as sb:
            await sb.batch_transition(item for item in [{"new_value": 1, "reason": "a"}, {"new_value": 2, "reason": "b"}])
            await sb.rollback(1)
            fork = sb.fork("what if", branch="alt")
            await fork.transition(10, "alternative")
            merged = await sb.merge(fork)
            return sb, fork, merged

    sb, fork, merged = asyncio.run(main())

    assert type(fork) is AsyncStatebit
    assert fork.parent is sb
    assert merged is not None
    assert stored_values(server, prefix) == [1, 2, 1, 10]
    assert sb.verify_integrity()


def test_observer_hears_only_stored_transitions(shared):
    async def main():
        first = await shared(initial_value=0).connect()
        second = await shared(max_retries=0).connect()
        seen = []
        second.add_observer(lambda sb, transition: seen.append(transition.reason))
        await first.transition(1, "from first")
        with pytest.raises(ConcurrencyError):
            await second.transition(2, "rejected")
        with pytest.raises(ValidationError):
            await second.transition(2, "")
        await second.transition(3, "stored")
        await first.disconnect()
        await second.disconnect()
        return seen

    assert asyncio.run(main()) == ["from first", "stored"]


def test_copies_start_disconnected(shared):
    async def main():
        async with shared(initial_value=0) as sb:
            await sb.transition(1, "stored")
            return pickle.loads(pickle.dumps(sb)), copy.deepcopy(sb)

    for duplicate in asyncio.run(main()):
        assert not duplicate.connected
        assert duplicate.value == 1
        assert duplicate.verify_integrity()


def test_from_dict_is_rejected():
    with pytest.raises(statebits.StatebitError, match="connect"):
        DistributedStatebit.from_dict({})

