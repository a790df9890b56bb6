"""CollectionWidget: one row per identity; picking one opens its timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import traitlets

from statebits.charts import DEFAULT_MAX_POINTS, PICK, ChartTime, collection_chart, collection_summary, history_frame
from statebits.core.errors import invalid_parameter
from statebits.widgets._base import OfflineJupyterChart, StatebitsWidget, ipywidgets, watch_selection
from statebits.widgets.timeline import TimelineWidget

__all__ = ["CollectionWidget"]


class CollectionWidget(StatebitsWidget):
    """An overview of a collection, one row per identity; picking one opens its timeline.

    The overview colours each identity's row by the number of transitions
    per time bucket. Clicking a row, choosing an identity in the list, or
    setting :attr:`identity` from Python opens that identity's
    :class:`TimelineWidget` below the overview, as :attr:`timeline`.

    Parameters
    ----------
    data : StatebitsCollection, pandas.DataFrame or polars.DataFrame
        A collection, or a collection frame in long format.
    tz : str or datetime.tzinfo, optional
        Time zone of the axes and tooltips; None shows UTC.
    max_points : int, default=5000
        Maximum number of transitions drawn by the timeline.
    max_identities : int, default=40
        Rows drawn in the overview; the list offers every identity.
    title : str, optional
        Overview title.
    width : int, default=640
        Chart width in pixels.
    fallback : {"svg", "png", None}, default="svg"
        Static image in the HTML representation; None leaves it out.

    Attributes
    ----------
    identity : str or None
        The identity whose timeline is open.
    """

    identity = traitlets.Unicode(default_value=None, allow_none=True, help="Identity whose timeline is open, or None.")

    def __init__(
        self,
        data: Any,
        *,
        tz: str | dt.tzinfo | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        max_identities: int = 40,
        title: str | None = None,
        width: int = 640,
        fallback: str | None = "svg",
    ) -> None:
        owner = "CollectionWidget"
        self._frame = history_frame(data, owner)
        self._frame["identity"] = self._frame["identity"].astype(str)
        self._summary = collection_summary(self._frame, owner)
        self._clock = ChartTime(tz, owner)
        self._options = {"tz": tz, "max_identities": max_identities, "title": title, "width": width}
        self._timeline_options = {"tz": tz, "max_points": max_points, "width": width, "fallback": fallback}
        self._timeline: TimelineWidget | None = None
        self._from_browser = False

        self._list = ipywidgets.Select(
            options=[(self._option_label(name), name) for name in self._summary.index],
            value=None,
            rows=min(10, max(len(self._summary), 2)),
            description="identity",
            layout=ipywidgets.Layout(width="420px"),
        )
        self._view = OfflineJupyterChart.create(collection_chart(self._frame, **self._options))
        self._status = ipywidgets.HTML()
        self._detail = ipywidgets.VBox()
        super().__init__(children=[self._list, self._view, self._status, self._detail], fallback=fallback, owner=owner)
        traitlets.link((self._list, "value"), (self, "identity"))
        watch_selection(self._view, PICK, self._on_change_pick)
        self._update_status()

    # -- public API -----------------------------------------------------

    @property
    def summary(self) -> pd.DataFrame:
        """One row per identity: transitions, first, last, last_value, mean_confidence, branches."""
        return self._summary.copy()

    @property
    def frame(self) -> pd.DataFrame:
        """The whole collection frame, sorted by time."""
        return self._frame.copy()

    @property
    def timeline(self) -> TimelineWidget | None:
        """The timeline of :attr:`identity`, or None when no identity is picked."""
        return self._timeline

    # -- trait handling ----------------------------------------------------

    @traitlets.validate("identity")
    def _validate_identity(self, proposal: dict[str, Any]) -> str | None:
        value = proposal["value"]
        if value is not None and value not in self._summary.index:
            listed = ", ".join(map(repr, self._summary.index[:10]))
            if len(self._summary) > 10:
                listed += ", ..."
            raise invalid_parameter("identity", value, f"one of the collection's identities ({listed}) or None", "CollectionWidget")
        return value

    @traitlets.observe("identity")
    def _on_change_identity(self, change: dict[str, Any]) -> None:
        name = change["new"]
        with self.hold_sync():
            if name is None:
                self._timeline = None
                self._detail.children = []
            else:
                rows = self._frame[self._frame["identity"] == name]
                self._timeline = TimelineWidget(rows, title=name, **self._timeline_options)
                self._detail.children = [self._timeline]
            if not self._from_browser:
                self._view.chart = collection_chart(self._frame, selected=name, **self._options)
                watch_selection(self._view, PICK, self._on_change_pick)
            self._update_status()

    def _on_change_pick(self, selection: Any) -> None:
        points = selection.value or []
        name = points[0].get("identity") if points else None
        self._from_browser = True
        try:
            self.identity = name
        finally:
            self._from_browser = False

    # -- display -----------------------------------------------------------

    def _option_label(self, name: str) -> str:
        row = self._summary.loc[name]
        return f"{name} ({row['transitions']:,} transitions)"

    def _update_status(self) -> None:
        self._status.value = f'<span class="statebits-status">{self._status_text()}</span>'

    def _status_text(self) -> str:
        if self.identity is None:
            return "No identity picked: click a row or choose one in the list to open its timeline."
        row = self._summary.loc[self.identity]
        last = self._clock.to_label(pd.Series([row["last"]]))[0]
        return f"Timeline of {self.identity}: {row['transitions']:,} transitions, last value {row['last_value']} at {last}."

    def describe(self) -> str:
        """Return one plain-text paragraph saying what the widget shows."""
        return (
            f"CollectionWidget: {len(self._summary):,} statebits, {len(self._frame):,} transitions, "
            f"one row per identity with transitions per time bucket. {self._status_text()}"
        )

    def static_chart(self) -> Any:
        """Return the overview drawn as the static fallback, with the picked identity outlined."""
        return collection_chart(self._frame, selected=self.identity, **self._options)

    def _repr_html_(self) -> str:
        """Render the overview and, when an identity is picked, its timeline as static images."""
        html = super()._repr_html_()
        if self._timeline is not None:
            html += self._timeline._repr_html_()
        return html
