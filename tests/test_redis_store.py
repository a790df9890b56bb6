"""RedisStore against a real redis-server that each test module starts on loopback.

The store protocol suite from test_store.py runs here unchanged; the tests
after it cover what only Redis has: the key layout, the append script,
pub/sub messages and tampering with entries in the server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from statebits import ConcurrencyError, IntegrityError, MissingDependencyError, StoreError, ValidationError
from statebits.core.canonical import to_jsonable
from statebits.stores import Store

from test_store import StoreSuite  # noqa: E402 - the shared suite, imported by name only

redis = pytest.importorskip("redis", reason="redis-py is not installed; install statebits[distributed]")

from redis.crc import key_slot  # noqa: E402 - after the redis-py check

from statebits.stores.redis import RedisStore  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"
pytestmark = pytest.mark.redis


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server process on 127.0.0.1 without persistence, in a temporary directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.directory = tempfile.mkdtemp(prefix="statebits-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "RedisServer":
        command = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.directory,
        ]
        self.process = subprocess.Popen(command, cwd=self.directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        try:
            while True:
                if self.process.poll() is not None:
                    output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                    raise RuntimeError(f"redis-server exited with code {self.process.returncode}:\n{output}")
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis_server() -> RedisServer:
    """Start a server on a free port, retrying when another process takes the port first."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip(f"{REDIS_SERVER} is missing; install the Debian package redis-server to run the Redis tests")
    for _ in range(3):
        server = RedisServer()
        try:
            return server.start()
        except RuntimeError:
            server.stop()
    return RedisServer().start()


@pytest.fixture(scope="module")
def redis_server():
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def prefix_for(location: Path) -> str:
    """Return a key prefix unique to one test, so that tests share a server without flushing it."""
    return "t-" + location.name


class TestRedisStore(StoreSuite):
    @pytest.fixture(autouse=True)
    def _server(self, redis_server):
        self.server = redis_server

    def make_store(self, location: Path) -> Store:
        return RedisStore(self.server.url, prefix=prefix_for(location))

    def connect_again(self, store: Store, location: Path) -> Store:
        return RedisStore(self.server.url, prefix=prefix_for(location))

    def tamper(self, store: Store, location: Path, identity: str, step: int, value: Any) -> None:
        client = redis.Redis.from_url(self.server.url)
        log = f"{prefix_for(location)}:{{{identity}}}:main:log"
        entry = json.loads(client.lindex(log, step - 1))
        entry[3] = to_jsonable(value)
        client.lset(log, step - 1, json.dumps(entry))
        client.close()


# -- Redis specifics -------------------------------------------------------------------


@pytest.fixture
def store(redis_server, tmp_path):
    store = RedisStore(redis_server.url, prefix=prefix_for(tmp_path))
    yield store
    store.close()


def test_keys_use_identity_hash_tag(store, raw, tmp_path):
    prefix = prefix_for(tmp_path)
    sb = store.open("shared_mood", "neutral")
    sb.transition("happy", "Good news")
    store.save(sb.fork("what if", branch="alt"))

    keys = sorted(key.decode() for key in raw.keys(f"{prefix}:*"))

    assert keys == [
        f"{prefix}:statebits",
        f"{prefix}:{{shared_mood}}:alt:meta",
        f"{prefix}:{{shared_mood}}:main:log",
        f"{prefix}:{{shared_mood}}:main:meta",
    ]
    slots = {key_slot(key.encode()) for key in keys if "{" in key}
    assert len(slots) == 1


def test_special_names_get_their_own_keys(store, raw, tmp_path):
    names = ["a}:b", "a", "a:b", "50%", "{x}", "späce name", "\ud800"]
    for name in names:
        store.open(name, name)

    assert store.identities() == sorted(names)
    for name in names:
        assert store.load(name).initial_value == name
    assert not [key for key in raw.keys(f"{prefix_for(tmp_path)}:*") if key.count(b"{") > 1]


