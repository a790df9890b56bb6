"""The catalogue of the real datasets shipped in ``statebits/datasets/data``.

Each entry records where a file came from, its licence, size and units. The
files are byte-for-byte copies of the published ones, so nothing is cleaned
or resampled.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from statebits.core.errors import ValidationError

__all__ = ["DatasetInfo", "CATALOG", "NAB_SOURCE", "NAB_LICENCE", "names", "describe"]

NAB_SOURCE = (
    "Numenta Anomaly Benchmark (NAB), commit ea702d7 (2024-12-03); "
    "Ahmad, Lavin, Purdy and Agha (2017), Neurocomputing, doi:10.1016/j.neucom.2017.04.070"
)
NAB_LICENCE = "MIT, Copyright 2014-2024 Numenta Inc. (statebits/datasets/data/nab/LICENSE.txt)"
_NAB_TIME_NOTE = "NAB gives no time zone; times are read as UTC."


@dataclass(frozen=True)
class DatasetInfo:
    """Description of one bundled dataset.

    Attributes
    ----------
    name : str
        Name passed to :func:`~statebits.datasets.load`.
    title : str
        One-line description of what was measured.
    path : str
        File under ``statebits/datasets/data``.
    rows : int
        Rows of the frame that ``load`` returns.
    identities : tuple of str
        Values of the ``identity`` column.
    frequency : str
        Spacing of the observations.
    unit : str
        Unit of ``value``, or a note that the source gives none.
    extra_columns : tuple of str
        Columns of the frame besides ``identity``, ``timestamp`` and ``value``.
    source : str
        Who published the data, and the version copied.
    licence : str
        Licence of the data.
    notes : str
        Caveats such as missing values or how times were read.
    nab_file : str or None
        Key of the file in NAB's ``windows.json`` and ``labels.json``, for
        datasets with labelled anomaly windows; None otherwise.
    window_events : tuple of str
        What happened in each anomaly window, in time order, where the source
        names it; empty otherwise.
    """

    name: str
    title: str
    path: str
    rows: int
    identities: tuple[str, ...]
    frequency: str
    unit: str
    source: str
    licence: str
    extra_columns: tuple[str, ...] = ()
    notes: str = ""
    nab_file: str | None = None
    window_events: tuple[str, ...] = ()

    @property
    def has_anomaly_windows(self) -> bool:
        """Whether NAB labelled anomaly windows exist for this dataset."""
        return self.nab_file is not None


def _nab(
    name: str,
    nab_file: str,
    title: str,
    rows: int,
    frequency: str,
    unit: str,
    origin: str = "",
    notes: str = "",
    window_events: tuple[str, ...] = (),
) -> DatasetInfo:
    source = NAB_SOURCE if not origin else f"{NAB_SOURCE}; raw data from {origin}"
    return DatasetInfo(
        name=name,
        title=title,
        path=f"nab/{nab_file}",
        rows=rows,
        identities=(name,),
        frequency=frequency,
        unit=unit,
        source=source,
        licence=NAB_LICENCE,
        notes=f"{_NAB_TIME_NOTE} {notes}".strip(),
        nab_file=nab_file,
        window_events=window_events,
    )


_ENTRIES = (
    _nab(
        "machine_temperature",
        "realKnownCause/machine_temperature_system_failure.csv",
        "Temperature sensor of an internal component of a large industrial machine; "
        "the windows cover a planned shutdown and the build-up to a catastrophic failure",
        22_695,
        "5 min",
        "not stated by the source",
        notes="The 12 times from 2014-01-07 02:00 to 02:55 occur twice in the file; both rows are kept in file order.",
    ),
    _nab(
        "nyc_taxi",
        "realKnownCause/nyc_taxi.csv",
        "New York City taxi passengers per 30 minutes; the windows cover the NYC marathon, "
        "Thanksgiving, Christmas, New Year's Day and a snowstorm",
        10_320,
        "30 min",
        "passengers per 30 minutes",
        origin="the NYC Taxi and Limousine Commission, aggregated by NAB",
        notes="The times look like New York local time: on 2014-11-02, the night daylight saving time "
        "ended, the 01:00 and 01:30 counts are 39,197 and 35,212 against 23,109 at 00:30 and 13,259 at 02:00.",
        # NAB's data README names these five events; the windows are in the same date order.
        window_events=("NYC marathon", "Thanksgiving", "Christmas", "New Year's Day", "snowstorm"),
    ),
    _nab(
        "ambient_temperature",
        "realKnownCause/ambient_temperature_system_failure.csv",
        "Ambient temperature in an office, with two labelled system failures",
        7_267,
        "1 h",
        "not stated by the source",
    ),
    _nab(
        "ec2_cpu",
        "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
        "CPU utilisation of an AWS EC2 instance from Amazon CloudWatch, with two labelled anomalies",
        4_032,
        "5 min",
        "percent",
    ),
    _nab(
        "traffic_speed",
        "realTraffic/speed_7578.csv",
        "Road traffic speed at one sensor in the Twin Cities metro area, Minnesota",
        1_127,
        "about 5 min, irregular",
        "not stated by the source",
        origin="the Minnesota Department of Transportation",
    ),
    DatasetInfo(
        name="co2",
        title="Weekly atmospheric CO2 concentration at Mauna Loa, March 1958 to December 2001",
        path="statsmodels/co2_weekly_mauna_loa.csv",
        rows=2_284,
        identities=("co2",),
        frequency="1 week",
        unit="ppm (mole fraction in dry air)",
        source="Keeling and Whorf (2004), Scripps Institution of Oceanography and CDIAC, as shipped by statsmodels",
        licence="public domain",
        notes="59 weeks have no measurement; their value is NaN.",
    ),
    DatasetInfo(
        name="nile",
        title="Yearly flow of the Nile at Aswan, 1871 to 1970, with a drop in level after 1898",
        path="statsmodels/nile_flow.csv",
        rows=100,
        identities=("nile",),
        frequency="1 year",
        unit="10^8 cubic metres per year",
        source="Cobb (1978), as shipped by statsmodels",
        licence="public domain",
        notes="Each year is stamped at 1 January, 00:00 UTC.",
    ),
    DatasetInfo(
        name="sunspots",
        title="Yearly sunspot activity, 1700 to 2008, with a cycle of about 11 years",
        path="statsmodels/sunspots_yearly.csv",
        rows=309,
        identities=("sunspots",),
        frequency="1 year",
        unit="yearly sunspot number",
        source="NOAA National Geophysical Data Center, as shipped by statsmodels",
        licence="public domain",
        notes="Each year is stamped at 1 January, 00:00 UTC.",
    ),
    DatasetInfo(
        name="seattle_weather",
        title="Daily weather in Seattle, 2012 to 2015: one statebit per measurement, "
        "with the day's weather category in the `weather` column",
        path="noaa/seattle_weather_daily.csv",
        rows=4 * 1_461,
        identities=("precipitation", "temp_max", "temp_min", "wind"),
        frequency="1 day",
        unit="not stated in the file; the values fit precipitation in mm, temperatures in degrees Celsius and wind in m/s",
        source="NOAA, as shipped by the vega_datasets package",
        licence="public domain",
        extra_columns=("weather",),
        notes="Each day is stamped at 00:00 UTC; `weather` is one of drizzle, fog, rain, snow, sun.",
    ),
)

#: Datasets by name, in alphabetical order.
CATALOG: dict[str, DatasetInfo] = {entry.name: entry for entry in sorted(_ENTRIES, key=lambda entry: entry.name)}


def names() -> list[str]:
    """Return the names of the bundled datasets, in alphabetical order.

    Examples
    --------
    >>> from statebits import datasets
    >>> "nyc_taxi" in datasets.names()
    True
    """
    return list(CATALOG)


def describe(name: str) -> DatasetInfo:
    """Return the source, licence, size and units of one dataset.

    Raises
    ------
    ValidationError
        If ``name`` is not a bundled dataset; the message lists the names.

    Examples
    --------
    >>> from statebits import datasets
    >>> datasets.describe("nile").rows
    100
    """
    info = CATALOG.get(name) if isinstance(name, str) else None
    if info is None:
        close = difflib.get_close_matches(str(name), CATALOG, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValidationError(f"unknown dataset {name!r}: expected one of {', '.join(CATALOG)}{hint}")
    return info
