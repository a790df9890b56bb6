"""Benchmark the core against statebits 0.2.1 from PyPI, in one run.

Creates (once) a virtual environment with statebits 0.2.1 beside this
checkout, runs the same worker under both interpreters, measures
``import statebits`` in fresh processes, and writes the "core" section of
docs/benchmarks.md.

Usage: python benchmarks/bench_core.py [--size 1000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, write_section  # noqa: E402

OLD_VENV = ROOT / ".venv-statebits-0.2.1"
WORKER = Path(__file__).resolve().parent / "_core_worker.py"
OPTIONAL = ["torch", "shap", "pyod", "sklearn", "redis", "websockets", "ipywidgets", "pyarrow", "altair"]
IMPORT_PROBE = (
    "import sys, time; start = time.perf_counter(); import statebits; "
    "elapsed = time.perf_counter() - start; import json; "
    f"print(json.dumps({{'seconds': elapsed, 'loaded': [m for m in {OPTIONAL!r} if m in sys.modules]}}))"
)


def old_python() -> Path:
    """Return the interpreter of the 0.2.1 environment, creating it when missing."""
    python = OLD_VENV / "bin" / "python"
    if not python.exists():
        venv.create(OLD_VENV, with_pip=True)
        # torch is pinned to the CPU build on disk; 0.2.1 imports it when present,
        # as it would for a user with its ml extra. 0.2.1 fails to import
        # without websockets (a NameError in its streaming module).
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "torch==2.13.0", "numpy", "websockets", "statebits==0.2.1"], check=True
        )
    return python


def run_worker(python: Path, size: int) -> dict:
    out = subprocess.run([str(python), str(WORKER), str(size)], check=True, capture_output=True, text=True, cwd="/tmp")
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time(python: Path, runs: int = 7) -> dict:
    results = []
    for _ in range(runs):
        out = subprocess.run([str(python), "-c", IMPORT_PROBE], check=True, capture_output=True, text=True, cwd="/tmp")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(item["seconds"] for item in results), "loaded": results[-1]["loaded"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="transitions in the query and verify history")
    args = parser.parse_args()

    old = old_python()
    new = Path(sys.executable)
    ours = run_worker(new, args.size)
    theirs = run_worker(old, args.size)
    ours_import = import_time(new)
    theirs_import = import_time(old)

    def row(label: str, key: str, unit: str, target: str, digits: int = 2) -> str:
        return f"| {label} | {ours[key]:.{digits}f} {unit} | {theirs[key]:.{digits}f} {unit} | {target} |"

    size = f"{args.size:,}"
    lines = [
        f"| operation | statebits {ours['version']} | statebits {theirs['version']} | target |",
        "| --- | --- | --- | --- |",
        row("one `transition()` with hash chain, median", "transition_us_median", "µs", "≤ 2 µs"),
        row("memory per numeric transition, repeated reason (tracemalloc)", "bytes_per_transition", "bytes", "≤ 150 bytes", 0),
        row(f"`get_transitions_by_tag`, {size} transitions", "query_tag_ms", "ms", "≤ 20 ms", 1),
        row(f"`get_transitions_by_confidence`, {size}", "query_confidence_ms", "ms", "≤ 20 ms", 1),
        row(f"time-range query, {size}", "query_range_ms", "ms", "≤ 20 ms", 1),
        row(f"`verify_integrity()`, {size}", "verify_s", "s", "≤ 1 s", 2),
        f"| `import statebits` (median of 7 fresh processes) | {ours_import['seconds']:.2f} s | {theirs_import['seconds']:.2f} s | ≤ 0.6 s |",
        f"| optional dependencies loaded by the import | {', '.join(ours_import['loaded']) or 'none'} | "
        f"{', '.join(theirs_import['loaded']) or 'none'} | none of torch, shap, pyod, sklearn, redis, websockets, ipywidgets |",
    ]
    notes = (
        f"\n\nQueries of statebits {ours['version']} return a lazy `TransitionView`; turning the tag query's "
        f"{ours['query_tag_count']:,} matches into a list of `StateTransition` takes "
        f"{ours['query_tag_as_list_ms']:.1f} ms more. 0.2.1's time-range query is `get_transitions_by_timerange` "
        "with float seconds. Building the history took "
        f"{ours['build_seconds']:.1f} s here and {theirs['build_seconds']:.1f} s with 0.2.1. "
        "Both verified their chains: "
        f"{ours['verify_ok']} / {theirs['verify_ok']}."
    )
    write_section("core", "Core operations against statebits 0.2.1", "\n".join(lines) + notes,
                  command=f"python benchmarks/bench_core.py --size {args.size}")
    print("\n".join(lines) + notes)


if __name__ == "__main__":
    main()
