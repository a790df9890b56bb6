"""The ``statebits`` command: ingest event files, verify stores, render reports.

Exit status: 0 on success, 1 when the work failed (missing file or column,
integrity failure, unreadable input), 2 for invalid arguments. Errors are one
line on stderr; results go to stdout. Progress bars go to stderr, and only
when it is a terminal and ``--quiet`` is not given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main", "build_parser", "CommandError"]

PROG = "statebits"
DEFAULT_STORE = "statebits.db"
DEFAULT_REPORT = "report.html"
DEFAULT_DEMO_DATASET = "nyc_taxi"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PARQUET_MAGIC = b"PAR1"
_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


class CommandError(Exception):
    """A failure to report as one line on stderr.

    Attributes
    ----------
    status : int
        Exit status: 1 for failed work, 2 for invalid arguments.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- arguments ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``statebits`` command and its subcommands."""
    from statebits import __version__, datasets

    parser = _Parser(
        prog=PROG,
        description="Record, verify and report auditable histories of values.",
        epilog="Run 'statebits COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"statebits {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    quiet = _Parser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", help="print no progress bars and no summary")

    ingest = commands.add_parser(
        "ingest",
        parents=[quiet],
        help="turn a CSV or Parquet event file into verified histories in a SQLite store",
        description="Read an event table (one row per observation) and record each row as a "
        "transition of its entity's statebit, in time order, in a SQLite store.",
    )
    ingest.add_argument("input", metavar="INPUT", help="CSV or Parquet file of events")
    _add_column_options(ingest, required=True)
    ingest.add_argument("--store", metavar="PATH", default=DEFAULT_STORE, help=f"SQLite store to write (default: {DEFAULT_STORE})")
    ingest.set_defaults(handler=_run_ingest)

    verify = commands.add_parser(
        "verify",
        parents=[quiet],
        help="verify every hash chain in a SQLite store or a history Parquet file",
        description="Recompute the SHA-256 chain of every statebit in a SQLite store, or in a Parquet "
        "file written by statebits.write_parquet. Exit status 1 names the first step that does not match.",
    )
    verify.add_argument("store", metavar="STORE", help="SQLite store written by 'statebits ingest', or a history Parquet file")
    verify.set_defaults(handler=_run_verify)

    report = commands.add_parser(
        "report",
        parents=[quiet],
        help="render a standalone HTML report of a store or an event file",
        description="Render a standalone HTML report (inline SVG charts, no network needed to view "
        "it) of a SQLite store or a history Parquet file, or of a CSV or Parquet event file given "
        "the column options.",
    )
    report.add_argument(
        "input",
        metavar="INPUT_OR_STORE",
        help="SQLite store, history Parquet file (from statebits.write_parquet), or CSV or Parquet event file",
    )
    _add_column_options(report, required=False)
    _add_report_options(report)
    report.set_defaults(handler=_run_report)

    demo = commands.add_parser(
        "demo",
        parents=[quiet],
        help="render the report of a bundled real dataset",
        description="Build verified histories from a real dataset shipped with statebits and "
        "render its report.",
    )
    demo.add_argument(
        "--dataset",
        default=DEFAULT_DEMO_DATASET,
        choices=datasets.names(),
        metavar="NAME",
        help=f"bundled dataset to use, one of {', '.join(datasets.names())} (default: {DEFAULT_DEMO_DATASET})",
    )
    _add_report_options(demo)
    demo.set_defaults(handler=_run_demo)
    return parser


def _add_column_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_argument_group("columns of the event file")
    group.add_argument(
        "--entity",
        "--identity",
        dest="entity",
        metavar="COL",
        help="column naming the entity; each distinct value becomes one statebit "
        "(default: the whole file is one statebit named after the file)",
    )
    group.add_argument("--value", metavar="COL", required=required, help="column with the new value of each event")
    group.add_argument("--time", metavar="COL", required=required, help="column with the time of each event; naive times are read as UTC")
    group.add_argument("--reason", metavar="COL", help="column with the reason of each change")
    group.add_argument("--confidence", metavar="COL", help="column with the confidence of each change, from 0 to 1")
    group.add_argument(
        "--duplicates",
        choices=("raise", "keep", "drop"),
        default="raise",
        help="what to do with rows that repeat entity, time, value and reason exactly: "
        "fail, record every row, or keep the first (default: raise)",
    )
    group.add_argument(
        "--format",
        dest="input_format",
        choices=("csv", "parquet"),
        help="format of the input file (default: from the file name, then from its first bytes)",
    )


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("report")
    group.add_argument("-o", "--output", metavar="PATH", default=DEFAULT_REPORT, help=f"HTML file to write (default: {DEFAULT_REPORT})")
    group.add_argument("--title", help="title of the report (default: from the input)")
    group.add_argument("--tz", metavar="ZONE", help="IANA time zone for times in the report, such as Europe/Berlin (default: UTC)")
    group.add_argument(
        "--max-points",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="maximum transitions drawn per chart; longer histories are downsampled (default: 2000)",
    )


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if number < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2, got {number}")
    return number


# -- entry point ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``statebits`` command and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # --help, --version and invalid arguments end here; argparse has printed.
        return exc.code if isinstance(exc.code, int) else 2

    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CommandError as exc:
        if exc.status == 2:
            _print_error(f"{exc} (see '{PROG} {args.command} --help')", args.command)
        else:
            _print_error(str(exc), args.command)
        return exc.status
    except Exception as exc:  # noqa: BLE001 - classified below, re-raised when it is a bug
        message = _user_error_message(exc)
        if message is None:
            raise
        _print_error(message, args.command)
        return 1


def _user_error_message(exc: Exception) -> str | None:
    """Return the one-line message of an error caused by input or environment, or None for a bug."""
    from statebits.core.errors import StatebitError

    if isinstance(exc, StatebitError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename}"
    if isinstance(exc, IsADirectoryError):
        return f"expected a file, got a directory: {exc.filename}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return None


def _print_error(message: str, command: str | None = None) -> None:
    # One line, even when a library message spans several.
    text = " ".join(message.split())
    where = f"{PROG} {command}" if command else PROG
    print(f"{where}: error: {text}", file=sys.stderr)


# -- commands -----------------------------------------------------------------------


def _run_ingest(args: argparse.Namespace) -> int:
    path = Path(args.input)
    with _stages(["read", "build histories", "save", "verify"], args.quiet) as stage:
        stage("read")
        events = _read_events(path, args.input_format)
        stage("build histories")
        collection = _collection_from_events(events, path, args)
        stage("save")
        with _open_store(args.store) as store:
            skipped = _save_appending(store, collection)
            stage("verify")
            reports = _store_reports(store)

    _raise_if_broken(reports, args.store)
    if not args.quiet:
        transitions = sum(report.checked for report in reports)
        print(f"ingested {_count(len(events), 'event')} from {path} into {args.store}: {_count(len(collection), 'statebit')}")
        if skipped:
            print(f"skipped {_count(skipped, 'event')} at or before the last stored time of their statebit")
        print(f"verified {_count(len(reports), 'chain')}, {_count(transitions, 'transition')} in the store")
    return 0


def _save_appending(store: Any, collection: Any) -> int:
    """Save new statebits whole and append newer events to stored ones; return the events skipped.

    An event of a statebit the store already holds is appended when it is
    later than the stored history's last timestamp, and skipped otherwise,
    so ingesting the same file twice, or a file that overlaps an earlier
    one, stores each event once.
    """
    stored_keys = set(store.keys())
    skipped = 0
    for sb in collection:
        if sb.key not in stored_keys:
            store.save(sb, attach=False)
            continue
        stored = store.load(sb.identity, branch=sb.branch)
        last = stored.history.last_timestamp_ns
        newer = [transition for transition in sb.history if transition.timestamp_ns > last]
        skipped += len(sb.history) - len(newer)
        if newer:
            stored.batch_transition(
                [
                    {
                        "new_value": transition.to_value,
                        "reason": transition.reason,
                        "confidence": transition.confidence,
                        "tags": transition.tags or None,
                        "metadata": dict(transition.metadata) or None,
                        "timestamp": transition.timestamp_ns,
                    }
                    for transition in newer
                ]
            )
    return skipped


def _run_verify(args: argparse.Namespace) -> int:
    path = Path(args.store)
    _require_histories(path)
    with _stages(["verify"], args.quiet) as stage:
        stage("verify")
        if _is_sqlite(path):
            with _open_store(str(path)) as store:
                reports = _store_reports(store)
        else:
            # read_parquet verifies every chain and raises IntegrityError at the first bad step.
            reports = list(_read_histories(path).integrity_reports().values())

    for report in reports:
        if not report.ok:
            print(f"FAILED {report.message}")
    _raise_if_broken(reports, str(path))
    if not args.quiet:
        transitions = sum(report.checked for report in reports)
        print(f"{path}: verified {_count(len(reports), 'chain')}, {_count(transitions, 'transition')}")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    path = Path(args.input)
    if not path.exists():
        raise CommandError(f"file not found: {path}")
    column_options = _given_column_options(args)
    with _stages(["read", "build histories"], args.quiet) as stage:
        stage("read")
        if _is_sqlite(path) or _is_history_parquet(path):
            if column_options:
                raise CommandError(
                    f"invalid option {', '.join(column_options)} for {path.name}: column options apply only "
                    "to event files, and this file already contains histories",
                    status=2,
                )
            data: Any = _read_histories(path)
            source = f"{'SQLite store' if _is_sqlite(path) else 'history file'} {path.name}"
        else:
            if args.value is None or args.time is None:
                missing = " and ".join(option for option, given in (("--value", args.value), ("--time", args.time)) if given is None)
                raise CommandError(
                    f"{missing} required for an event file such as {path.name}; "
                    "a SQLite store or a history Parquet file needs no column options",
                    status=2,
                )
            events = _read_events(path, args.input_format)
            stage("build histories")
            data = _collection_from_events(events, path, args)
            source = path.name
    title = args.title or f"statebits report: {path.name}"
    return _write_report(data, args, title=title, source=source)


def _run_demo(args: argparse.Namespace) -> int:
    from statebits import datasets

    info = datasets.describe(args.dataset)
    with _stages(["load dataset", "build histories"], args.quiet) as stage:
        stage("load dataset")
        events = datasets.load(info.name)
        stage("build histories")
        collection = _demo_collection(info, events)

    title = args.title or f"statebits demo: {info.name}"
    source = f"bundled dataset {info.name}: {info.source}; licence: {info.licence}"
    status = _write_report(collection, args, title=title, source=source, summary=False)
    if not args.quiet:
        reports = list(collection.integrity_reports().values())
        first, last = events["timestamp"].min(), events["timestamp"].max()
        print(f"{info.name}: {info.title}")
        print(f"  {_count(len(events), 'event')}, {_count(len(collection), 'statebit')}, {first:%Y-%m-%d} to {last:%Y-%m-%d}")
        print(f"  source: {info.source}; licence: {info.licence}")
        print(f"  integrity: {sum(report.ok for report in reports):,} of {_count(len(reports), 'chain')} verified")
        print(f"report written to {args.output}")
    return status


# -- helpers: input ------------------------------------------------------------------


def _read_events(path: Path, input_format: str | None) -> Any:
    """Read a CSV or Parquet file into a pandas frame."""
    import pandas as pd

    if not path.exists():
        raise CommandError(f"file not found: {path}")
    if path.is_dir():
        raise CommandError(f"expected a CSV or Parquet file, got a directory: {path}")
    kind = input_format or _guess_format(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        separator = "\t" if path.suffix.lower() == ".tsv" else ","
        return pd.read_csv(path, sep=separator)
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path} is empty; expected a header row and events") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CommandError(f"failed to parse {path} as CSV: {exc}") from None
    except (ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CommandError(f"failed to read {path} as {kind}: {exc}") from None
    except Exception as exc:
        # pyarrow raises its own ArrowInvalid for corrupt Parquet files.
        if type(exc).__module__.startswith("pyarrow"):
            raise CommandError(f"failed to read {path} as Parquet: {exc}") from None
        raise


def _guess_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    if suffix in _CSV_SUFFIXES:
        return "csv"
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_SQLITE_MAGIC):
        raise CommandError(f"{path} is a SQLite store, not an event file; use 'statebits verify' or 'statebits report' on it")
    return "csv"


def _collection_from_events(events: Any, path: Path, args: argparse.Namespace) -> Any:
    """Build one statebit per entity from an event frame, checking the columns first."""
    import statebits

    available = [str(column) for column in events.columns]
    for option, column in _column_options(args).items():
        if column is not None and column not in available:
            raise CommandError(
                f"column {column!r} ({option}) not found in {path.name}; available columns: {', '.join(available) or 'none'}"
            )
    if not len(events):
        raise CommandError(f"{path.name} has no events; expected at least one row after the header")

    identity = args.entity
    if identity is None:
        identity = _unused_column("identity", available)
        events = events.assign(**{identity: path.stem})
    return statebits.from_events(
        events,
        identity=identity,
        value=args.value,
        time=args.time,
        reason=args.reason,
        confidence=args.confidence,
        duplicates=args.duplicates,
        name=path.stem or "events",
    )


def _unused_column(base: str, existing: list[str]) -> str:
    name = base
    while name in existing:
        name = f"_{name}"
    return name


def _demo_collection(info: Any, events: Any) -> Any:
    """Build the demo histories, with reasons that name NAB's labelled anomaly windows."""
    import statebits
    from statebits import datasets

    reasons = events["identity"].map(lambda identity: f"{identity} reading")
    if info.has_anomaly_windows:
        windows = datasets.anomaly_windows(info.name)
        for number, window in enumerate(windows.itertuples(index=False), start=1):
            inside = events["timestamp"].between(window.start, window.end)
            label = f"NAB anomaly window {number} of {len(windows)}"
            if window.event:
                label += f" ({window.event})"
            reasons = reasons.mask(inside, f"reading inside {label}")
    elif "weather" in events.columns:
        reasons = "daily reading, weather: " + events["weather"].astype(str)
    return statebits.from_events(
        events.assign(reason=reasons),
        identity="identity",
        value="value",
        time="timestamp",
        reason="reason",
        name=info.name,
    )