def test_entry_is_readable_json(store, raw, tmp_path, fixed_clock):
    sb = store.open("account", 100)
    sb.transition(150, "deposit", confidence=0.9, tags=["income"], metadata={"atm": "A1"})

    entry = json.loads(raw.lindex(f"{prefix_for(tmp_path)}:{{account}}:main:log", 0))
    meta = raw.hgetall(f"{prefix_for(tmp_path)}:{{account}}:main:meta")

    assert entry[2:7] == [0.9, 150, "deposit", ["income"], {"atm": "A1"}]
    assert entry[8] == sb.history[0].checksum
    assert meta[b"count"] == b"1"
    assert meta[b"head"].decode() == sb.history[0].checksum


def test_append_is_published(store, raw, tmp_path):
    sb = store.open("mood", "neutral")
    subscriber = raw.pubsub()
    subscriber.subscribe(f"{prefix_for(tmp_path)}:{{mood}}:events")
    assert subscriber.get_message(timeout=5)["type"] == "subscribe"

    sb.transition("happy", "good news")
    message = subscriber.get_message(timeout=5)
    subscriber.close()

    assert message is not None
    assert json.loads(message["data"]) == {
        "identity": "mood", "branch": "main", "count": 1, "head": sb.history[0].checksum,
    }


def test_batch_is_one_script_call(store, raw, tmp_path):
    sb = store.open("counter", 0)
    sb.batch_transition([{"new_value": value, "reason": "count"} for value in range(1, 2501)])

    assert raw.llen(f"{prefix_for(tmp_path)}:{{counter}}:main:log") == 2500
    assert store.load("counter").value == 2500


def test_stale_writer_conflict_message(store, redis_server, tmp_path):
    first = store.open("shared", 0)
    with RedisStore(redis_server.url, prefix=prefix_for(tmp_path)) as other:
        second = other.open("shared")
        first.transition(1, "first writer")

        with pytest.raises(ConcurrencyError, match=r"step 1 to 'shared'.*contains 1 transitions"):
            second.transition(2, "second writer")

    assert second.value == 0
    assert len(second.history) == 0


def test_diverged_history_is_rejected(store, raw, tmp_path):
    sb = store.open("x", 0)
    sb.transition(1, "stored")
    twin = store.load("x")
    sb.transition(2, "first")

    # Remove step 2 behind the store's back, so counts match but heads differ.
    raw.rpop(f"{prefix_for(tmp_path)}:{{x}}:main:log")
    raw.hset(f"{prefix_for(tmp_path)}:{{x}}:main:meta", mapping={"count": 1, "head": sb.history[0].checksum})
    twin.transition(3, "second")

    with pytest.raises(ConcurrencyError, match="differs from this one at step 2"):
        sb.transition(4, "third")


def test_tampered_checksum_field_names_step(store, raw, tmp_path):
    sb = store.open("ledger", 0.0)
    for value in range(1, 6):
        sb.transition(float(value), "entry")
    log = f"{prefix_for(tmp_path)}:{{ledger}}:main:log"
    entry = json.loads(raw.lindex(log, 2))
    entry[8] = "00" * 32
    raw.lset(log, 2, json.dumps(entry))

    with pytest.raises(IntegrityError, match="step 3") as caught:
        store.load("ledger")

    assert caught.value.step == 3


def test_entry_that_is_not_json_names_step(store, raw, tmp_path):
    sb = store.open("ledger", 0.0)
    for value in range(1, 4):
        sb.transition(float(value), "entry")
    raw.lset(f"{prefix_for(tmp_path)}:{{ledger}}:main:log", 1, b"{not json")

    with pytest.raises(IntegrityError, match="step 2.*not JSON"):
        store.load("ledger")
    assert store.verify()["ledger"].first_bad_step == 2


