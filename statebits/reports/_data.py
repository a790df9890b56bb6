"""The input of every report section: one history frame, its integrity results and the options."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd

from statebits.core.errors import invalid_parameter
from statebits.core.history import IntegrityReport

__all__ = ["ReportData", "Section", "ChainCheck", "build_report_data"]

T = TypeVar("T")


@dataclass(frozen=True)
class ChainCheck:
    """The result of verifying one statebit's hash chain.

    Attributes
    ----------
    identity : str
        Key of the statebit: its identity, with ``@branch`` for a fork.
    checked : int
        Transitions checked.
    first_bad_step : int or None
        First step that does not verify (0 for the genesis record), or None
        when the chain verified.
    message : str
        One line describing the result.
    """

    identity: str
    checked: int
    first_bad_step: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the chain verified."""
        return self.first_bad_step is None

    @classmethod
    def from_report(cls, key: str, report: IntegrityReport) -> "ChainCheck":
        """Convert the IntegrityReport of a statebit or a store."""
        return cls(key, report.checked, report.first_bad_step, report.message)


@dataclass
class Section:
    """One section of a report, as returned by a section function.

    Attributes
    ----------
    title : str
        Heading, also listed in the report's table of contents.
    body : str
        HTML of the section body. Section functions must escape any text they
        embed, for example with :func:`statebits.reports.escape`.
    anchor : str, optional
        HTML id of the section; derived from the title when omitted.
    """

    title: str
    body: str
    anchor: str | None = None


@dataclass
class ReportData:
    """Everything a section function may read, computed once per report.

    Attributes
    ----------
    title : str
        Report title.
    frame : pandas.DataFrame
        The history frame: one row per transition, ``timestamp`` as
        ``datetime64[ns, UTC]``, sorted by timestamp and step. Columns beyond
        the history schema (such as anomaly scores added by
        ``AnomalyDetector.score_frame``) are kept.
    integrity : list of ChainCheck or None
        One result per verified chain, or None when the input could not be
        verified (see ``integrity_note``).
    integrity_note : str
        Why integrity was not verified; empty when it was.
    source : str
        Where the data came from, such as a file name; may be empty.
    generated_at : datetime
        When the report was rendered, from the statebits clock.
    tz : str or None
        Time zone for times shown in tables and charts; None shows UTC.
    max_points : int
        Maximum transitions drawn per chart.
    max_timelines : int
        Maximum number of identities that get their own timeline chart.
    top_changes : int
        Rows of the biggest-changes table.
    progress : bool
        Whether long loops show a progress bar on stderr.
    """

    title: str
    frame: pd.DataFrame
    integrity: list[ChainCheck] | None
    integrity_note: str
    source: str
    generated_at: datetime
    tz: str | None = None
    max_points: int = 2000
    max_timelines: int = 8
    top_changes: int = 10
    progress: bool = False

    @property
    def identities(self) -> list[str]:
        """Identities in the frame, sorted."""
        return sorted(self.frame["identity"].astype(str).unique().tolist())

    @property
    def integrity_ok(self) -> bool | None:
        """True when every chain verified, False when one failed, None when not verified."""
        if self.integrity is None:
            return None
        return all(report.ok for report in self.integrity)

    def iterate(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Yield ``items``, with a transient progress bar on stderr when ``progress`` is on."""
        if not self.progress:
            yield from items
            return
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=description, total=total, leave=False, file=sys.stderr)


def build_report_data(
    data: Any,
    *,
    title: str,
    source: str = "",
    tz: str | None = None,
    max_points: int = 2000,
    max_timelines: int = 8,
    top_changes: int = 10,
    progress: bool = False,
) -> ReportData:
    """Convert the report input to a history frame and verify its chains.

    ``data`` is a Statebit, a StatebitsCollection, or a pandas or Polars
    history frame. Statebits and collections are verified directly. A frame
    with a ``checksum`` column is verified through its ``.sb`` accessor. For
    a frame without one, the report states that integrity was not checked.
    """
    from statebits.charts import history_frame
    from statebits.reports._html import now_utc

    owner = "render_report"
    _check_positive("max_points", max_points, owner, minimum=2)
    _check_positive("max_timelines", max_timelines, owner, minimum=0)
    _check_positive("top_changes", top_changes, owner, minimum=0)
    if not isinstance(title, str):
        raise invalid_parameter("title", title, "a string", owner)
    if tz is not None:
        _check_zone(tz, owner)

    integrity, note = _verify(data)
    frame = history_frame(data, owner)
    frame["identity"] = frame["identity"].astype(str)
    return ReportData(
        title=title,
        frame=frame,
        integrity=integrity,
        integrity_note=note,
        source=source,
        generated_at=now_utc(),
        tz=tz,
        max_points=int(max_points),
        max_timelines=int(max_timelines),
        top_changes=int(top_changes),
        progress=progress,
    )


def _verify(data: Any) -> tuple[list[ChainCheck] | None, str]:
    from statebits.collection import StatebitsCollection
    from statebits.core.statebit import Statebit

    if isinstance(data, Statebit):
        return [ChainCheck.from_report(data.key, data.integrity_report())], ""
    if isinstance(data, StatebitsCollection):
        return [ChainCheck.from_report(key, report) for key, report in data.integrity_reports().items()], ""
    if isinstance(data, (list, tuple)) and data and all(isinstance(item, Statebit) for item in data):
        return [ChainCheck.from_report(item.key, item.integrity_report()) for item in data], ""

    columns = [str(name) for name in getattr(data, "columns", [])]
    if "checksum" not in columns:
        return None, "the frame has no checksum column, so there is no hash chain to verify"
    return _verify_frame(data)


def _verify_frame(frame: Any) -> tuple[list[ChainCheck] | None, str]:
    """Verify a pandas or Polars history frame through its ``.sb`` accessor."""
    try:
        accessor = frame.sb
    except AttributeError as exc:
        return None, f"the frame is not a complete history frame: {exc}"
    result = accessor.verify()

    problems = {(problem.identity, problem.branch): problem for problem in result.problems}
    if ("*", "*") in problems:
        return None, f"the frame could not be split into statebits: {problems['*', '*'].message}"

    # One entry per statebit (identity and branch) in the frame, failures from the report.
    pandas_frame = frame if isinstance(frame, pd.DataFrame) else frame.to_pandas()
    branches = pandas_frame["branch"].fillna("main").astype(str) if "branch" in pandas_frame.columns else "main"
    members = pandas_frame.assign(_identity=pandas_frame["identity"].astype(str), _branch=branches)
    counts = members.groupby(["_identity", "_branch"], sort=True).size()
    checks = []
    for (identity, branch), count in counts.items():
        key = identity if branch == "main" else f"{identity}@{branch}"
        problem = problems.get((identity, branch))
        if problem is None:
            checks.append(ChainCheck(key, int(count), None, f"{key}: {int(count)} transitions verified"))
        else:
            step = problem.step if problem.step is not None else 0
            checks.append(ChainCheck(key, int(count), step, " ".join(problem.message.split())))
    return checks, ""


def _check_positive(name: str, value: Any, owner: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid_parameter(name, value, f"an integer >= {minimum}", owner)


def _check_zone(tz: str, owner: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise invalid_parameter("tz", tz, "an IANA time zone name such as 'Europe/Berlin'", owner) from None