# -- helpers: stores -------------------------------------------------------------------


def _is_sqlite(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _require_histories(path: Path) -> None:
    if not path.exists():
        raise CommandError(f"store not found: {path}")
    if not (_is_sqlite(path) or _is_history_parquet(path)):
        raise CommandError(
            f"{path} is not a SQLite store or a history Parquet file; "
            f"create a store with 'statebits ingest INPUT --store {path}'"
        )


def _is_history_parquet(path: Path) -> bool:
    """Return whether ``path`` is a Parquet file with the history columns, as written by ``statebits.write_parquet``."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        if handle.read(len(_PARQUET_MAGIC)) != _PARQUET_MAGIC:
            return False
    import pyarrow.parquet as pq

    from statebits.frames.schema import REQUIRED_COLUMNS

    try:
        names = set(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - any unreadable file is not a history file; reading it later reports why
        return False
    return set(REQUIRED_COLUMNS) <= names and "checksum" in names


def _read_histories(path: Path) -> Any:
    """Load and verify the statebits of a SQLite store or a history Parquet file."""
    if _is_sqlite(path):
        with _open_store(str(path)) as store:
            return store.load_collection()
    import statebits

    return statebits.read_parquet(path)


def _column_options(args: argparse.Namespace) -> dict[str, str | None]:
    """Return each column option with the column it names, or None when it was not given."""
    return {
        "--entity": args.entity,
        "--value": args.value,
        "--time": args.time,
        "--reason": args.reason,
        "--confidence": args.confidence,
    }


def _given_column_options(args: argparse.Namespace) -> list[str]:
    return [option for option, column in _column_options(args).items() if column is not None]


def _open_store(path: str) -> Any:
    from statebits.stores import SQLiteStore

    return SQLiteStore(path)


def _store_reports(store: Any) -> list[Any]:
    """Verify every chain in a store and return one IntegrityReport per statebit."""
    return list(store.verify().values())


def _raise_if_broken(reports: list[Any], where: str) -> None:
    failed = [report for report in reports if not report.ok]
    if not failed:
        return
    first = failed[0]
    raise CommandError(
        f"integrity check failed in {where}: {len(failed):,} of {_count(len(reports), 'chain')} broken; "
        f"{first.identity} first differs at step {first.first_bad_step}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


# -- helpers: output ---------------------------------------------------------------------


def _write_report(data: Any, args: argparse.Namespace, *, title: str, source: str, summary: bool = True) -> int:
    from statebits.reports import render_report

    output = Path(args.output)
    if output.parent and not output.parent.exists():
        raise CommandError(f"folder not found for the report: {output.parent}")
    page = render_report(
        data,
        title=title,
        path=output,
        source=source,
        tz=args.tz,
        max_points=args.max_points,
        progress=_progress_enabled(args.quiet),
    )
    if summary and not args.quiet:
        print(f"report written to {output} ({len(page.encode('utf-8')) / 1e6:.1f} MB)")
    return 0


def _progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def _stages(names: list[str], quiet: bool) -> Iterator[Callable[[str], None]]:
    """Show one progress bar over named stages on stderr; yield a function that starts the next stage."""
    if not _progress_enabled(quiet):
        yield lambda name: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(names), file=sys.stderr, leave=False, bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}]")
    started = False

    def start(name: str) -> None:
        nonlocal started
        if started:
            bar.update(1)
        started = True
        bar.set_description_str(name)

    try:
        yield start
        if started:
            bar.update(1)
    finally:
        bar.close()
