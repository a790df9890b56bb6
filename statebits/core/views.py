"""TransitionView: a lazy, read-only sequence of selected transitions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from statebits.core.transition import StateTransition

if TYPE_CHECKING:
    from statebits.core.history import History

__all__ = ["TransitionView"]


class TransitionView(Sequence[StateTransition]):
    """The result of a history query: transitions picked by position.

    The view stores only the positions, so a query over millions of
    transitions returns at once; transitions are built as they are read.
    It compares equal to a list of the same transitions.
    """

    __slots__ = ("_history", "_positions")

    def __init__(self, history: "History", positions: Any) -> None:
        self._history = history
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> StateTransition: ...

    @overload
    def __getitem__(self, index: slice) -> "TransitionView": ...

    def __getitem__(self, index: int | slice) -> "StateTransition | TransitionView":
        if isinstance(index, slice):
            return TransitionView(self._history, self._positions[index])
        return StateTransition(self._history, int(self._positions[index]))

    def __iter__(self) -> Iterator[StateTransition]:
        history = self._history
        for position in self._positions:
            yield StateTransition(history, int(position))

    @property
    def steps(self) -> list[int]:
        """Steps of the selected transitions."""
        return [int(position) + 1 for position in self._positions]

    def to_list(self) -> list[StateTransition]:
        """Return the selected transitions as a list."""
        return list(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = self.steps[:5]
        more = ", ..." if len(self) > 5 else ""
        return f"TransitionView(identity={self._history.identity!r}, count={len(self)}, steps={shown}{more})"
