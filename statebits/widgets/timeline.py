"""TimelineWidget: value over time, with a brush that selects a window of transitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import traitlets

from statebits.charts import (
    BRUSH,
    DEFAULT_MAX_POINTS,
    build_timeline,
    normalize_window,
    prepare_timeline,
    rows_in_window,
)
from statebits.widgets._base import FALLBACK_MAX_POINTS, OfflineJupyterChart, StatebitsWidget, ipywidgets, watch_selection

__all__ = ["TimelineWidget"]


class TimelineWidget(StatebitsWidget):
    """Value over time, confidence as opacity, and a brush that selects a window.

    Dragging across the chart selects the transitions in that time window;
    they are available as :attr:`selected`. Setting :attr:`selected_range`
    from Python moves the brush in the chart and updates :attr:`selected`.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        One or more histories.
    tz : str or datetime.tzinfo, optional
        Time zone of the axis, tooltips and status line; None shows UTC.
    max_points : int, default=5000
        Maximum number of transitions drawn; longer histories keep the
        extremes of each time bucket. :attr:`selected` always comes from the
        whole history.
    title : str, optional
        Chart title; defaults to the identity.
    width : int, default=640
        Chart width in pixels.
    height : int, default=240
        Chart height in pixels.
    fallback : {"svg", "png", None}, default="svg"
        Static image in the HTML representation, shown where no widget
        manager runs (nbconvert HTML, rendered notebooks); None leaves it out.

    Attributes
    ----------
    selected_range : tuple of two pandas.Timestamp, or None
        The brushed window (start, end) in UTC; None when nothing is brushed.

    Examples
    --------
    >>> from statebits.widgets import TimelineWidget
    >>> widget = TimelineWidget(frame)  # doctest: +SKIP
    >>> widget.selected_range = ("2014-11-01", "2014-11-08")  # doctest: +SKIP
    >>> len(widget.selected)  # doctest: +SKIP
    337
    """

    selected_range = traitlets.Any(default_value=None, allow_none=True, help="Brushed (start, end) window in UTC, or None.")

    def __init__(
        self,
        data: Any,
        *,
        tz: str | dt.tzinfo | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        title: str | None = None,
        width: int = 640,
        height: int = 240,
        fallback: str | None = "svg",
    ) -> None:
        self._prepared = prepare_timeline(data, tz=tz, max_points=max_points, title=title, owner="TimelineWidget")
        self._tz = tz
        self._size = {"width": width, "height": height}
        self._from_browser = False
        self._selected = self._prepared.frame.iloc[0:0]
        self._static_prepared = None
        self._view = OfflineJupyterChart.create(build_timeline(self._prepared, **self._size))
        self._status = ipywidgets.HTML()
        super().__init__(children=[self._view, self._status], fallback=fallback, owner="TimelineWidget")
        watch_selection(self._view, BRUSH, self._on_change_brush)
        self._update_status()

    # -- public API -----------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """The whole history shown, sorted by time, with UTC timestamps."""
        return self._prepared.frame.copy()

    @property
    def selected(self) -> pd.DataFrame:
        """The transitions inside :attr:`selected_range`; empty when nothing is brushed."""
        return self._selected.copy()

    def select(self, start: Any, end: Any) -> None:
        """Brush the window from ``start`` to ``end``; naive times are read as UTC."""
        self.selected_range = (start, end)

    def clear_selection(self) -> None:
        """Remove the brush, so that nothing is selected."""
        self.selected_range = None

    # -- trait handling ----------------------------------------------------

    @traitlets.validate("selected_range")
    def _validate_selected_range(self, proposal: dict[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        value = proposal["value"]
        if value is None:
            return None
        return normalize_window(value, "TimelineWidget.selected_range")

    @traitlets.observe("selected_range")
    def _on_change_selected_range(self, change: dict[str, Any]) -> None:
        self._selected = rows_in_window(self._prepared.frame, change["new"])
        if not self._from_browser:
            # Rebuilding the spec with an initial brush value draws the brush in the browser.
            self._view.chart = build_timeline(self._prepared, selection=change["new"], **self._size)
            watch_selection(self._view, BRUSH, self._on_change_brush)
        self._update_status()

    def _on_change_brush(self, selection: Any) -> None:
        window = None
        values = selection.value or {}
        bounds = values.get("time") if isinstance(values, dict) else None
        if bounds:
            clock = self._prepared.clock
            window = (clock.from_chart(bounds[0]), clock.from_chart(bounds[-1]))
        self._from_browser = True
        try:
            self.selected_range = window
        finally:
            self._from_browser = False

    # -- display -----------------------------------------------------------

    def _update_status(self) -> None:
        self._status.value = f'<span class="statebits-status">{self._status_text()}</span>'

    def _status_text(self) -> str:
        if self.selected_range is None:
            return "No window selected: drag across the chart to select transitions."
        clock = self._prepared.clock
        start, end = clock.to_label(pd.Series(list(self.selected_range)))
        return f"{len(self._selected):,} transitions selected from {start} to {end}."

    def describe(self) -> str:
        """Return one plain-text paragraph saying what the widget shows."""
        prepared = self._prepared
        frame = prepared.frame
        if frame.empty:
            span = "no transitions"
        else:
            first, last = prepared.clock.to_label(frame["timestamp"].iloc[[0, -1]])
            span = f"{len(frame):,} transitions from {first} to {last}"
        drawn = f"; {prepared.drawn.note}" if prepared.drawn.note else ""
        return f"TimelineWidget of {prepared.title}: value over time, {span}{drawn}. {self._status_text()}"

    def static_chart(self) -> Any:
        """Return the timeline drawn as the static fallback, with the current brush."""
        if self._static_prepared is None:
            limit = min(FALLBACK_MAX_POINTS, len(self._prepared.frame)) or 1
            if limit >= len(self._prepared.drawn.frame) or limit < 10:
                self._static_prepared = self._prepared
            else:
                self._static_prepared = prepare_timeline(
                    self._prepared.frame, tz=self._tz, max_points=limit, title=self._prepared.title, owner="TimelineWidget"
                )
        return build_timeline(self._static_prepared, selection=self.selected_range, **self._size)
