"""Small real datasets bundled with statebits, as uniform event frames.

The files are copies of openly licensed public data: sensor and traffic
series with labelled anomaly windows from the Numenta Anomaly Benchmark
(MIT licence), and public-domain series from NOAA and the statsmodels
collection. ``describe(name)`` gives each one's source, licence and units.

Examples
--------
>>> import statebits
>>> from statebits import datasets
>>> frame = datasets.load("nyc_taxi")
>>> frame.shape
(10320, 3)
"""

from typing import Any

from statebits.datasets._catalog import DatasetInfo, describe, names

__all__ = ["DatasetInfo", "anomaly_windows", "catalog", "data_path", "describe", "load", "names"]

# Functions that need pandas are imported on first use, so that listing the
# datasets (as `statebits --help` does) does not import pandas.
_LAZY = {"anomaly_windows", "catalog", "data_path", "load"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'statebits.datasets' has no attribute {name!r}")
    from statebits.datasets import _load

    value = getattr(_load, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
