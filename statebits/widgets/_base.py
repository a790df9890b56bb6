"""Shared parts of the statebits widgets: the offline chart and the static fallback."""

from __future__ import annotations

import logging
from typing import Any, Callable

from statebits._dependencies import import_optional

ipywidgets = import_optional("ipywidgets", feature="statebits widgets")
import_optional("anywidget", feature="statebits widgets")

import altair as alt  # noqa: E402  (after the optional imports, so a missing extra is named first)
import traitlets  # noqa: E402

from statebits.charts import chart_to_html  # noqa: E402
from statebits.core.errors import invalid_parameter  # noqa: E402

__all__ = ["OfflineJupyterChart", "StatebitsWidget", "FALLBACK_FORMATS", "FALLBACK_MAX_POINTS"]

logger = logging.getLogger(__name__)

#: Formats of the static image put into a widget's HTML representation.
FALLBACK_FORMATS = ("svg", "png", None)

#: Transitions drawn in a static fallback image. An inline SVG grows by about
#: 240 bytes per point (measured on the NYC taxi timeline), so the picture keeps
#: fewer points than the live chart: 600 points make an SVG of about 140 kB.
FALLBACK_MAX_POINTS = 600


#: vega-embed options of every widget chart. SVG output keeps each mark in the
#: page's DOM (charts hold at most a few thousand marks), and the action menu
#: offers only the image export, because its editor link opens an external site.
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}


class OfflineJupyterChart(alt.JupyterChart):
    """A JupyterChart whose JavaScript is bundled by vl-convert instead of fetched from a CDN.

    Offline mode is switched on for this subclass only, on first use, so the
    user's own ``alt.JupyterChart`` keeps whatever mode they chose.
    """

    @classmethod
    def create(cls, chart: Any) -> OfflineJupyterChart:
        """Build the widget for ``chart``, bundling the JavaScript on the first call of the process."""
        if not cls.__dict__.get("_is_offline", False):
            cls.enable_offline()
        return cls(chart, embed_options=EMBED_OPTIONS)


def watch_selection(view: alt.JupyterChart, name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(selection)`` whenever the browser changes the selection ``name`` of ``view``.

    JupyterChart replaces its ``selections`` object whenever its chart is
    set, so this must be called again after each ``view.chart = ...``.
    """

    def on_change(change: dict[str, Any]) -> None:
        try:
            callback(change["new"])
        except Exception:
            # An exception here would be swallowed by the comm handler; log it instead.
            logger.exception("statebits widget failed to apply the %r selection from the browser", name)

    view.selections.observe(on_change, names=[name])


class StatebitsWidget(ipywidgets.VBox):
    """Base class of the statebits widgets.

    Subclasses implement :meth:`describe` and :meth:`static_chart`. Every
    widget displays as a live widget where a widget manager runs, and as a
    static image (``text/html``) and a plain-text description elsewhere, for
    example in nbconvert HTML or a rendered report.
    """

    def __init__(self, children: list[Any], fallback: str | None, owner: str) -> None:
        if fallback not in FALLBACK_FORMATS:
            raise invalid_parameter("fallback", fallback, "'svg', 'png' or None", owner)
        self._fallback = fallback
        super().__init__(children=children)

    def describe(self) -> str:
        """Return one plain-text paragraph saying what the widget shows."""
        raise NotImplementedError

    def static_chart(self) -> alt.TopLevelMixin:
        """Return the Altair chart drawn as the static fallback, in the widget's current state."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.describe()}>"

    def _repr_html_(self) -> str:
        """Render the static fallback: an inline SVG (or PNG) and the description."""
        # Per-mark ARIA labels would double the SVG's size; the figure's caption describes it instead.
        chart = self.static_chart().configure(aria=False)
        return chart_to_html(chart, image_format=self._fallback or "svg", caption=self.describe())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = self.describe()
        if self._fallback is not None:
            bundle["text/html"] = self._repr_html_()
        return bundle
