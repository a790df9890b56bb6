"""Statebit attributes that a history frame carries beside its rows.

Rows hold every transition, but not the attributes of the statebits
themselves: initial value, creation time, lineage, fork point, frozen flag.
Views attach them as JSON text under the ``"statebits"`` key of pandas
``DataFrame.attrs`` and of the Arrow (and Parquet) schema metadata, so a
round trip keeps them, and statebits with no transitions survive too.
Polars frames have no such place; rebuilding from one falls back to the rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from statebits.core.canonical import from_jsonable, to_jsonable
from statebits.core.errors import ValidationError

if TYPE_CHECKING:
    from statebits.core.statebit import Statebit

__all__ = ["FRAME_FORMAT", "META_KEY", "frame_meta", "meta_text", "parse_meta", "MemberInfo"]

#: Version tag of the attached JSON.
FRAME_FORMAT = "statebits-frame/1"
#: Key under which the JSON text is attached (``attrs`` key, Arrow metadata key).
META_KEY = "statebits"


class MemberInfo:
    """Attributes of one statebit read back from frame metadata."""

    __slots__ = ("position", "key", "identity", "branch", "initial_value", "created_at_ns", "lineage", "fork_point", "fork_reason", "frozen", "transitions")

    def __init__(self, data: Mapping[str, Any], allow_pickle: bool, position: int = 0) -> None:
        self.position = position  # order of the statebit in the stored list
        try:
            self.identity = str(data["identity"])
            self.branch = str(data.get("branch") or "main")
            self.key = str(data.get("key") or (self.identity if self.branch == "main" else f"{self.identity}@{self.branch}"))
            self.initial_value = from_jsonable(data["initial_value"], allow_pickle)
            self.created_at_ns = int(data["created_at_ns"])
            self.lineage = data.get("lineage")
            self.fork_point = None if data.get("fork_point") is None else int(data["fork_point"])
            self.fork_reason = data.get("fork_reason")
            self.frozen = bool(data.get("frozen", False))
            self.transitions = int(data.get("transitions", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"invalid statebits frame metadata for member {data!r}: {exc}") from None


def frame_meta(statebits: Iterable["Statebit"], name: str | None = None) -> dict[str, Any]:
    """Return the JSON-ready attributes of ``statebits``."""
    members = [
        {
            "key": sb.key,
            "identity": sb.identity,
            "branch": sb.branch,
            "initial_value": to_jsonable(sb.initial_value),
            "created_at_ns": sb._created_ns,
            "lineage": sb.lineage,
            "fork_point": sb.fork_point,
            "fork_reason": sb.fork_reason,
            "frozen": sb.frozen,
            "transitions": len(sb.history),
        }
        for sb in statebits
    ]
    return {"format": FRAME_FORMAT, "name": name, "members": members}


def meta_text(statebits: Iterable["Statebit"], name: str | None = None) -> str:
    """Return :func:`frame_meta` as compact JSON text."""
    return json.dumps(frame_meta(statebits, name), ensure_ascii=False, separators=(",", ":"))


def parse_meta(text: str | bytes | None, allow_pickle: bool = False) -> tuple[str | None, list[MemberInfo]] | None:
    """Return ``(collection name, members)`` from attached JSON text, or None when absent or foreign."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FRAME_FORMAT or not isinstance(data.get("members"), list):
        return None
    return data.get("name"), [MemberInfo(item, allow_pickle, position) for position, item in enumerate(data["members"])]
