"""Registration of the ``.sb`` accessor on pandas and Polars DataFrames.

``import statebits`` calls :func:`register_accessors`. A library that is
already imported gets the accessor at once. Otherwise an import hook adds it
right after the library's own import finishes, so ``import statebits`` does
not pay for importing pandas and Polars. Either way, every DataFrame a
program can create has ``.sb``.

Registration never replaces an ``sb`` attribute that statebits did not
define: it warns and leaves the attribute alone. Registering twice, as on a
re-import, is silent.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

from statebits.core.confidence import check_confidence
from statebits.core.errors import ValidationError
from statebits.core.clock import to_ns
from statebits.frames.schema import REQUIRED_COLUMNS, missing_columns

__all__ = ["register_accessors", "ACCESSOR_NAME"]

#: Attribute name of the accessor on DataFrames.
ACCESSOR_NAME = "sb"
_MARKER = "_statebits_accessor"


def register_accessors() -> None:
    """Register ``.sb`` on pandas and Polars DataFrames, now or when each library is imported."""
    for module_name, register in (("pandas", _register_pandas), ("polars", _register_polars)):
        module = sys.modules.get(module_name)
        if module is not None and _initialised(module_name, module):
            register()
        else:
            _WATCHER.watch(module_name, register)


def _initialised(name: str, module: ModuleType) -> bool:
    """Return True once a library has finished its own import."""
    spec = getattr(module, "__spec__", None)
    return not getattr(spec, "_initializing", False) and hasattr(module, "DataFrame")


class _PandasAccessorFactory:
    """Build :class:`statebits.frames._pandas.PandasAccessor` for a frame.

    Registration happens while pandas finishes its import, possibly because
    the accessor module itself imports pandas, so the accessor module is
    imported only when ``df.sb`` is first used.
    """

    _statebits_accessor = True

    def __new__(cls, frame: Any) -> Any:
        from statebits.frames._pandas import PandasAccessor

        return PandasAccessor(frame)


class _PolarsNamespaceFactory:
    """Build :class:`statebits.frames._polars.PolarsNamespace` for a frame (see the pandas factory)."""

    _statebits_accessor = True

    def __new__(cls, frame: Any) -> Any:
        from statebits.frames._polars import PolarsNamespace

        return PolarsNamespace(frame)


def _register_pandas() -> None:
    import pandas as pd

    if _taken(pd.DataFrame, "pandas.DataFrame"):
        return
    pd.api.extensions.register_dataframe_accessor(ACCESSOR_NAME)(_PandasAccessorFactory)


def _register_polars() -> None:
    import polars as pl

    if _taken(pl.DataFrame, "polars.DataFrame"):
        return
    pl.api.register_dataframe_namespace(ACCESSOR_NAME)(_PolarsNamespaceFactory)


def _taken(cls: type, label: str) -> bool:
    """Return True when ``cls.sb`` exists; warn when statebits did not define it."""
    current = getattr(cls, ACCESSOR_NAME, None)
    if current is None:
        return False
    if not getattr(current, _MARKER, False):
        warnings.warn(
            f"statebits did not register the `.{ACCESSOR_NAME}` accessor on {label}: the attribute already exists "
            f"({current!r}); use statebits.frames functions such as verify_frame instead",
            RuntimeWarning,
            stacklevel=4,
        )
    return True


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """A meta path finder that runs callbacks after a watched top-level module is imported.

    It finds no module itself. It takes the spec from the other finders and
    wraps the loader, so the module is loaded exactly as without the watcher.
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[], None]]] = {}
        self._searching: set[str] = set()
        self._lock = threading.Lock()

    def watch(self, module_name: str, callback: Callable[[], None]) -> None:
        with self._lock:
            callbacks = self._callbacks.setdefault(module_name, [])
            if callback not in callbacks:
                callbacks.append(callback)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._callbacks or fullname in self._searching:
            return None
        self._searching.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _CallbackLoader(spec.loader, self, fullname)
        return spec

    def take_callbacks(self, module_name: str) -> list[Callable[[], None]]:
        """Remove and return the callbacks of a module; uninstall the watcher when none are left.

        Called when the module is executed, not when its spec is found: libraries
        probe optional dependencies with ``importlib.util.find_spec`` without
        importing them.
        """
        with self._lock:
            callbacks = self._callbacks.pop(module_name, [])
            if not self._callbacks and self in sys.meta_path:
                sys.meta_path.remove(self)
        return callbacks


class _CallbackLoader(importlib.abc.Loader):
    """Delegate to the real loader, then run the watcher's callbacks once the module is executed."""

    def __init__(self, loader: Any, watcher: _ImportWatcher, module_name: str) -> None:
        self._loader = loader
        self._watcher = watcher
        self._module_name = module_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Restore the real loader on the module, as if it had not been watched.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        for callback in self._watcher.take_callbacks(self._module_name):
            try:
                callback()
            except Exception as exc:  # a failed registration must not break the user's import
                warnings.warn(f"statebits could not register the `.sb` accessor for {module.__name__}: {exc}", RuntimeWarning, stacklevel=2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


_WATCHER = _ImportWatcher()


# -- helpers shared by the pandas and Polars accessors ----------------------------------------


def schema_error(columns: Any, library: str) -> AttributeError | None:
    """Return the AttributeError for a frame that lacks required columns, or None."""
    missing = missing_columns(columns)
    if not missing:
        return None
    shown = [str(name) for name in columns][:20]
    return AttributeError(
        f"`.{ACCESSOR_NAME}` needs a history frame with the columns {list(REQUIRED_COLUMNS)}; missing: {missing}; "
        f"the {library} frame has {shown}. Build one with Statebit.to_{library}() or statebits.from_events()."
    )


def filter_bounds(
    tag: Any, min_confidence: Any, max_confidence: Any, start: Any, end: Any
) -> tuple[str | None, float | None, float | None, int | None, int | None]:
    """Validate the arguments of ``filter`` and return them as (tag, low, high, start_ns, end_ns)."""
    if tag is not None and not isinstance(tag, str):
        raise ValidationError(f"invalid `tag` of filter: expected a string, got {tag!r}")
    low = None if min_confidence is None else check_confidence(min_confidence)
    high = None if max_confidence is None else check_confidence(max_confidence)
    if low is not None and high is not None and low > high:
        raise ValidationError(f"invalid confidence range of filter: min_confidence {low} is above max_confidence {high}")
    start_ns = None if start is None else to_ns(start)
    end_ns = None if end is None else to_ns(end)
    if start_ns is not None and end_ns is not None and start_ns > end_ns:
        raise ValidationError(f"invalid time range of filter: start {start!r} is after end {end!r}")
    return tag, low, high, start_ns, end_ns


def ml_verbs() -> ModuleType:
    """Return :mod:`statebits.ml.verbs`, imported on first use."""
    return importlib.import_module("statebits.ml.verbs")
