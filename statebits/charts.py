"""Altair charts of statebit histories, and static SVG and PNG rendering of them.

Every chart takes a Statebit, a collection, a pandas or Polars history frame
(or any object with ``to_pandas()``) and embeds at most ``max_points`` rows of
data: longer histories are reduced to the extreme values of each time bucket,
and the chart's subtitle states how many rows are drawn. Altair's global row limit is never changed.

Times reach the chart as UTC ISO-8601 strings on a ``utc`` scale, so a spec is
the same on every machine whatever its local time zone. With ``tz`` set, the
wall-clock times of that zone are shipped instead, on the same ``utc`` scale.

Altair and vl-convert are imported when a function here first needs them, not
when this module is imported.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import ValidationError, invalid_parameter

if TYPE_CHECKING:
    import altair as alt

__all__ = [
    "DEFAULT_MAX_POINTS",
    "history_frame",
    "timeline_chart",
    "fork_tree_chart",
    "anomaly_chart",
    "collection_chart",
    "collection_summary",
    "chart_to_svg",
    "chart_to_png",
    "chart_to_html",
]

#: Default maximum of data rows embedded in one chart; equal to Altair's own
#: row limit for pandas data, which charts here never switch off.
DEFAULT_MAX_POINTS = 5000

#: Name of the interval selection on the time axis of a timeline.
BRUSH = "brush"
#: Name of the point selection that picks one transition or one identity.
PICK = "pick"
#: Name of the anomaly chart's threshold parameter.
THRESHOLD = "threshold"

_FLAG_COLOR = "#d62728"
_NORMAL_COLOR = "#4c78a8"
_MUTED_COLOR = "#bbbbbb"


# ---------------------------------------------------------------------------
# Input frames
# ---------------------------------------------------------------------------


def history_frame(data: Any, owner: str = "history_frame") -> pd.DataFrame:
    """Convert chart input to a pandas history frame sorted by time.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame, polars.DataFrame
        Anything with the history columns, or with a ``to_pandas()`` method that
        returns them; a list of statebits is concatenated. Only ``timestamp``
        and ``to_value`` are required. Missing optional columns get defaults:
        identity ``"value"``, steps numbered from 1 per identity, empty
        reason, confidence 1.0, no tags and branch ``"main"``.
    owner : str, default="history_frame"
        The public function or class named in error messages.

    Returns
    -------
    pandas.DataFrame
        A new frame with ``timestamp`` as ``datetime64[ns, UTC]`` (naive times
        are read as UTC) and a fresh index, in time order. Input out of time
        order is sorted by timestamp, then step.

    Raises
    ------
    ValidationError
        If ``data`` is of an unsupported type or lacks a required column.
    """
    frame = _to_pandas(data, owner)
    missing = [name for name in ("timestamp", "to_value") if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"{owner} needs a history frame with the columns {', '.join(missing)}; "
            f"the frame has {', '.join(map(str, frame.columns)) or 'no columns'}"
        )

    frame = frame.copy()
    frame["timestamp"] = utc_timestamps(frame["timestamp"], owner)
    if "identity" not in frame.columns:
        frame["identity"] = "value"
    if "branch" not in frame.columns:
        frame["branch"] = "main"
    if "reason" not in frame.columns:
        frame["reason"] = ""
    if "confidence" not in frame.columns:
        frame["confidence"] = 1.0
    if "tags" not in frame.columns:
        frame["tags"] = None
    if "step" not in frame.columns:
        frame["step"] = frame.groupby(["identity", "branch"], sort=False).cumcount() + 1

    # Histories arrive in time order, so the sort (a copy of every column) is usually skipped.
    if not frame["timestamp"].is_monotonic_increasing:
        frame = frame.sort_values(["timestamp", "step"], kind="stable")
    return frame.reset_index(drop=True)


def _to_pandas(data: Any, owner: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas") and callable(data.to_pandas):
        frame = data.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    if isinstance(data, (list, tuple)) and data and all(hasattr(item, "to_pandas") for item in data):
        return pd.concat([item.to_pandas() for item in data], ignore_index=True)
    raise ValidationError(
        f"{owner} expects a Statebit, a StatebitsCollection, a pandas or Polars "
        f"DataFrame, or an object with to_pandas(); got {type(data).__name__}"
    )


def utc_timestamps(values: pd.Series, owner: str = "history_frame") -> pd.Series:
    """Return ``values`` as ``datetime64[ns, UTC]``, reading naive times as UTC."""
    try:
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            times = _parse_time_strings(values)
        else:
            times = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{owner} could not parse the timestamp column as dates ({exc}); "
            "pass datetimes or ISO-8601 strings"
        ) from None
    return times.astype("datetime64[ns, UTC]")


def _parse_time_strings(values: pd.Series) -> pd.Series:
    """Parse ISO-8601 strings in one vectorised pass, other formats one by one."""
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(values, utc=True, format="mixed")


def _tags_text(tags: pd.Series) -> list[str]:
    texts = []
    for value in tags:
        if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
            texts.append(", ".join(str(tag) for tag in value))
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            texts.append("")
        else:
            texts.append(str(value))
    return texts


def _numeric_values(values: pd.Series) -> pd.Series | None:
    """Return ``values`` as floats if every non-missing value is a number, else None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    present = values.dropna()
    if present.empty:
        return values.astype("float64")
    if present.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return None
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any():
        return None
    return pd.to_numeric(values, errors="coerce").astype("float64")


# ---------------------------------------------------------------------------
# Time zones
# ---------------------------------------------------------------------------


