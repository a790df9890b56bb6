"""ForkTreeWidget: a statebit and its forks as lanes, with merges drawn back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import traitlets

from statebits.charts import DEFAULT_MAX_POINTS, PICK, ChartTime, count_noun, fork_tree, fork_tree_chart
from statebits.core.errors import invalid_parameter
from statebits.widgets._base import FALLBACK_MAX_POINTS, OfflineJupyterChart, StatebitsWidget, ipywidgets, watch_selection

__all__ = ["ForkTreeWidget"]


class ForkTreeWidget(StatebitsWidget):
    """A statebit and its forks as lanes over steps; clicking a transition selects it.

    Each fork's lane starts at its fork point, linked to its parent's lane;
    merges are dashed links from the merged branch back to the target.

    Parameters
    ----------
    data : Statebit, iterable of statebits, StatebitsCollection or frame
        A statebit (its parents are included), the statebit and its forks, or
        a history frame whose ``branch`` column names the lanes.
    tz : str or datetime.tzinfo, optional
        Time zone of tooltips and the status line; None shows UTC.
    max_points : int, default=5000
        Maximum number of transitions drawn.
    title : str, optional
        Chart title.
    width : int, default=640
        Chart width in pixels.
    fallback : {"svg", "png", None}, default="svg"
        Static image in the HTML representation; None leaves it out.

    Attributes
    ----------
    selected_transition : tuple of (str, int), or None
        The picked transition as (lane, step); settable from Python.
    """

    selected_transition = traitlets.Any(default_value=None, allow_none=True, help="Picked (lane, step), or None.")

    def __init__(
        self,
        data: Any,
        *,
        tz: str | dt.tzinfo | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        title: str | None = None,
        width: int = 640,
        fallback: str | None = "svg",
    ) -> None:
        owner = "ForkTreeWidget"
        self._tree = fork_tree(data, owner)
        self._clock = ChartTime(tz, owner)
        self._options = {"tz": tz, "title": title, "width": width}
        self._max_points = max_points
        self._from_browser = False
        self._view = OfflineJupyterChart.create(self._chart(max_points, None))
        self._status = ipywidgets.HTML()
        super().__init__(children=[self._view, self._status], fallback=fallback, owner=owner)
        watch_selection(self._view, PICK, self._on_change_pick)
        self._update_status()

    # -- public API -----------------------------------------------------

    @property
    def lanes(self) -> pd.DataFrame:
        """One row per lane: lane, identity, branch, parent, fork_point, first_step, last_step, transitions."""
        return self._tree.lanes.copy()

    @property
    def merges(self) -> pd.DataFrame:
        """One row per merge: source lane and step, target lane and step."""
        return self._tree.merges.copy()

    @property
    def frame(self) -> pd.DataFrame:
        """Every transition with its ``lane``; shared transitions appear only in the parent's lane."""
        return self._tree.frame.copy()

    @property
    def selected(self) -> pd.DataFrame:
        """The picked transition as a one-row frame; empty when nothing is picked."""
        frame = self._tree.frame
        if self.selected_transition is None:
            return frame.iloc[0:0].copy()
        lane, step = self.selected_transition
        return frame[(frame["lane"] == lane) & (frame["step"] == step)].copy()

    # -- trait handling ----------------------------------------------------

    @traitlets.validate("selected_transition")
    def _validate_selected_transition(self, proposal: dict[str, Any]) -> tuple[str, int] | None:
        value = proposal["value"]
        if value is None:
            return None
        lanes = set(self._tree.lanes["lane"])
        if not isinstance(value, (tuple, list)) or len(value) != 2 or value[0] not in lanes:
            raise invalid_parameter("selected_transition", value, f"a (lane, step) pair with lane in {sorted(lanes)}", "ForkTreeWidget")
        return str(value[0]), int(value[1])

    @traitlets.observe("selected_transition")
    def _on_change_selected_transition(self, change: dict[str, Any]) -> None:
        if not self._from_browser:
            self._view.chart = self._chart(self._max_points, change["new"])
            watch_selection(self._view, PICK, self._on_change_pick)
        self._update_status()

    def _on_change_pick(self, selection: Any) -> None:
        points = selection.value or []
        picked = None
        if points and "lane" in points[0] and "step" in points[0]:
            picked = (points[0]["lane"], points[0]["step"])
        self._from_browser = True
        try:
            self.selected_transition = picked
        finally:
            self._from_browser = False

    # -- display -----------------------------------------------------------

    def _chart(self, max_points: int, picked: tuple[str, int] | None) -> Any:
        return fork_tree_chart(None, max_points, selected=picked, tree=self._tree, **self._options)

    def _update_status(self) -> None:
        self._status.value = f'<span class="statebits-status">{self._status_text()}</span>'

    def _status_text(self) -> str:
        picked = self.selected
        if picked.empty:
            return "No transition picked: click a point to pick one."
        row = picked.iloc[0]
        when = self._clock.to_label(picked["timestamp"])[0]
        return f"Picked step {row['step']} of {row['lane']} at {when}: value {row['to_value']}, reason '{row['reason']}'."

    def describe(self) -> str:
        """Return one plain-text paragraph saying what the widget shows."""
        lanes = self._tree.lanes
        forks = int(lanes["parent"].notna().sum())
        names = ", ".join(lanes["lane"].astype(str).tolist()[:8]) + (", ..." if len(lanes) > 8 else "")
        return (
            f"ForkTreeWidget: {count_noun(len(lanes), 'lane')} ({names}), {count_noun(forks, 'fork')}, "
            f"{count_noun(len(self._tree.merges), 'merge')}, "
            f"{len(self._tree.frame):,} transitions by step. {self._status_text()}"
        )

    def static_chart(self) -> Any:
        """Return the fork tree drawn as the static fallback, with the picked transition outlined."""
        return self._chart(min(self._max_points, FALLBACK_MAX_POINTS), self.selected_transition)
