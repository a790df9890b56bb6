"""AsyncStatebit: the Statebit API with awaitable recording."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from statebits.core.statebit import Statebit
from statebits.core.transition import StateTransition

__all__ = ["AsyncStatebit"]


class AsyncStatebit(Statebit):
    """A statebit whose recording methods are coroutines.

    Transitions are serialised by an ``asyncio.Lock`` as well as the
    statebit's thread lock, so many concurrent tasks may record on one
    statebit and every append extends the head the previous one left.
    Reads (``value``, ``history``, queries) are the same as on
    :class:`Statebit`.

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     mood = AsyncStatebit(identity="user_mood", initial_value="neutral")
    ...     await mood.transition("happy", "Good news", confidence=0.9)
    ...     return mood.value
    >>> asyncio.run(main())
    'happy'
    """

    def __init__(self, identity: str, initial_value: Any = None, *, created_at: Any = None) -> None:
        super().__init__(identity, initial_value, created_at=created_at)
        self._async_lock: asyncio.Lock | None = None

    def _get_async_lock(self) -> asyncio.Lock:
        # Created lazily inside a running loop, so the lock binds to that loop.
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        return self._async_lock

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
        """Record a change; see :meth:`Statebit.transition`."""
        async with self._get_async_lock():
            return self._record(new_value, reason, confidence, tags, metadata, timestamp, caused_by)

    async def batch_transition(self, transitions: Sequence[Mapping[str, Any]]) -> list[StateTransition]:  # type: ignore[override]
        """Record several transitions as one unit; see :meth:`Statebit.batch_transition`."""
        async with self._get_async_lock():
            return Statebit.batch_transition(self, transitions)

    async def rollback(self, steps: int = 1, reason: str | None = None, **kwargs: Any) -> StateTransition:  # type: ignore[override]
        """Return to an earlier value as a new transition; see :meth:`Statebit.rollback`."""
        async with self._get_async_lock():
            return Statebit.rollback(self, steps, reason, **kwargs)

    async def merge(  # type: ignore[override]
        self, other: Statebit, strategy: str = "latest", resolver: Any = None, reason: str | None = None
    ) -> StateTransition | None:
        """Merge a related statebit; see :meth:`Statebit.merge`."""
        async with self._get_async_lock():
            return Statebit.merge(self, other, strategy, resolver, reason)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_async_lock"] = None
        return state
