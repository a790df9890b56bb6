"""The examples in docs/distributed.md run as written and print the output their comments state.

They run against a redis-server that the test starts on 127.0.0.1, with the
documented URL redis://localhost:6379 replaced by that server's URL.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from test_redis_store import start_redis_server  # noqa: E402 - shared server helpers

pytest.importorskip("redis", reason="redis-py is not installed; install statebits[distributed]")

pytestmark = pytest.mark.redis

DOC = Path(__file__).resolve().parent.parent / "docs" / "distributed.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
DOCUMENTED_URL = "redis://localhost:6379"


def expected_output(code: str) -> list[str]:
    """Return the comments after print calls, which state what each prints."""
    return [line.rsplit("# ", 1)[1].strip() for line in code.splitlines() if "print(" in line and "# " in line]


@pytest.fixture
def server():
    server = start_redis_server()
    yield server
    server.stop()


def test_distributed_doc_examples_print_documented_output(server):
    import statebits

    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 6
    namespace: dict = {}

    for number, code in enumerate(blocks, start=1):
        assert DOCUMENTED_URL in code, f"block {number} does not use the documented URL"
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code.replace(DOCUMENTED_URL, server.url), f"{DOC.name} block {number}", "exec"), namespace)  # noqa: S102 - our own docs

        assert output.getvalue().splitlines() == expected_output(code), f"block {number}:\n{code}"


@pytest.mark.parametrize("name", ["DistributedStatebit", "RedisStore", "max_retries", "auto_sync", "sync()", "IntegrityError"])
def test_distributed_doc_mentions_api(name):
    assert name in DOC.read_text()
