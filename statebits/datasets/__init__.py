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

from statebits.datasets._catalog import DatasetInfo
from statebits.datasets._load import anomaly_windows, catalog, data_path, describe, load, names

__all__ = ["DatasetInfo", "anomaly_windows", "catalog", "data_path", "describe", "load", "names"]
