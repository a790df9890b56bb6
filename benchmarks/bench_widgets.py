"""Time charts and widgets on a 100,000-transition history and write the figures to docs/benchmarks.md.

The history is the NYC taxi series from the bundled datasets, repeated with
shifted timestamps until it has 100,000 transitions, so the values have the
daily and weekly shape of real data. Each figure is the median of several
runs after one warm-up run, because the first call of a process also imports
Altair, loads its schema and bundles the chart JavaScript.

Run: python benchmarks/bench_widgets.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import write_section  # noqa: E402
from statebits import charts, datasets  # noqa: E402

TRANSITIONS = 100_000


def taxi_history(count: int) -> pd.DataFrame:
    """Repeat the NYC taxi series, shifted in time, into a history of ``count`` transitions."""
    events = datasets.load("nyc_taxi")
    span = events["timestamp"].iloc[-1] - events["timestamp"].iloc[0] + pd.Timedelta(minutes=30)
    copies = -(-count // len(events))
    frames = [events.assign(timestamp=events["timestamp"] + span * copy) for copy in range(copies)]
    history = pd.concat(frames, ignore_index=True).iloc[:count]
    values = history["value"].to_numpy()
    return pd.DataFrame(
        {
            "identity": "nyc_taxi",
            "step": np.arange(1, count + 1),
            "timestamp": history["timestamp"],
            "to_value": values,
            "reason": "half-hourly passenger count",
            "confidence": 1.0,
            "tags": [["nab"]] * count,
            "anomaly_score": np.abs(values - np.median(values)) / values.std(),
        }
    )


def median_seconds(action, repeat: int) -> float:
    action()
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (default: 5)")
    args = parser.parse_args()

    from statebits.widgets import AnomalyWidget, TimelineWidget

    history = taxi_history(TRANSITIONS)
    timeline = TimelineWidget(history)
    times = history["timestamp"]
    windows = [(times.iloc[20_000], times.iloc[30_000]), (times.iloc[50_000], times.iloc[52_000])]

    def brush_from_python() -> None:
        # Alternate two windows, because setting the current window again does nothing.
        timeline.selected_range = windows[0] if timeline.selected_range != windows[0] else windows[1]
    rows = [
        ("`timeline_chart` (build the Altair chart)", lambda: charts.timeline_chart(history)),
        ("`timeline_chart(...).to_dict()` (validated spec)", lambda: charts.timeline_chart(history).to_dict()),
        ("`TimelineWidget` (build the widget)", lambda: TimelineWidget(history)),
        ("`TimelineWidget.selected_range = ...` (brush from Python: select and redraw)", brush_from_python),
        ("`AnomalyWidget` (build the widget)", lambda: AnomalyWidget(history)),
        ("static SVG fallback of a `TimelineWidget`", lambda: timeline._repr_html_()),
    ]
    results = [(name, median_seconds(action, args.repeat)) for name, action in rows]
    shipped = sum(len(values) for values in charts.timeline_chart(history).to_dict().get("datasets", {}).values())

    lines = [
        f"{TRANSITIONS:,} transitions (the NYC taxi series repeated); charts ship at most "
        f"{charts.DEFAULT_MAX_POINTS:,} rows, here {shipped:,}. Median of {args.repeat} runs after one warm-up run.",
        "",
        "| operation | median |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {seconds * 1000:,.0f} ms |" for name, seconds in results]
    body = "\n".join(lines)
    print(body)
    write_section("widgets", "Charts and widgets on 100,000 transitions", body)


if __name__ == "__main__":
    main()
