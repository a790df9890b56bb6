"""AsyncStatebit under many concurrent tasks."""

from __future__ import annotations

import asyncio

import pytest

from statebits import AsyncStatebit, ValidationError


def test_concurrent_tasks_keep_chain():
    async def main():
        sb = AsyncStatebit("counter", 0)

        async def writer(n: int) -> None:
            for i in range(50):
                await sb.transition(n * 1000 + i, f"task {n}")
                await asyncio.sleep(0)

        await asyncio.gather(*(writer(n) for n in range(20)))
        return sb

    sb = asyncio.run(main())

    assert len(sb.history) == 1000
    assert sb.verify_integrity()


def test_async_batch_and_rollback():
    async def main():
        sb = AsyncStatebit("x", 0)
        await sb.batch_transition([{"new_value": 1, "reason": "a"}, {"new_value": 2, "reason": "b"}])
        await sb.rollback(1)
        return sb

    sb = asyncio.run(main())

    assert sb.value == 1
    assert len(sb.history) == 3


def test_async_invalid_input_unchanged():
    async def main():
        sb = AsyncStatebit("x", 0)
        with pytest.raises(ValidationError, match="confidence"):
            await sb.transition(1, "bad", confidence=2)
        return sb

    assert len(asyncio.run(main()).history) == 0


def test_async_fork_and_merge():
    async def main():
        sb = AsyncStatebit("x", 0)
        await sb.transition(1, "a")
        fork = sb.fork("what if")
        await fork.transition(5, "b")
        await sb.merge(fork)
        return sb, fork

    sb, fork = asyncio.run(main())

    assert isinstance(fork, AsyncStatebit)
    assert sb.value == 5