class ChartTime:
    """Conversion between UTC instants and the times shipped to a chart.

    A chart always uses a ``utc`` time scale. For a time zone other than UTC,
    the zone's wall-clock time is shipped as if it were UTC, so the axis shows
    that zone's clock on every machine.

    Parameters
    ----------
    tz : str or datetime.tzinfo, optional
        IANA zone name such as ``"Europe/Berlin"``. None means UTC.
    owner : str, default="timeline_chart"
        The public function or class named in error messages.
    """

    def __init__(self, tz: str | dt.tzinfo | None = None, owner: str = "timeline_chart") -> None:
        if tz is None or tz == "UTC":
            self.zone: dt.tzinfo | None = None
            self.label = "UTC"
        elif isinstance(tz, dt.tzinfo):
            self.zone = tz
            self.label = str(tz)
        elif isinstance(tz, str):
            try:
                self.zone = ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise invalid_parameter("tz", tz, "an IANA time zone name such as 'Europe/Berlin', or None for UTC", owner) from None
            self.label = tz
        else:
            raise invalid_parameter("tz", tz, "an IANA time zone name, a tzinfo, or None for UTC", owner)

    def wall_clock(self, times: pd.Series) -> pd.Series:
        """Return the naive wall-clock times of UTC ``times`` in this zone."""
        if self.zone is None:
            return times.dt.tz_localize(None)
        return times.dt.tz_convert(self.zone).dt.tz_localize(None)

    def to_chart(self, times: pd.Series) -> list[str]:
        """Format UTC ``times`` as the ISO strings shipped to a chart (millisecond precision)."""
        text = self.wall_clock(times).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return (text.str.slice(0, 23) + "Z").tolist()

    def to_label(self, times: pd.Series) -> list[str]:
        """Format UTC ``times`` for tooltips, with the zone's abbreviation."""
        if self.zone is None:
            return times.dt.strftime("%Y-%m-%d %H:%M:%S UTC").tolist()
        return times.dt.tz_convert(self.zone).dt.strftime("%Y-%m-%d %H:%M:%S %Z").tolist()

    def to_datetime(self, instant: pd.Timestamp) -> alt.DateTime:
        """Return ``instant`` as a Vega-Lite DateTime on the chart's time scale."""
        import altair as alt

        wall = self.wall_clock(pd.Series([instant]))[0]
        return alt.DateTime(
            year=wall.year,
            month=wall.month,
            date=wall.day,
            hours=wall.hour,
            minutes=wall.minute,
            seconds=wall.second,
            milliseconds=wall.microsecond // 1000,
            utc=True,
        )

    def from_chart(self, value: Any) -> pd.Timestamp:
        """Convert a time sent back by the chart (epoch milliseconds or ISO string) to a UTC Timestamp."""
        if isinstance(value, (int, float)):
            wall = pd.Timestamp(value, unit="ms")
        else:
            wall = pd.Timestamp(value)
            if wall.tzinfo is not None:
                wall = wall.tz_convert("UTC").tz_localize(None)
        if self.zone is None:
            return wall.tz_localize("UTC")
        # NOTE: a wall-clock time repeated by a DST change is read as the
        # later (standard time) instant, and one skipped by it is moved forward.
        local = wall.tz_localize(self.zone, ambiguous=False, nonexistent="shift_forward")
        return local.tz_convert("UTC")


# ---------------------------------------------------------------------------
# Downsampling
# ---------------------------------------------------------------------------


@dataclass
class Reduction:
    """Rows chosen for a chart, and a sentence describing how they were chosen.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows to draw, in time order.
    total : int
        Rows in the input.
    note : str
        Empty when every row is drawn, else a sentence for the chart subtitle.
    """

    frame: pd.DataFrame
    total: int
    note: str = ""

    @property
    def reduced(self) -> bool:
        """Whether rows were left out."""
        return len(self.frame) < self.total


def describe_duration(seconds: float) -> str:
    """Format a duration in the largest unit that keeps it above 1, such as '6 h' or '2.5 d'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size:
            amount = seconds / size
            text = f"{amount:.0f}" if abs(amount - round(amount)) < 0.05 else f"{amount:.1f}"
            return f"{text} {unit}"
    return f"{seconds * 1000:.0f} ms"


def count_noun(count: int, noun: str) -> str:
    """Format a count with its noun, adding "s" unless the count is 1, such as '1 merge' or '2 forks'."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _bucket_ids(times: pd.Series, buckets: int) -> tuple[np.ndarray, float]:
    """Split the span of ``times`` into ``buckets`` equal intervals; return each row's bucket and the width in seconds."""
    nanos = times.to_numpy(dtype="datetime64[ns]").astype("int64")
    start, end = int(nanos.min()), int(nanos.max())
    width = max((end - start) / buckets, 1.0)
    ids = np.minimum(((nanos - start) / width).astype("int64"), buckets - 1)
    return ids, width / 1e9


