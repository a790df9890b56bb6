"""Lazy access to optional dependencies.

Nothing here is imported when ``statebits`` is imported. Each helper imports
its package on first use and raises :class:`MissingDependencyError` naming the
extra to install when the package is absent.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from statebits.core.errors import MissingDependencyError

__all__ = ["import_optional", "EXTRA_OF"]

# Module name -> the pip extra of statebits that installs it.
EXTRA_OF: dict[str, str] = {
    "torch": "ml",
    "sklearn": "ml",
    "pyod": "ml",
    "shap": "ml",
    "threadpoolctl": "ml",
    "redis": "distributed",
    "websockets": "streaming",
    "cryptography": "encryption",
    "ipywidgets": "widgets",
    "anywidget": "widgets",
    "vl_convert": "widgets",
}


def import_optional(module: str, feature: str | None = None) -> ModuleType:
    """Import an optional module or raise an ImportError that names its extra.

    Parameters
    ----------
    module : str
        Dotted module name, such as ``"sklearn.ensemble"``.
    feature : str, optional
        What the caller wanted to do, used in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = EXTRA_OF.get(top, "all")
        what = f" for {feature}" if feature else ""
        raise MissingDependencyError(
            f"`{top}` is required{what} but is not installed; "
            f"install it with `pip install 'statebits[{extra}]'`"
        ) from exc
