"""Jupyter widgets for statebit histories, built from ipywidgets and Altair's JupyterChart.

Importing this package imports nothing optional: each widget class is loaded
on first access, and a missing ipywidgets or anywidget then raises an
ImportError that names the ``widgets`` extra.

Widgets
-------
TimelineWidget
    Value over time with a brush; ``selected`` contains the brushed transitions.
ForkTreeWidget
    A statebit and its forks as lanes, with merges drawn back.
AnomalyWidget
    Anomaly scores with a threshold slider that updates the flags.
CollectionWidget
    One row per identity; picking one opens its timeline.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TimelineWidget", "ForkTreeWidget", "AnomalyWidget", "CollectionWidget", "widget_for"]

_MODULE_OF = {
    "TimelineWidget": "statebits.widgets.timeline",
    "ForkTreeWidget": "statebits.widgets.fork_tree",
    "AnomalyWidget": "statebits.widgets.anomaly",
    "CollectionWidget": "statebits.widgets.collection",
}


#: Widget class of each ``kind`` accepted by :func:`widget_for`.
KINDS = {
    "timeline": "TimelineWidget",
    "fork_tree": "ForkTreeWidget",
    "anomaly": "AnomalyWidget",
    "collection": "CollectionWidget",
}


def widget_for(data: Any, kind: str | None = None, **kwargs: Any) -> Any:
    """Build the widget of ``kind`` for ``data``, as ``df.sb.widget()`` does.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        The histories to show.
    kind : {"timeline", "fork_tree", "anomaly", "collection"}, optional
        The widget to build. By default a frame or collection with more than
        one identity gets a CollectionWidget and anything else a
        TimelineWidget.
    **kwargs
        Passed to the widget's constructor.
    """
    from statebits.core.errors import invalid_parameter

    if kind is None:
        from statebits.charts import history_frame

        identities = history_frame(data, "widget_for")["identity"].nunique()
        kind = "collection" if identities > 1 else "timeline"
    if kind not in KINDS:
        raise invalid_parameter("kind", kind, f"one of {sorted(KINDS)} or None", "widget_for")
    return __getattr__(KINDS[kind])(data, **kwargs)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'statebits.widgets' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
