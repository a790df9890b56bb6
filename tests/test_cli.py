"""Tests of the ``statebits`` command, run as real subprocesses on real bundled data."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import statebits
from statebits import datasets
from statebits.cli import main

TIMEOUT = 300


def run(*args: str, cwd: Path, script: bool = False) -> subprocess.CompletedProcess:
    """Run the command with pipes (so stderr is not a terminal) and return the finished process."""
    command = [statebits_script(), *args] if script else [sys.executable, "-m", "statebits", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def statebits_script() -> str:
    found = shutil.which("statebits") or str(Path(sys.executable).with_name("statebits"))
    if not Path(found).exists():
        pytest.skip("the statebits console script is not installed")
    return found


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("statebits"), lines[0]
    assert "error:" in lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def assert_offline(page: str) -> None:
    for attribute in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attribute.startswith("#"), attribute
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page


@pytest.fixture(scope="module")
def weather_csv(tmp_path_factory) -> Path:
    """The Seattle weather data as a long event table with its own column names."""
    frame = datasets.load("seattle_weather").rename(
        columns={"identity": "measure", "timestamp": "day", "value": "reading"}
    )
    frame["day"] = frame["day"].dt.strftime("%Y-%m-%d")
    frame["certainty"] = 0.9
    path = tmp_path_factory.mktemp("events") / "seattle.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def weather_store(weather_csv) -> Path:
    store = weather_csv.parent / "weather.db"
    result = run(
        "ingest", str(weather_csv), "--entity", "measure", "--value", "reading", "--time", "day",
        "--reason", "weather", "--confidence", "certainty", "--store", str(store),
        cwd=weather_csv.parent,
    )
    assert result.returncode == 0, result.stderr
    return store


def test_ingest_prints_summary(weather_store, weather_csv):
    result = run(
        "ingest", str(weather_csv), "--entity", "measure", "--value", "reading", "--time", "day",
        "--store", str(weather_csv.parent / "again.db"),
        cwd=weather_csv.parent,
    )

    assert result.returncode == 0, result.stderr
    assert "ingested 5,844 events" in result.stdout
    assert "4 statebits" in result.stdout
    assert "verified 4 chains, 5,844 transitions" in result.stdout
    assert result.stderr == ""


def test_verify_store_ok(weather_store):
    result = run("verify", str(weather_store), cwd=weather_store.parent)

    assert result.returncode == 0, result.stderr
    assert "verified 4 chains, 5,844 transitions" in result.stdout
    assert result.stderr == ""


@pytest.mark.slow
def test_report_from_store(weather_store):
    output = weather_store.parent / "store-report.html"

    result = run("report", str(weather_store), "-o", str(output), cwd=weather_store.parent)

    assert result.returncode == 0, result.stderr
    assert f"report written to {output}" in result.stdout
    page = output.read_text(encoding="utf-8")
    assert page.count("<svg") >= 4
    assert "All 4 chains verified" in page
    # Reasons and confidences from the CSV reach the report.
    assert "rain" in page
    assert "<td class=\"number\">0.9</td>" in page
    assert_offline(page)


@pytest.mark.slow
def test_report_from_csv_columns(weather_csv):
    output = weather_csv.parent / "csv-report.html"

    result = run(
        "report", str(weather_csv), "--entity", "measure", "--value", "reading", "--time", "day",
        "--title", "Seattle", "--tz", "America/Los_Angeles", "-o", str(output),
        cwd=weather_csv.parent,
    )

    assert result.returncode == 0, result.stderr
    page = output.read_text(encoding="utf-8")
    assert "<title>Seattle</title>" in page
    assert "PST" in page
    assert page.count("<svg") >= 4
    assert_offline(page)


def test_ingest_whole_file_one_statebit(tmp_path):
    source = tmp_path / "nyc_taxi.csv"
    source.write_bytes(datasets.data_path("nyc_taxi").read_bytes())

    result = run("ingest", "nyc_taxi.csv", "--value", "value", "--time", "timestamp", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "1 statebit" in result.stdout
    assert "10,320 transitions" in result.stdout
    assert (tmp_path / "statebits.db").is_file()
    verified = run("verify", "statebits.db", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "1 chain, 10,320 transitions" in verified.stdout


def test_ingest_parquet(tmp_path):
    datasets.load("ec2_cpu").to_parquet(tmp_path / "cpu.parquet")

    result = run(
        "ingest", "cpu.parquet", "--entity", "identity", "--value", "value", "--time", "timestamp",
        "--store", "cpu.db", cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "ingested 4,032 events" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["ingest"],
        ["ingest", "events.csv", "--value", "reading"],
        ["verify"],
        ["report", "events.csv", "--max-points", "zero"],
        ["report", "events.csv", "--max-points", "1"],
        ["explode"],
        ["demo", "--dataset", "taxi"],
        ["ingest", "events.csv", "--value", "v", "--time", "t", "--format", "xlsx"],
    ],
)
def test_bad_arguments_exit_2(tmp_path, args):
    result = run(*args, cwd=tmp_path)

    assert result.returncode == 2
    assert_one_line_error(result)
    assert result.stdout == ""


def test_report_csv_needs_columns(weather_csv):
    result = run("report", str(weather_csv), "--value", "reading", cwd=weather_csv.parent)

    assert result.returncode == 2
    line = assert_one_line_error(result)
    assert "--time required" in line


def test_missing_column_exit_1(weather_csv):
    result = run("ingest", str(weather_csv), "--entity", "station", "--value", "reading", "--time", "day", cwd=weather_csv.parent)

    assert result.returncode == 1
    line = assert_one_line_error(result)
    assert "'station'" in line
    assert "--entity" in line
    assert "available columns: measure, day, reading, weather, certainty" in line


def test_missing_input_exit_1(tmp_path):
    result = run("ingest", "absent.csv", "--value", "v", "--time", "t", cwd=tmp_path)

    assert result.returncode == 1
    assert "file not found: absent.csv" in assert_one_line_error(result)


def test_empty_input_exit_1(tmp_path):
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")

    result = run("ingest", "empty.csv", "--value", "v", "--time", "t", cwd=tmp_path)

    assert result.returncode == 1
    assert "empty.csv is empty" in assert_one_line_error(result)


def test_invalid_values_exit_1(tmp_path):
    (tmp_path / "bad.csv").write_text("t,v\nnot a time,1\n", encoding="utf-8")

    result = run("ingest", "bad.csv", "--value", "v", "--time", "t", cwd=tmp_path)

    assert result.returncode == 1
    assert_one_line_error(result)


def test_verify_missing_store_exit_1(tmp_path):
    result = run("verify", "absent.db", cwd=tmp_path)

    assert result.returncode == 1
    assert "store not found: absent.db" in assert_one_line_error(result)


def test_verify_non_store_exit_1(weather_csv):
    result = run("verify", str(weather_csv), cwd=weather_csv.parent)

    assert result.returncode == 1
    assert "is not a SQLite store" in assert_one_line_error(result)


def test_verify_tampered_store_names_step(tmp_path, weather_csv):
    store = tmp_path / "tampered.db"
    ingested = run(
        "ingest", str(weather_csv), "--entity", "measure", "--value", "reading", "--time", "day",
        "--store", str(store), cwd=tmp_path,
    )
    assert ingested.returncode == 0, ingested.stderr
    tamper_value(store, "temp_max", step=100)

    result = run("verify", str(store), cwd=tmp_path)

    assert result.returncode == 1
    line = assert_one_line_error(result)
    assert "integrity check failed" in line
    assert "first differs at step 100" in line
    assert "1 of 4 chains" in line
    assert "FAILED temp_max" in result.stdout
    assert "step 100" in result.stdout


def tamper_value(store: Path, identity: str, step: int) -> None:
    """Overwrite one stored value with plain SQL, as someone with write access to the file could.

    The store's triggers reject updates, so they are dropped first.
    """
    with sqlite3.connect(store) as connection:
        connection.execute("DROP TRIGGER IF EXISTS transitions_no_update")
        updated = connection.execute(
            "UPDATE transitions SET value = 999.0 "
            "WHERE step = ? AND statebit_id = (SELECT id FROM statebits WHERE identity = ?)",
            (step, identity),
        )
        assert updated.rowcount == 1, "the SQLite schema changed: expected tables transitions(step, value) and statebits(identity)"


def test_report_store_rejects_column_options(weather_store):
    result = run("report", str(weather_store), "--value", "reading", cwd=weather_store.parent)

    assert result.returncode == 2
    line = assert_one_line_error(result)
    assert "invalid option --value" in line
    assert "apply only to event files" in line


@pytest.mark.slow
def test_history_parquet_verify_and_report(tmp_path):
    events = datasets.load("sunspots")
    statebits.write_parquet(statebits.from_events(events, identity="identity", value="value", time="timestamp"), tmp_path / "sunspots.parquet")

    verified = run("verify", "sunspots.parquet", cwd=tmp_path)
    reported = run("report", "sunspots.parquet", "-o", "sunspots.html", cwd=tmp_path)

    assert verified.returncode == 0, verified.stderr
    assert "1 chain, 309 transitions" in verified.stdout
    assert reported.returncode == 0, reported.stderr
    page = (tmp_path / "sunspots.html").read_text(encoding="utf-8")
    assert "history file sunspots.parquet" in page
    assert "<h3>sunspots</h3>" in page


def test_tampered_parquet_fails_verify(tmp_path):
    frame = statebits.from_events(datasets.load("nile"), identity="identity", value="value", time="timestamp").to_pandas()
    frame.loc[frame["step"] == 42, "to_value"] = 0.0
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "nile.parquet")

    result = run("verify", "nile.parquet", cwd=tmp_path)

    assert result.returncode == 1
    assert "step 42" in assert_one_line_error(result)


@pytest.mark.slow
def test_demo_writes_report_in_cwd(tmp_path):
    result = run("demo", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "nyc_taxi" in page
    assert "<svg" in page
    assert "NYC marathon" in page
    assert_offline(page)
    assert "10,320 events" in result.stdout
    assert "report written to report.html" in result.stdout
    assert "1 of 1 chain verified" in result.stdout


@pytest.mark.slow
def test_demo_output_option_and_quiet(tmp_path):
    result = run("demo", "--dataset", "nile", "-o", "nile.html", "--quiet", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""
    page = (tmp_path / "nile.html").read_text(encoding="utf-8")
    assert "<h3>nile</h3>" in page
    assert not (tmp_path / "report.html").exists()


def test_report_output_folder_missing(weather_store):
    result = run("report", str(weather_store), "-o", "no/such/folder/r.html", cwd=weather_store.parent)

    assert result.returncode == 1
    assert "folder not found" in assert_one_line_error(result)


def test_installed_script_runs(weather_store):
    version = run("--version", cwd=weather_store.parent, script=True)
    assert version.returncode == 0
    assert version.stdout.startswith("statebits ")

    verified = run("verify", str(weather_store), cwd=weather_store.parent, script=True)
    assert verified.returncode == 0, verified.stderr
    assert "verified 4 chains" in verified.stdout

    bad = run("verify", cwd=weather_store.parent, script=True)
    assert bad.returncode == 2
    assert_one_line_error(bad)


def test_progress_bar_on_terminal(tmp_path, weather_csv):
    controller, terminal = pty.openpty()
    # A new pseudo-terminal reports 0 columns, which leaves tqdm no room to draw.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "statebits", "ingest", str(weather_csv), "--entity", "measure",
         "--value", "reading", "--time", "day", "--store", str(tmp_path / "tty.db")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=terminal,
    )
    os.close(terminal)
    # Read while the command runs: Linux drops unread terminal output once the writer exits.
    shown = read_all(controller)
    os.close(controller)
    process.communicate(timeout=TIMEOUT)

    assert process.returncode == 0
    assert "build histories" in shown
    assert "verify" in shown


def read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_main_returns_status_in_process(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "absent.db")]) == 1
    assert main([]) == 2
    assert main(["--version"]) == 0

    captured = capsys.readouterr()
    assert "store not found" in captured.err


def test_second_ingest_appends_newer_events(tmp_path):
    (tmp_path / "first.csv").write_text("id,t,v\na,2024-01-01,1\na,2024-01-02,2\nb,2024-01-01,5\n")
    (tmp_path / "second.csv").write_text("id,t,v\na,2024-01-02,2\na,2024-01-03,3\nc,2024-01-01,7\n")
    options = ["--entity", "id", "--value", "v", "--time", "t", "--store", "events.db"]

    first = run("ingest", "first.csv", *options, cwd=tmp_path)
    second = run("ingest", "second.csv", *options, cwd=tmp_path)
    again = run("ingest", "second.csv", *options, cwd=tmp_path)
    verify = run("verify", "events.db", cwd=tmp_path)

    assert first.returncode == 0
    assert second.returncode == 0
    assert "skipped 1 event" in second.stdout
    assert again.returncode == 0
    assert "skipped 3 events" in again.stdout
    assert "verified 3 chains, 5 transitions" in verify.stdout


def test_far_future_time_is_one_line_error(tmp_path):
    (tmp_path / "far.csv").write_text("t,v\n2024-01-01,1\n9999-01-01,2\n")

    result = run("ingest", "far.csv", "--value", "v", "--time", "t", cwd=tmp_path)

    assert result.returncode == 1
    assert "2262-04-11" in assert_one_line_error(result)