def reduce_rows(
    frame: pd.DataFrame,
    max_points: int,
    *,
    series: str = "series",
    values: str | None = "value",
    keep: pd.Series | None = None,
) -> Reduction:
    """Choose at most ``max_points`` rows that keep the shape of each series.

    The time span is cut into equal buckets. In each bucket, each series keeps
    its rows with the lowest and the highest value, or its first and last row
    when ``values`` is None (nominal values). Rows where ``keep`` is true (for
    example forks, merges or high anomaly scores) are kept first, in score order
    when ``keep`` is numeric, up to a fifth of ``max_points``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows sorted by ``timestamp`` (UTC), with a ``series`` column.
    max_points : int
        Maximum number of rows returned; at least 2.
    series : str, default="series"
        Column naming the series (line) of each row.
    values : str or None, default="value"
        Float column whose extremes are kept, or None.
    keep : pandas.Series, optional
        Boolean or numeric priority aligned with ``frame``.
    """
    total = len(frame)
    if total <= max_points:
        return Reduction(frame, total)

    priority = pd.Index([], dtype="int64")
    if keep is not None:
        budget = max_points // 5
        if pd.api.types.is_bool_dtype(keep):
            priority = keep.index[keep.to_numpy()][:budget]
        else:
            priority = keep.nlargest(budget).index
    remaining = max_points - len(priority)

    groups = max(frame[series].nunique(), 1)
    buckets = max(remaining // (2 * groups), 1)
    ids, width = _bucket_ids(frame["timestamp"], buckets)
    keys = [frame[series].to_numpy(), ids]
    grouped = frame.assign(_bucket=ids).groupby([series, "_bucket"], sort=False)
    if values is not None and frame[values].notna().any():
        filled = frame[values].astype("float64")
        low = filled.groupby(keys, sort=False).idxmin().dropna()
        high = filled.groupby(keys, sort=False).idxmax().dropna()
        rule = "the lowest and highest value"
    else:
        low = grouped.head(1).index.to_series()
        high = grouped.tail(1).index.to_series()
        rule = "the first and last transition"
    chosen = priority.union(pd.Index(low.astype("int64"))).union(pd.Index(high.astype("int64")))

    # Many series can leave more rows than allowed; an even stride then caps them.
    stride_note = ""
    if len(chosen) > max_points:
        positions = np.linspace(0, len(chosen) - 1, max_points).round().astype("int64")
        chosen = chosen[np.unique(positions)]
        stride_note = ", then every n-th of those"

    result = frame.loc[chosen.sort_values()]
    note = (
        f"{len(result):,} of {total:,} transitions shown: {rule} "
        f"per {describe_duration(width)} bucket{stride_note}"
    )
    return Reduction(result, total, note)


# ---------------------------------------------------------------------------
# Shared chart data
# ---------------------------------------------------------------------------


def _series_labels(frame: pd.DataFrame) -> pd.Series:
    """Label each row with its identity, plus its branch when several branches are present."""
    identity = frame["identity"].astype(str)
    branch = frame["branch"].fillna("main").astype(str)
    if branch.nunique() <= 1:
        return identity
    return identity + " [" + branch + "]"


def _table(columns: dict[str, Any]) -> pd.DataFrame:
    """Build the data of a chart from equal-length columns.

    Charts embed pandas frames rather than ``alt.Data(values=...)``: Altair
    validates inline values one by one against the Vega-Lite schema, which
    takes about a second for 5,000 rows, while a frame goes through the
    active data transformer after validation.
    """
    return pd.DataFrame(columns)


def _to_python(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _display_values(values: pd.Series) -> list[str]:
    return [("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for v in values]


def _title(text: str, notes: list[str]) -> alt.TitleParams:
    import altair as alt

    notes = [note for note in notes if note]
    if notes:
        return alt.TitleParams(text=text, subtitle=notes, anchor="start")
    return alt.TitleParams(text=text, anchor="start")


def _time_encoding(clock: ChartTime, field_name: str = "time", title: str | None = None) -> alt.X:
    import altair as alt

    return alt.X(
        f"{field_name}:T",
        title=title or f"time ({clock.label})",
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(labelOverlap=True),
    )


def _check_max_points(max_points: Any, owner: str) -> int:
    """Validate ``max_points`` and clamp it to the row limit of Altair's active data transformer.

    Altair's ``default`` transformer raises MaxRowsError above its
    ``max_rows`` option (5,000 unless the user changed it), so a larger
    request is lowered to that limit with a warning instead.
    """
    import altair as alt

    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 10:
        raise invalid_parameter("max_points", max_points, "an integer of at least 10", owner)
    max_points = int(max_points)
    if alt.data_transformers.active == "default":
        limit = alt.data_transformers.options.get("max_rows", 5000)
        if limit is not None and max_points > limit:
            warnings.warn(
                f"{owner}: max_points={max_points} exceeds the row limit ({limit}) of Altair's "
                f"active data transformer, so {limit} rows are drawn; raise the limit with "
                f"alt.data_transformers.enable('default', max_rows={max_points})",
                UserWarning,
                stacklevel=3,
            )
            max_points = int(limit)
    return max_points


# ---------------------------------------------------------------------------
# Timeline
# ---------------------------------------------------------------------------


@dataclass
class TimelineData:
    """A history prepared for :func:`timeline_chart`.

    Attributes
    ----------
    frame : pandas.DataFrame
        The whole history from :func:`history_frame`.
    drawn : Reduction
        The rows drawn.
    table : pandas.DataFrame
        The rows embedded in the chart, one per transition drawn.
    clock : ChartTime
        Time zone handling of the chart.
    numeric : bool
        Whether values are drawn on a quantitative axis.
    title : str
        Chart title.
    """

    frame: pd.DataFrame
    drawn: Reduction
    table: pd.DataFrame
    clock: ChartTime
    numeric: bool
    title: str
    series: list[str] = field(default_factory=list)


def prepare_timeline(
    data: Any,
    *,
    tz: str | dt.tzinfo | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    title: str | None = None,
    owner: str = "timeline_chart",
) -> TimelineData:
    """Convert and downsample a history once, so a widget can redraw it cheaply."""
    max_points = _check_max_points(max_points, owner)
    clock = ChartTime(tz, owner)
    frame = history_frame(data, owner)

    numbers = _numeric_values(frame["to_value"])
    work = pd.DataFrame(
        {
            "timestamp": frame["timestamp"],
            "series": _series_labels(frame),
            "value": numbers if numbers is not None else frame["to_value"],
        },
        index=frame.index,
    )
    drawn = reduce_rows(work, max_points, values="value" if numbers is not None else None)
    rows = frame.loc[drawn.frame.index]

    values = drawn.frame["value"] if numbers is not None else _display_values(rows["to_value"])
    table = _table(
        {
            "time": clock.to_chart(rows["timestamp"]),
            "when": clock.to_label(rows["timestamp"]),
            "value": list(values),
            "identity": rows["identity"].astype(str).tolist(),
            "series": drawn.frame["series"].tolist(),
            "step": rows["step"].map(_to_python).tolist(),
            "reason": rows["reason"].fillna("").astype(str).tolist(),
            "confidence": pd.to_numeric(rows["confidence"], errors="coerce").tolist(),
            "tags": _tags_text(rows["tags"]),
        }
    )

    series = sorted(work["series"].unique().tolist())
    if title is None:
        identities = frame["identity"].astype(str).unique()
        if len(identities) == 1:
            title = str(identities[0])
        elif len(identities) == 0:
            title = "empty history"
        else:
            title = f"{len(identities)} statebits"
    return TimelineData(frame, drawn, table, clock, numbers is not None, title, series)


def timeline_chart(
    data: Any,
    tz: str | dt.tzinfo | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    *,
    title: str | None = None,
    width: int | str = 640,
    height: int = 240,
    selection: tuple[Any, Any] | None = None,
) -> alt.LayerChart:
    """Chart value over time, with confidence as opacity and a brush on the time axis.

    Each transition is a point whose opacity is its confidence, on a step line
    that keeps the value until the next transition. Tooltips show the time,
    value, reason, confidence and tags. The interval selection ``brush`` on the
    time axis selects a window. Histories longer than ``max_points`` are
    reduced to the lowest and highest value per time bucket (or the first and
    last transition, for non-numeric values) and the subtitle says so.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        One or more histories; several identities get one colour each.
    tz : str or datetime.tzinfo, optional
        Time zone of the time axis and tooltips; None shows UTC.
    max_points : int, default=5000
        Maximum number of transitions embedded in the chart.
    title : str, optional
        Chart title; defaults to the identity, or the number of statebits.
    width : int or "container", default=640
        Width in pixels.
    height : int, default=240
        Height in pixels.
    selection : tuple of two datetimes, optional
        Initial brush window (start, end); naive datetimes are read as UTC.

    Returns
    -------
    altair.LayerChart

    Examples
    --------
    >>> import pandas as pd
    >>> from statebits.charts import timeline_chart
    >>> frame = pd.DataFrame({
    ...     "timestamp": pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC"),
    ...     "to_value": [1.0, 3.0, 2.0],
    ...     "reason": ["start", "rise", "fall"],
    ... })
    >>> chart = timeline_chart(frame)
    >>> chart.to_dict()["params"][0]["name"]
    'brush'
    """
    prepared = prepare_timeline(data, tz=tz, max_points=max_points, title=title)
    return build_timeline(prepared, width=width, height=height, selection=selection)


def build_timeline(
    prepared: TimelineData,
    *,
    width: int | str = 640,
    height: int = 240,
    selection: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> alt.LayerChart:
    """Build the timeline chart of prepared data, with an optional initial brush window."""
    import altair as alt

    clock = prepared.clock
    brush_value = None
    if selection is not None:
        start, end = normalize_window(selection, "timeline_chart")
        brush_value = {"x": [clock.to_datetime(start), clock.to_datetime(end)]}
    brush = alt.selection_interval(name=BRUSH, encodings=["x"], value=brush_value)

    value_type = "quantitative" if prepared.numeric else "nominal"
    y = alt.Y("value", type=value_type, title="value", scale=alt.Scale(zero=False) if prepared.numeric else alt.Undefined)
    x = _time_encoding(clock)
    many = len(prepared.series) > 1
    color = alt.Color("series:N", title="statebit") if many else alt.value(_NORMAL_COLOR)

    line = alt.Chart(name="steps").mark_line(interpolate="step-after", strokeWidth=1).encode(
        x=x,
        y=y,
        detail="series:N",
        color=color,
        opacity=alt.value(0.6),
    )
    points = (
        alt.Chart(name="transitions")
        .mark_circle(size=28)
        .encode(
            x=x,
            y=y,
            color=alt.condition(brush, color, alt.value(_MUTED_COLOR)) if not many else color,
            opacity=alt.Opacity(
                "confidence:Q",
                title="confidence",
                scale=alt.Scale(domain=[0, 1], range=[0.15, 1], clamp=True),
            ),
            tooltip=[
                alt.Tooltip("when:N", title="time"),
                alt.Tooltip("identity:N", title="identity"),
                alt.Tooltip("step:Q", title="step"),
                alt.Tooltip("value", type=value_type, title="value"),
                alt.Tooltip("reason:N", title="reason"),
                alt.Tooltip("confidence:Q", title="confidence", format=".2f"),
                alt.Tooltip("tags:N", title="tags"),
            ],
        )
        .add_params(brush)
    )
    return alt.layer(
        line,
        points,
        data=prepared.table,
        title=_title(prepared.title, [prepared.drawn.note]),
        width=width,
        height=height,
    )


def normalize_window(window: Any, owner: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Validate a (start, end) pair and return it as ordered UTC Timestamps."""
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise invalid_parameter("selection", window, "a (start, end) pair of datetimes or None", owner)
    bounds = []
    for bound in window:
        try:
            stamp = pd.Timestamp(bound)
        except (ValueError, TypeError):
            raise invalid_parameter("selection", window, "a (start, end) pair of datetimes or ISO strings", owner) from None
        if stamp is pd.NaT:
            raise invalid_parameter("selection", window, "a (start, end) pair without missing times", owner)
        bounds.append(stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC"))
    start, end = sorted(bounds)
    return start, end


def rows_in_window(frame: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp] | None) -> pd.DataFrame:
    """Return the rows of a time-sorted history frame with start <= timestamp <= end."""
    if window is None:
        return frame.iloc[0:0]
    nanos = frame["timestamp"].to_numpy(dtype="datetime64[ns]")
    start = np.datetime64(window[0].tz_convert("UTC").tz_localize(None), "ns")
    end = np.datetime64(window[1].tz_convert("UTC").tz_localize(None), "ns")
    lo = int(np.searchsorted(nanos, start, side="left"))
    hi = int(np.searchsorted(nanos, end, side="right"))
    return frame.iloc[lo:hi]


# ---------------------------------------------------------------------------
# Fork tree
# ---------------------------------------------------------------------------


@dataclass
class ForkTree:
    """The lanes of a statebit and its forks.

    Attributes
    ----------
    frame : pandas.DataFrame
        Every transition, with a ``lane`` column; transitions a fork shares
        with its parent appear only in the parent's lane.
    lanes : pandas.DataFrame
        One row per lane: ``lane, identity, branch, parent, fork_point,
        first_step, last_step, transitions``; ``parent`` and ``fork_point`` are
        None for a root.
    merges : pandas.DataFrame
        One row per merge transition: ``source, source_step, target,
        target_step``.
    """

    frame: pd.DataFrame
    lanes: pd.DataFrame
    merges: pd.DataFrame


def _is_statebit(item: Any) -> bool:
    return hasattr(item, "to_pandas") and hasattr(item, "identity") and hasattr(item, "history")


def fork_tree(data: Any, owner: str = "fork_tree_chart") -> ForkTree:
    """Find the lanes, fork points and merges of a statebit family.

    ``data`` may be a Statebit (its chain of parents is included), an iterable
    of statebits or a collection (each fork's ``parent``, ``fork_point`` and
    ``branch`` are read), or a history frame, where each (identity, branch)
    pair is a lane. In a frame, a fork's parent and fork point come from the
    checksums it shares with another lane. Without shared rows, a fork is
    attached before its first step to the lane its branch name extends
    (``fork-1`` for ``fork-1.fork-2``, as ``Statebit.fork`` names them), else
    to the ``main`` lane.
    """
    statebits = _statebit_family(data)
    if statebits:
        frame, declared = _frame_from_statebits(statebits, owner)
    else:
        frame, declared = history_frame(data, owner), {}
        # Frames of a fork repeat the rows it shares with its parent, under the parent's branch.
        key = ["identity", "branch", "step"] + (["checksum"] if "checksum" in frame.columns else [])
        frame = frame.drop_duplicates(subset=key)
    frame = frame.copy()
    frame["lane"] = _lane_labels(frame)

    lanes, frame = _lane_table(frame, declared)
    merges = _merge_table(frame)
    return ForkTree(frame.reset_index(drop=True), lanes, merges)


def _statebit_family(data: Any) -> list[Any]:
    if _is_statebit(data):
        family = [data]
        parent = getattr(data, "parent", None)
        while parent is not None and _is_statebit(parent):
            family.insert(0, parent)
            parent = getattr(parent, "parent", None)
        return family
    if isinstance(data, (pd.DataFrame,)) or type(data).__module__.startswith("polars"):
        return []
    try:
        items = list(iter(data))
    except TypeError:
        return []
    return items if items and all(_is_statebit(item) for item in items) else []


def _frame_from_statebits(statebits: list[Any], owner: str) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[tuple[str, str], int]]]:
    """Concatenate the statebits' frames; return it and each fork's declared (parent key, fork point)."""
    frames = []
    declared: dict[tuple[str, str], tuple[tuple[str, str], int]] = {}
    keys: dict[int, tuple[str, str]] = {}
    for item in statebits:
        branch = str(getattr(item, "branch", None) or "main")
        keys[id(item)] = (str(item.identity), branch)
    for item in statebits:
        frame = item.to_pandas()
        key = keys[id(item)]
        frame = frame.assign(identity=key[0], branch=key[1]) if len(frame) else frame
        parent = getattr(item, "parent", None)
        fork_point = getattr(item, "fork_point", None)
        if parent is not None and fork_point is not None:
            parent_key = keys.get(id(parent), (str(parent.identity), str(getattr(parent, "branch", None) or "main")))
            declared[key] = (parent_key, int(fork_point))
            # A fork's frame may repeat the transitions it shares with its parent.
            frame = frame[frame["step"] > int(fork_point)] if "step" in frame.columns else frame
        frames.append(frame)
    return history_frame(pd.concat(frames, ignore_index=True), owner), declared


def _lane_labels(frame: pd.DataFrame) -> pd.Series:
    identity = frame["identity"].astype(str)
    branch = frame["branch"].fillna("main").astype(str)
    if identity.nunique() <= 1:
        return branch
    return identity + " [" + branch + "]"


def _lane_table(frame: pd.DataFrame, declared: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys = frame[["identity", "branch", "lane"]].astype(str).drop_duplicates()
    label_of = {(row.identity, row.branch): row.lane for row in keys.itertuples()}
    has_checksum = "checksum" in frame.columns
    drop = pd.Series(False, index=frame.index)
    rows = []
    for key, lane in label_of.items():
        in_lane = (frame["lane"] == lane).to_numpy()
        parent, fork_point = None, None
        if key in declared:
            parent_key, fork_point = declared[key]
            parent = label_of.get(parent_key, f"{parent_key[1]}")
        elif key[1] != "main":
            parent, fork_point, shared = _infer_fork(frame, lane, key, label_of, has_checksum)
            drop |= shared
        rows.append((lane, key[0], key[1], parent, fork_point))

    frame = frame[~drop.to_numpy()]
    table = pd.DataFrame(rows, columns=["lane", "identity", "branch", "parent", "fork_point"])
    steps = frame.groupby("lane")["step"].agg(["min", "max", "count"])
    table["first_step"] = table["lane"].map(steps["min"]).astype("Int64")
    table["last_step"] = table["lane"].map(steps["max"]).astype("Int64")
    table["transitions"] = table["lane"].map(steps["count"]).fillna(0).astype("int64")
    table["fork_point"] = table["fork_point"].astype("Int64")

    # Roots first, then forks in order of their fork points.
    order = table.assign(_root=table["parent"].isna()).sort_values(
        ["_root", "fork_point", "lane"], ascending=[False, True, True], kind="stable"
    )
    return order.drop(columns="_root").reset_index(drop=True), frame


def _infer_fork(frame, lane, key, label_of, has_checksum):
    """Return (parent lane, fork point, rows of ``lane`` shared with the parent).

    The parent is the lane sharing the longest run of checksums with the
    start of ``lane``. On a tie a ``main`` lane wins, because a fork shares
    the same prefix with its parent and with every sibling forked later.
    """
    own = frame["lane"] == lane
    none_shared = pd.Series(False, index=frame.index)
    if has_checksum:
        mine = frame.loc[own].sort_values("step")
        best, best_length = None, 0
        for other in label_of.values():
            if other == lane:
                continue
            theirs = set(frame.loc[frame["lane"] == other, "checksum"].dropna())
            in_other = mine["checksum"].isin(theirs).to_numpy()
            # Length of the common prefix: rows up to the first checksum not in ``other``.
            length = int(in_other.argmin()) if not in_other.all() else len(in_other)
            better = length > best_length or (length == best_length and length > 0 and other.endswith("main"))
            if better:
                best, best_length = other, length
        if best is not None:
            shared_rows = mine.index[:best_length]
            shared = pd.Series(frame.index.isin(shared_rows), index=frame.index)
            return best, int(mine["step"].iloc[best_length - 1]), shared
    parent = None
    if "." in key[1]:
        parent = label_of.get((key[0], key[1].rsplit(".", 1)[0]))
    if parent is None:
        parent = label_of.get((key[0], "main"))
    if parent is None:
        roots = [label for (identity, branch), label in label_of.items() if branch == "main"]
        parent = roots[0] if roots else None
    first = frame.loc[own, "step"].min()
    fork_point = int(first) - 1 if parent is not None and pd.notna(first) else None
    return parent, fork_point, none_shared


def _as_mapping(value: Any) -> dict[str, Any] | None:
    """Return metadata as a dict, decoding JSON text; None when it is neither."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _merge_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Find merge transitions from their ``merged_from`` / ``merged_branch`` / ``merged_head`` metadata."""
    columns = ["source", "source_step", "target", "target_step"]
    if "metadata" not in frame.columns:
        return pd.DataFrame([], columns=columns)
    lanes = frame[["identity", "branch", "lane"]].astype(str).drop_duplicates()
    lane_of = {(row.identity, row.branch): row.lane for row in lanes.itertuples()}
    at_checksum: dict[str, tuple[str, int]] = {}
    if "checksum" in frame.columns:
        at_checksum = {str(c): (lane, int(step)) for c, lane, step in zip(frame["checksum"], frame["lane"], frame["step"]) if isinstance(c, str)}

    rows = []
    metadata = frame["metadata"].map(_as_mapping)
    is_merge = metadata.map(lambda m: m is not None and ("merged_branch" in m or "merged_from" in m))
    for index in frame.index[is_merge.to_numpy()]:
        meta, target = metadata[index], frame.at[index, "lane"]
        head = meta.get("merged_head")
        if head in at_checksum:
            source, source_step = at_checksum[head]
        else:
            identity = str(meta.get("merged_from", frame.at[index, "identity"]))
            source = lane_of.get((identity, str(meta.get("merged_branch", "main"))))
            earlier = frame[(frame["lane"] == source) & (frame["timestamp"] <= frame.at[index, "timestamp"])]
            if source is None or earlier.empty:
                continue
            source_step = int(earlier["step"].max())
        if source != target:
            rows.append((source, source_step, target, int(frame.at[index, "step"])))
    return pd.DataFrame(rows, columns=columns)


def _lane_spans(lanes: pd.DataFrame) -> pd.DataFrame:
    """Return each lane's horizontal extent: from its fork point (or first step) to its last step."""
    starts, ends = [], []
    for fork_point, first, last in zip(lanes["fork_point"], lanes["first_step"], lanes["last_step"]):
        start = fork_point if pd.notna(fork_point) else first
        start = int(start) if pd.notna(start) else 0
        # A fork without transitions of its own ends where it starts.
        end = int(last) if pd.notna(last) else start
        starts.append(start)
        ends.append(end)
    return _table({"lane": lanes["lane"].tolist(), "start": starts, "end": ends})


def fork_tree_chart(
    data: Any,
    max_points: int = DEFAULT_MAX_POINTS,
    *,
    tz: str | dt.tzinfo | None = None,
    title: str | None = None,
    width: int | str = 640,
    selected: tuple[str, int] | None = None,
    tree: ForkTree | None = None,
) -> alt.LayerChart:
    """Chart a statebit and its forks as lanes over steps, with forks and merges drawn as links.

    Each lane is one branch. A fork's lane starts at its fork point, linked by
    a solid line to its parent's lane. A merge is a dashed line from the
    merged branch back to the target lane. Clicking a transition selects it
    (point selection ``pick``).

    Parameters
    ----------
    data : Statebit, iterable of statebits, StatebitsCollection or frame
        The family to draw; see :func:`fork_tree`.
    max_points : int, default=5000
        Maximum number of transitions drawn; longer lanes keep evenly spaced
        transitions plus every fork and merge point, and the subtitle says so.
    tz : str or datetime.tzinfo, optional
        Time zone of the tooltips; None shows UTC.
    title : str, optional
        Chart title.
    width : int or "container", default=640
        Width in pixels.
    selected : tuple of (str, int), optional
        The (lane, step) of a transition to outline as picked.
    tree : ForkTree, optional
        A tree already computed from ``data`` by :func:`fork_tree`.

    Returns
    -------
    altair.LayerChart
    """
    import altair as alt

    owner = "fork_tree_chart"
    max_points = _check_max_points(max_points, owner)
    clock = ChartTime(tz, owner)
    tree = tree if tree is not None else fork_tree(data, owner)
    frame, lanes, merges = tree.frame, tree.lanes, tree.merges

    # Fork points and merge ends must survive downsampling so the links touch dots.
    anchors = set(zip(lanes["parent"].dropna(), lanes["fork_point"].dropna().astype(int)))
    anchors |= set(zip(merges["source"], merges["source_step"])) | set(zip(merges["target"], merges["target_step"]))
    keep = pd.Series([(lane, step) in anchors for lane, step in zip(frame["lane"], frame["step"])], index=frame.index, dtype=bool)
    work = frame.assign(series=frame["lane"], timestamp=frame["timestamp"])
    drawn = reduce_rows(work, max_points, values=None, keep=keep)
    rows = frame.loc[drawn.frame.index]

    lane_order = lanes["lane"].tolist()
    transitions = _table(
        {
            "lane": rows["lane"].tolist(),
            "step": rows["step"].map(_to_python).tolist(),
            "when": clock.to_label(rows["timestamp"]),
            "value": _display_values(rows["to_value"]),
            "reason": rows["reason"].fillna("").astype(str).tolist(),
            "confidence": pd.to_numeric(rows["confidence"], errors="coerce").tolist(),
            "tags": _tags_text(rows["tags"]),
        }
    )
    spans = _lane_spans(lanes)
    forks = lanes.dropna(subset=["parent", "fork_point"])
    links = _table(
        {
            "kind": ["fork"] * len(forks) + ["merge"] * len(merges),
            "from_lane": forks["parent"].tolist() + merges["source"].tolist(),
            "from_step": [int(v) for v in forks["fork_point"]] + [int(v) for v in merges["source_step"]],
            "to_lane": forks["lane"].tolist() + merges["target"].tolist(),
            "to_step": [int(f) + 1 if pd.isna(s) else int(s) for f, s in zip(forks["fork_point"], forks["first_step"])]
            + [int(v) for v in merges["target_step"]],
        }
    )

    y = alt.Y("lane:N", title="branch", sort=lane_order, scale=alt.Scale(domain=lane_order))
    color = alt.Color("lane:N", title="branch", sort=lane_order, scale=alt.Scale(domain=lane_order), legend=None)
    x_title = "step"
    lane_rules = (
        alt.Chart(spans, name="lanes")
        .mark_rule(strokeWidth=2, opacity=0.5)
        .encode(x=alt.X("start:Q", title=x_title), x2="end:Q", y=y, color=color)
    )
    link_rules = (
        alt.Chart(links, name="links")
        .mark_rule(strokeWidth=1.5)
        .encode(
            x=alt.X("from_step:Q", title=x_title),
            x2="to_step:Q",
            y=alt.Y("from_lane:N", sort=lane_order, scale=alt.Scale(domain=lane_order), title="branch"),
            y2="to_lane:N",
            strokeDash=alt.StrokeDash(
                "kind:N", title="link", scale=alt.Scale(domain=["fork", "merge"], range=[[1, 0], [4, 3]])
            ),
            color=alt.value("#555555"),
            tooltip=[
                alt.Tooltip("kind:N", title="link"),
                alt.Tooltip("from_lane:N", title="from"),
                alt.Tooltip("from_step:Q", title="at step"),
                alt.Tooltip("to_lane:N", title="to"),
                alt.Tooltip("to_step:Q", title="step"),
            ],
        )
    )
    picked = [{"lane": selected[0], "step": int(selected[1])}] if selected is not None else alt.Undefined
    pick = alt.selection_point(name=PICK, fields=["lane", "step"], on="click", empty=False, value=picked)
    dots = (
        alt.Chart(transitions, name="transitions")
        .mark_circle(size=60)
        .encode(
            x=alt.X("step:Q", title=x_title),
            y=y,
            color=color,
            opacity=alt.Opacity("confidence:Q", title="confidence", scale=alt.Scale(domain=[0, 1], range=[0.2, 1], clamp=True)),
            stroke=alt.condition(pick, alt.value("black"), alt.value(None)),
            tooltip=[
                alt.Tooltip("lane:N", title="branch"),
                alt.Tooltip("step:Q", title="step"),
                alt.Tooltip("when:N", title="time"),
                alt.Tooltip("value:N", title="value"),
                alt.Tooltip("reason:N", title="reason"),
                alt.Tooltip("confidence:Q", title="confidence", format=".2f"),
                alt.Tooltip("tags:N", title="tags"),
            ],
        )
        .add_params(pick)
    )

    if title is None:
        roots = lanes.loc[lanes["parent"].isna(), "identity"].unique()
        title = f"{roots[0] if len(roots) == 1 else 'statebits'}: {len(lanes)} branches"
    notes = [f"{count_noun(len(forks), 'fork')}, {count_noun(len(merges), 'merge')}", drawn.note]
    return alt.layer(
        lane_rules,
        link_rules,
        dots,
        title=_title(title, notes),
        width=width,
        height=max(60, 40 * len(lane_order)),
    )


# ---------------------------------------------------------------------------
# Anomalies
# ---------------------------------------------------------------------------


def anomaly_chart(
    data: Any,
    score_column: str = "anomaly_score",
    threshold: float | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    *,
    tz: str | dt.tzinfo | None = None,
    title: str | None = None,
    width: int | str = 640,
) -> alt.VConcatChart:
    """Chart values with flagged transitions highlighted, above the anomaly scores and the threshold.

    A transition is flagged when its score is above the ``threshold``
    parameter (as ``statebits.ml.AnomalyDetector`` flags), which lives in the chart, so a widget can move it without
    rebuilding the chart. Higher scores are more anomalous.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        A history frame with a numeric score column.
    score_column : str, default="anomaly_score"
        Name of the score column.
    threshold : float, optional
        Initial threshold; defaults to :func:`default_threshold` of the scores.
    max_points : int, default=5000
        Maximum number of transitions embedded; the highest scores are always
        kept, and the subtitle states when rows were left out.
    tz : str or datetime.tzinfo, optional
        Time zone of the time axis and tooltips; None shows UTC.
    title : str, optional
        Chart title.
    width : int or "container", default=640
        Width in pixels.

    Returns
    -------
    altair.VConcatChart
    """
    import altair as alt

    owner = "anomaly_chart"
    max_points = _check_max_points(max_points, owner)
    clock = ChartTime(tz, owner)
    frame = history_frame(data, owner)
    scores = anomaly_scores(frame, score_column, owner)
    if threshold is None:
        threshold = default_threshold(scores)

    numbers = _numeric_values(frame["to_value"])
    work = pd.DataFrame(
        {
            "timestamp": frame["timestamp"],
            "series": _series_labels(frame),
            "value": numbers if numbers is not None else frame["to_value"],
        },
        index=frame.index,
    )
    drawn = reduce_rows(work, max_points, values="value" if numbers is not None else None, keep=scores.fillna(-np.inf))
    rows = frame.loc[drawn.frame.index]
    records = _table(
        {
            "time": clock.to_chart(rows["timestamp"]),
            "when": clock.to_label(rows["timestamp"]),
            "value": list(drawn.frame["value"]) if numbers is not None else _display_values(rows["to_value"]),
            "score": scores.loc[rows.index].tolist(),
            "identity": rows["identity"].astype(str).tolist(),
            "step": rows["step"].map(_to_python).tolist(),
            "reason": rows["reason"].fillna("").astype(str).tolist(),
            "confidence": pd.to_numeric(rows["confidence"], errors="coerce").tolist(),
        }
    )

    limit = alt.param(name=THRESHOLD, value=float(threshold))
    flagged = f"isValid(datum.score) && datum.score > {THRESHOLD}"
    x = _time_encoding(clock)
    tooltip = [
        alt.Tooltip("when:N", title="time"),
        alt.Tooltip("identity:N", title="identity"),
        alt.Tooltip("step:Q", title="step"),
        alt.Tooltip("value", type="quantitative" if numbers is not None else "nominal", title="value"),
        alt.Tooltip("score:Q", title="anomaly score", format=".3f"),
        alt.Tooltip("reason:N", title="reason"),
    ]
    values_y = alt.Y("value", type="quantitative" if numbers is not None else "nominal", title="value", scale=alt.Scale(zero=False) if numbers is not None else alt.Undefined)
    value_line = alt.Chart(name="values_line").mark_line(interpolate="step-after", strokeWidth=1, color=_NORMAL_COLOR, opacity=0.5).encode(x=x, y=values_y, detail="identity:N")
    value_points = alt.Chart(name="values").mark_circle().encode(
        x=x,
        y=values_y,
        color=alt.condition(flagged, alt.value(_FLAG_COLOR), alt.value(_NORMAL_COLOR)),
        size=alt.condition(flagged, alt.value(60), alt.value(12)),
        tooltip=tooltip,
    )
    score_line = alt.Chart(name="scores").mark_line(strokeWidth=1, color="#777777").encode(x=x, y=alt.Y("score:Q", title="anomaly score"), detail="identity:N")
    score_points = alt.Chart(name="score_flags").mark_circle(size=30, color=_FLAG_COLOR).encode(x=x, y="score:Q", tooltip=tooltip).transform_filter(flagged)
    rule = (
        alt.Chart(alt.Data(values=[{}]), name="threshold_rule")
        .mark_rule(color=_FLAG_COLOR, strokeDash=[4, 3])
        .transform_calculate(level=THRESHOLD)
        .encode(y="level:Q")
    )

    if title is None:
        identities = frame["identity"].astype(str).unique()
        title = f"anomalies of {identities[0]}" if len(identities) == 1 else "anomalies"
    # The subtitle names no threshold or count, so it stays true while a slider moves the threshold.
    notes = [f"red: score in column '{score_column}' above the threshold (dashed line)", drawn.note]
    top = alt.layer(value_line, value_points, width=width, height=200)
    bottom = alt.layer(score_line, score_points, rule, width=width, height=120)
    return alt.vconcat(top, bottom, data=records, title=_title(title, notes)).add_params(limit)


def anomaly_scores(frame: pd.DataFrame, score_column: str, owner: str) -> pd.Series:
    """Return the score column of ``frame`` as floats, or raise a ValidationError naming the columns."""
    if score_column not in frame.columns:
        raise ValidationError(
            f"{owner}: the frame has no score column `{score_column}`; "
            f"pass score_column= one of {', '.join(map(str, frame.columns))}, or a detector"
        )
    scores = pd.to_numeric(frame[score_column], errors="coerce").astype("float64")
    if scores.notna().sum() == 0:
        raise ValidationError(f"{owner}: the score column `{score_column}` contains no numeric scores")
    return scores


def default_threshold(scores: pd.Series) -> float:
    """Return the 99th percentile of the scores, the starting point of a threshold slider."""
    return float(np.nanquantile(scores.to_numpy(dtype="float64"), 0.99))


# ---------------------------------------------------------------------------
# Collections
# ---------------------------------------------------------------------------


def collection_summary(data: Any, owner: str = "collection_summary") -> pd.DataFrame:
    """Summarise a collection frame with one row per identity.

    Returns
    -------
    pandas.DataFrame
        Indexed by identity, with ``transitions``, ``first``, ``last``
        (UTC timestamps), ``last_value``, ``mean_confidence`` and ``branches``,
        sorted by identity.
    """
    frame = history_frame(data, owner)
    frame = frame.assign(identity=frame["identity"].astype(str))
    grouped = frame.groupby("identity", sort=True)
    summary = pd.DataFrame(
        {
            "transitions": grouped.size(),
            "first": grouped["timestamp"].min(),
            "last": grouped["timestamp"].max(),
            "last_value": grouped["to_value"].last(),
            "mean_confidence": grouped["confidence"].apply(lambda c: pd.to_numeric(c, errors="coerce").mean()),
            "branches": grouped["branch"].nunique(),
        }
    )
    summary.index.name = "identity"
    return summary


def collection_chart(
    data: Any,
    *,
    tz: str | dt.tzinfo | None = None,
    buckets: int = 60,
    max_identities: int = 40,
    title: str | None = None,
    width: int | str = 640,
    selected: str | None = None,
) -> alt.Chart:
    """Chart one row per identity, coloured by the number of transitions per time bucket.

    The data embedded is the count per identity and bucket, so its size
    depends on ``buckets`` and ``max_identities``, not on the history length.
    Clicking a row selects its identity (point selection ``pick``).

    Parameters
    ----------
    data : StatebitsCollection, pandas.DataFrame or polars.DataFrame
        A collection frame.
    tz : str or datetime.tzinfo, optional
        Time zone of the time axis; None shows UTC.
    buckets : int, default=60
        Number of time buckets across the whole span.
    max_identities : int, default=40
        Rows drawn; further identities, in identity order, are left out and
        the subtitle states how many.
    title : str, optional
        Chart title.
    width : int or "container", default=640
        Width in pixels.
    selected : str, optional
        Identity highlighted as picked.

    Returns
    -------
    altair.Chart
    """
    import altair as alt

    owner = "collection_chart"
    if isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer)) or buckets < 1:
        raise invalid_parameter("buckets", buckets, "a positive integer", owner)
    if isinstance(max_identities, bool) or not isinstance(max_identities, (int, np.integer)) or max_identities < 1:
        raise invalid_parameter("max_identities", max_identities, "a positive integer", owner)
    clock = ChartTime(tz, owner)
    frame = history_frame(data, owner)
    frame = frame.assign(identity=frame["identity"].astype(str))

    identities = sorted(frame["identity"].unique().tolist())
    drawn_ids = identities[:max_identities]
    frame = frame[frame["identity"].isin(drawn_ids)]
    records = pd.DataFrame(columns=["identity", "start", "end", "from", "count", "confidence"])
    width_seconds = 0.0
    if len(frame):
        ids, width_seconds = _bucket_ids(frame["timestamp"], int(buckets))
        counts = (
            frame.assign(_bucket=ids)
            .groupby(["identity", "_bucket"], sort=True)
            .agg(count=("step", "size"), confidence=("confidence", lambda c: pd.to_numeric(c, errors="coerce").mean()))
            .reset_index()
        )
        origin = frame["timestamp"].min()
        step = pd.Timedelta(seconds=width_seconds)
        starts = pd.Series(origin + counts["_bucket"] * step)
        ends = pd.Series(origin + (counts["_bucket"] + 1) * step)
        records = _table(
            {
                "identity": counts["identity"].tolist(),
                "start": clock.to_chart(starts),
                "end": clock.to_chart(ends),
                "from": clock.to_label(starts),
                "count": counts["count"].astype("int64").tolist(),
                "confidence": counts["confidence"].tolist(),
            }
        )

    pick = alt.selection_point(name=PICK, fields=["identity"], on="click", value=[{"identity": selected}] if selected else alt.Undefined)
    notes = [f"{len(identities):,} statebits, {len(frame):,} transitions; colour: transitions per {describe_duration(width_seconds)}" if len(frame) else "no transitions"]
    if len(identities) > max_identities:
        notes.append(f"first {max_identities} of {len(identities)} identities shown")
    chart = (
        alt.Chart(records, name="overview")
        .mark_rect()
        .encode(
            x=_time_encoding(clock, "start"),
            x2="end:T",
            y=alt.Y("identity:N", title="identity", sort=drawn_ids),
            color=alt.Color("count:Q", title="transitions", scale=alt.Scale(scheme="blues")),
            stroke=alt.condition(pick, alt.value("black"), alt.value(None)),
            tooltip=[
                alt.Tooltip("identity:N", title="identity"),
                alt.Tooltip("from:N", title="from"),
                alt.Tooltip("count:Q", title="transitions"),
                alt.Tooltip("confidence:Q", title="mean confidence", format=".2f"),
            ],
        )
        .add_params(pick)
        .properties(width=width, height=max(40, 18 * len(drawn_ids)), title=_title(title or "collection", notes))
    )
    return chart


# ---------------------------------------------------------------------------
# Static rendering
# ---------------------------------------------------------------------------


def _vl_spec(chart: Any) -> dict[str, Any]:
    if isinstance(chart, dict):
        return chart
    return chart.to_dict()


def _vl_version(vlc: Any) -> str | None:
    """Return the Vega-Lite version of the installed Altair if vl-convert supports it, else None (its default)."""
    import altair as alt

    requested = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return requested if requested in vlc.get_vegalite_versions() else None


def chart_to_svg(chart: Any) -> str:
    """Render an Altair chart (or a Vega-Lite spec dict) to an SVG string with vl-convert, offline."""
    vlc = import_optional("vl_convert", feature="static chart rendering")
    return vlc.vegalite_to_svg(_vl_spec(chart), vl_version=_vl_version(vlc))


def chart_to_png(chart: Any, scale: float = 1.0) -> bytes:
    """Render an Altair chart (or a Vega-Lite spec dict) to PNG bytes with vl-convert, offline."""
    vlc = import_optional("vl_convert", feature="static chart rendering")
    return vlc.vegalite_to_png(_vl_spec(chart), scale=scale, vl_version=_vl_version(vlc))


def chart_to_html(chart: Any, image_format: str = "svg", caption: str = "") -> str:
    """Render a chart as an HTML figure holding an inline SVG or a base64 PNG, for pages without JavaScript.

    Parameters
    ----------
    chart : altair chart or dict
        The chart to render.
    image_format : {"svg", "png"}, default="svg"
        Inline SVG markup, or a PNG in a data URI.
    caption : str, default=""
        Plain text shown under the image and used as its accessible name.
    """
    import base64
    import html

    if image_format == "svg":
        image = chart_to_svg(chart)
        label = html.escape(caption, quote=True)
        image = image.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1) if caption else image
    elif image_format == "png":
        encoded = base64.b64encode(chart_to_png(chart, scale=2.0)).decode("ascii")
        image = f'<img alt="{html.escape(caption, quote=True)}" style="max-width:100%" src="data:image/png;base64,{encoded}"/>'
    else:
        raise invalid_parameter("image_format", image_format, "'svg' or 'png'", "chart_to_html")
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="statebits-static-chart" style="margin:0">{image}{figcaption}</figure>'
