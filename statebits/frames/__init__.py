"""History frames: pandas, Polars and Arrow views, the ``.sb`` accessor, ingest and Parquet.

Importing this package imports neither pandas, Polars nor pyarrow; the
public functions below load their modules on first use.

Functions
---------
from_events
    Build histories from an event table (pandas or Polars), vectorised.
write_parquet, read_parquet
    Store statebits in a Parquet file and load them back, verified.
verify_frame
    Check the checksums and from_value continuity of a history frame.
register_accessors
    Register ``.sb`` on pandas and Polars DataFrames (done by ``import statebits``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["from_events", "write_parquet", "read_parquet", "verify_frame", "FrameReport", "register_accessors"]

_MODULE_OF = {
    "from_events": "statebits.frames.ingest",
    "write_parquet": "statebits.frames.parquet",
    "read_parquet": "statebits.frames.parquet",
    "verify_frame": "statebits.frames._restore",
    "FrameReport": "statebits.frames._restore",
    "register_accessors": "statebits.frames.accessor",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'statebits.frames' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
