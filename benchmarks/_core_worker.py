"""Measure core operations of whichever statebits the running interpreter imports.

Run by bench_core.py once with this checkout and once inside a virtual
environment holding statebits 0.2.1; prints one JSON object of figures.
Only the public API of each version is used.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import tracemalloc

SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def main() -> None:
    import statebits

    version = statebits.__version__
    ours = not version.startswith("0.2")
    Statebit = statebits.Statebit
    figures: dict[str, object] = {"version": version}

    # One transition: median over batches of 1,000 calls, per call.
    sb = Statebit(identity="single", initial_value=0.0)
    record = sb.transition
    batches = []
    for batch in range(60):
        start = time.perf_counter_ns()
        for i in range(1000):
            record(float(i), "sensor reading", 0.9)
        batches.append((time.perf_counter_ns() - start) / 1000)
    figures["transition_us_median"] = statistics.median(batches[10:]) / 1000
    del sb, record
    gc.collect()

    # Memory per numeric transition with a repeated reason, by tracemalloc.
    count = 100_000
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    sb = Statebit(identity="memory", initial_value=0.0)
    for i in range(count):
        sb.transition(float(i), "sensor reading", 0.9)
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures["bytes_per_transition"] = (used - base) / count
    del sb
    gc.collect()

    # A history of SIZE transitions: one in ten tagged, confidence cycling.
    sb = Statebit(identity="big", initial_value=0.0)
    start = time.perf_counter()
    for i in range(SIZE):
        if i % 10 == 0:
            sb.transition(float(i), "sensor reading", confidence=(i % 100) / 100, tags=["alert"])
        else:
            sb.transition(float(i), "sensor reading", confidence=(i % 100) / 100)
    figures["build_seconds"] = time.perf_counter() - start
    history = list(sb.history) if not ours else sb.history
    first, last = history[0].timestamp, history[-1].timestamp

    def timed(function, repeat: int = 5) -> float:
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            function()
            runs.append(time.perf_counter() - start)
        return statistics.median(runs) * 1000

    if ours:
        span = last - first
        low, high = first + span * 0.45, first + span * 0.55
        figures["query_tag_ms"] = timed(lambda: sb.get_transitions_by_tag("alert"))
        figures["query_confidence_ms"] = timed(lambda: sb.get_transitions_by_confidence(0.8))
        figures["query_range_ms"] = timed(lambda: sb.get_transitions_in_range(low, high))
        figures["query_tag_as_list_ms"] = timed(lambda: list(sb.get_transitions_by_tag("alert")))
        figures["query_tag_count"] = len(sb.get_transitions_by_tag("alert"))
    else:
        span = last - first
        low, high = first + span * 0.45, first + span * 0.55
        figures["query_tag_ms"] = timed(lambda: sb.get_transitions_by_tag("alert"))
        figures["query_confidence_ms"] = timed(lambda: sb.get_transitions_by_confidence(0.8))
        figures["query_range_ms"] = timed(lambda: sb.get_transitions_by_timerange(low, high))
        figures["query_tag_count"] = len(sb.get_transitions_by_tag("alert"))
    figures["verify_s"] = timed(sb.verify_integrity, repeat=3) / 1000
    figures["verify_ok"] = bool(sb.verify_integrity())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
