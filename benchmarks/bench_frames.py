"""Benchmark the frames layer: ingest rate and history -> pandas / Polars / Arrow views.

Writes the "frames" section of docs/benchmarks.md. statebits 0.2.1 has no
frame views or event ingest, so there is nothing to compare against. The
figures are checked against two targets instead: ingest at least 1,000,000
transitions/s, and a view of 1,000,000 transitions within 150 ms.

Run: python benchmarks/bench_frames.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

import statebits  # noqa: E402

INGEST_TARGET = 1_000_000  # transitions per second
VIEW_TARGET_MS = 150.0


def event_table(rows: int, identities: int) -> pd.DataFrame:
    """Return ``rows`` float events, one second apart, spread over ``identities`` sensors."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=rows, freq="s", tz="UTC"),
            "value": rng.normal(20.0, 2.0, rows),
        }
    )
    if identities > 1:
        frame["sensor"] = pd.array(rng.integers(0, identities, rows).astype(str), dtype="str")
    return frame


def ingest_once(events, identities: int) -> float:
    """Return the seconds of one from_events call."""
    identity = "sensor" if identities > 1 else "meter"
    gc.collect()
    start = time.perf_counter()
    statebits.from_events(events, identity=identity, value="value", time="time", reason="reading")
    return time.perf_counter() - start


def hashing_once(rows: int) -> float:
    """Return the seconds of extend_history alone on prepared columns: the floor under from_events."""
    from array import array

    from statebits.core.history import extend_history

    rng = np.random.default_rng(0)
    values = array("d", rng.normal(20.0, 2.0, rows).tobytes())
    times = array("q", (np.arange(rows, dtype=np.int64) * 1_000_000_000).tobytes())
    confidences = array("d", [1.0]) * rows
    reasons = ["reading"] * rows
    sb = statebits.Statebit("floor", None, created_at=0)
    gc.collect()
    start = time.perf_counter()
    extend_history(sb.history, values, reasons, confidences, times, times)
    return time.perf_counter() - start


def time_views(sb: statebits.Statebit, repeat: int) -> dict[str, dict[str, float]]:
    """Return milliseconds per view: median and best cold call (first after an append), median warm call."""
    results: dict[str, dict[str, float]] = {}
    for name in ("to_pandas", "to_polars", "to_arrow"):
        convert = getattr(sb, name)
        convert()  # the first conversion of a history also encodes every checksum as hex text
        cold, warm = [], []
        for _ in range(repeat):
            sb.transition(21.0, "reading")
            gc.collect()
            start = time.perf_counter()
            convert()
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            convert()
            warm.append(time.perf_counter() - start)
        results[name] = {"cold": 1000 * statistics.median(cold), "best": 1000 * min(cold), "warm": 1000 * statistics.median(warm)}
    sb.history._cache.clear()
    start = time.perf_counter()
    sb.to_pandas()
    results["first"] = {"cold": 1000 * (time.perf_counter() - start)}
    return results


def time_rebuild(sb: statebits.Statebit) -> tuple[float, float]:
    """Return seconds of Statebit.from_frame and of df.sb.verify() on the pandas view."""
    frame = sb.to_pandas()
    start = time.perf_counter()
    statebits.Statebit.from_frame(frame)
    rebuild = time.perf_counter() - start
    start = time.perf_counter()
    frame.sb.verify()
    return rebuild, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="transitions per run (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the median and the best run are reported (default 5)")
    arguments = parser.parse_args()
    rows, repeat = arguments.rows, arguments.repeat

    single = event_table(rows, 1)
    single_polars = pl.from_pandas(single)
    many = event_table(rows, 1000)
    scenarios = {
        "pandas table, 1 identity": lambda: ingest_once(single, 1),
        "Polars table, 1 identity": lambda: ingest_once(single_polars, 1),
        "pandas table, 1,000 identities": lambda: ingest_once(many, 1000),
        "hashing alone: `extend_history` on prepared columns": lambda: hashing_once(rows),
    }
    # Rounds run every scenario once, so load from other work spreads over all of them.
    seconds: dict[str, list[float]] = {label: [] for label in scenarios}
    for _ in range(repeat):
        for label, run in scenarios.items():
            seconds[label].append(run())

    sb = statebits.from_events(single, identity="meter", value="value", time="time", reason="reading")["meter"]
    views = time_views(sb, repeat)
    rebuild, verify = time_rebuild(sb)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        f"{rows:,} float events per table, times one second apart, a constant reason; {repeat} interleaved rounds.",
        f"The machine was shared with other work (load average {load} at the end of the run), so figures vary",
        "between runs; *best* is the fastest round, the least disturbed by other work.",
        "",
        "| ingest with `from_events` | median transitions/s | best transitions/s | target (median) |",
        "| --- | ---: | ---: | --- |",
    ]
    for label, runs in seconds.items():
        median, best = rows / statistics.median(runs), rows / min(runs)
        if label.startswith("hashing"):
            verdict = "floor under ingest"
        else:
            verdict = f">= 1,000,000: {'met' if median >= INGEST_TARGET else 'not met'}"
        lines.append(f"| {label} | {median:,.0f} | {best:,.0f} | {verdict} |")
    lines += [
        "",
        f"Views of one history of {rows:,} float transitions. *Cold* is the first call after an append",
        "(the view cache is cleared on every append; the hex text of earlier checksums is kept), *warm* a repeated call.",
        "",
        "| view | median cold ms | best cold ms | median warm ms | target (median cold) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name in ("to_pandas", "to_polars", "to_arrow"):
        figures = views[name]
        target = "" if name == "to_arrow" else f"<= 150 ms cold: {'met' if figures['cold'] <= VIEW_TARGET_MS else 'not met'}"
        lines.append(f"| `{name}()` | {figures['cold']:.0f} | {figures['best']:.0f} | {figures['warm']:.1f} | {target} |")
    lines += [
        "",
        f"The very first `to_pandas()` of the history, which also hex-encodes all {rows:,} checksums: {views['first']['cold']:.0f} ms.",
        f"`Statebit.from_frame` of the pandas view (rebuild and recompute every checksum): {rebuild:.1f} s;",
        f"`df.sb.verify()`: {verify:.1f} s.",
    ]
    body = "\n".join(lines)
    print(body)
    write_section("frames", "Frames: ingest and views", body, command=f"python benchmarks/bench_frames.py --rows {rows} --repeat {repeat}")


if __name__ == "__main__":
    main()
