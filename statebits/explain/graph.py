"""The causal graph between transitions of several statebits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from statebits.core.statebit import Statebit

__all__ = ["CausalGraph", "Node"]

#: A node: (identity, branch, step).
Node = tuple[str, str, int]


@dataclass
class CausalGraph:
    """Directed edges from causing transitions to the transitions they caused.

    Attributes
    ----------
    edges : list of (Node, Node)
        ``(cause, effect)`` pairs; a node is ``(identity, branch, step)``.
    """

    edges: list[tuple[Node, Node]] = field(default_factory=list)

    @classmethod
    def from_statebits(cls, statebits: Iterable["Statebit"]) -> "CausalGraph":
        """Collect every ``caused_by`` link recorded by the given statebits."""
        graph = cls()
        # A fork shares its parent's segments, so the same link can be met twice.
        seen: set[tuple[Node, Node]] = set()
        for sb in statebits:
            history = sb.history
            for segment, count in history.segments():
                for local, refs in sorted(segment.causes.items()):
                    if local >= count:
                        continue
                    effect = (sb.identity, segment.branch, segment.base_len + local + 1)
                    for ref in refs:
                        edge = (ref.key(), effect)
                        if edge not in seen:
                            seen.add(edge)
                            graph.edges.append(edge)
        return graph

    @property
    def nodes(self) -> set[Node]:
        """Every transition that causes or is caused by another."""
        found: set[Node] = set()
        for cause, effect in self.edges:
            found.add(cause)
            found.add(effect)
        return found

    def causes_of(self, node: Node) -> list[Node]:
        """Return the direct causes of ``node``."""
        return [cause for cause, effect in self.edges if effect == node]

    def effects_of(self, node: Node) -> list[Node]:
        """Return the transitions directly caused by ``node``."""
        return [effect for cause, effect in self.edges if cause == node]

    def ancestors(self, node: Node) -> set[Node]:
        """Return every transition ``node`` depends on, directly or not."""
        found: set[Node] = set()
        pending = [node]
        while pending:
            for cause in self.causes_of(pending.pop()):
                if cause not in found:
                    found.add(cause)
                    pending.append(cause)
        return found

    def __iter__(self) -> Iterator[tuple[Node, Node]]:
        return iter(self.edges)

    def __len__(self) -> int:
        return len(self.edges)

    def to_dot(self) -> str:
        """Return the graph in Graphviz DOT syntax."""
        lines = ["digraph causes {"]
        for cause, effect in self.edges:
            lines.append(f'  "{_label(cause)}" -> "{_label(effect)}";')
        lines.append("}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CausalGraph(nodes={len(self.nodes)}, edges={len(self.edges)})"


def _label(node: Node) -> str:
    """Return ``identity#step``, with ``@branch`` for nodes off the main branch."""
    identity, branch, step = node
    return f"{identity}#{step}" if branch == "main" else f"{identity}@{branch}#{step}"
