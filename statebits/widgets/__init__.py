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

__all__ = ["TimelineWidget", "ForkTreeWidget", "AnomalyWidget", "CollectionWidget"]

_MODULE_OF = {
    "TimelineWidget": "statebits.widgets.timeline",
    "ForkTreeWidget": "statebits.widgets.fork_tree",
    "AnomalyWidget": "statebits.widgets.anomaly",
    "CollectionWidget": "statebits.widgets.collection",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'statebits.widgets' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