def test_removed_newest_entry_is_detected(store, raw, tmp_path):
    sb = store.open("ledger", 0)
    for value in range(1, 4):
        sb.transition(value, "entry")
    raw.rpop(f"{prefix_for(tmp_path)}:{{ledger}}:main:log")

    with pytest.raises(IntegrityError, match="step 3 is invalid: it is missing"):
        store.load("ledger")


def test_tampered_initial_value_is_step_zero(store, raw, tmp_path):
    store.open("x", 10).transition(11, "up")
    meta = f"{prefix_for(tmp_path)}:{{x}}:main:meta"
    record = json.loads(raw.hget(meta, "record"))
    record["initial_value"] = 99
    raw.hset(meta, "record", json.dumps(record))

    with pytest.raises(IntegrityError, match="step 0") as caught:
        store.load("x")
    assert caught.value.step == 0


def test_retried_append_is_not_stored_twice(store, raw, tmp_path):
    sb = store.open("x", 0)
    sb.transition(1, "stored")
    stored = store._find("x", "main")
    keys = store._keys.statebit("x", "main")
    from statebits.stores.base import history_columns
    from statebits.stores.redis import append_arguments

    # Run the script of step 1 again, as a client retrying after a lost reply would.
    script_keys, arguments = append_arguments(
        keys, "x", "main", 0, sb.history.genesis, history_columns(sb.history, 0, 1)
    )
    reply = store._append(keys=script_keys, args=arguments)

    assert reply[0] == b"stored"
    assert raw.llen(keys.log) == 1
    assert stored.handle == keys.stem


def test_missing_server_names_url():
    url = f"redis://127.0.0.1:{free_port()}"

    with pytest.raises(StoreError, match=f"cannot connect to Redis at {url}"):
        RedisStore(url)


def test_password_is_hidden_in_messages():
    url = f"redis://user:secret-word@127.0.0.1:{free_port()}/0"

    with pytest.raises(StoreError) as caught:
        RedisStore(url)

    assert "secret-word" not in str(caught.value)
    assert "user:***@127.0.0.1" in str(caught.value)


def test_client_argument_is_used_and_left_open(redis_server, tmp_path):
    client = redis.Redis.from_url(redis_server.url)
    with RedisStore(client=client, prefix=prefix_for(tmp_path)) as store:
        store.open("x", 1)

    assert client.ping()
    assert "127.0.0.1" in repr(store)
    client.close()


def test_invalid_arguments_are_rejected(redis_server):
    with pytest.raises(ValidationError, match="prefix"):
        RedisStore(redis_server.url, prefix="a{b}")
    with pytest.raises(ValidationError, match="url"):
        RedisStore(42)
    with pytest.raises(ValidationError, match="url"):
        RedisStore("http://127.0.0.1")


def test_missing_redis_names_extra(monkeypatch):
    for name in [module for module in sys.modules if module == "redis" or module.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)

    with pytest.raises(MissingDependencyError, match=r"statebits\[distributed\]") as caught:
        RedisStore("redis://127.0.0.1:1")

    assert isinstance(caught.value, ImportError)


def test_store_from_another_process_sees_appends(store, redis_server, tmp_path):
    store.open("shared", 0)
    code = (
        "import sys\n"
        "from statebits.stores.redis import RedisStore\n"
        "with RedisStore(sys.argv[1], prefix=sys.argv[2]) as store:\n"
        "    sb = store.load('shared')\n"
        "    for value in range(1, 21):\n"
        "        sb.transition(value, 'from the child process')\n"
    )
    subprocess.run([sys.executable, "-c", code, redis_server.url, prefix_for(tmp_path)], check=True, timeout=60)

    loaded = store.load("shared")

    assert [transition.to_value for transition in loaded.history] == list(range(1, 21))
    assert loaded.verify_integrity()


def test_import_does_not_import_redis():
    code = "import sys, statebits, statebits.stores.redis, statebits.distributed; print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert result.stdout.strip() == "False"
