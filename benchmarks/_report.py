"""Write one benchmark's section into docs/benchmarks.md.

Each benchmark script owns one section, delimited by HTML comment markers, so
scripts can be rerun one at a time without erasing the figures of the others.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures measured by the scripts in `benchmarks/`. Each section names the\n"
    "machine and the command that produced it; rerun the command to refresh it.\n"
)


def machine_description() -> str:
    """Describe the CPU, core count, memory and Python version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}, {platform.system()}"


def git_revision() -> str:
    """Return the short commit hash of the checkout, or 'unknown'."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(name: str, title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md.

    Parameters
    ----------
    name : str
        Marker name of the section, unique per script.
    title : str
        Heading shown in the document.
    body : str
        Markdown with the figures.
    command : str, optional
        The command that reproduces the figures; defaults to this process's argv.
    """
    command = command or " ".join(["python"] + sys.argv)
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"Machine: {machine_description()}. Commit: {git_revision()}.\n"
        f"Command: `{command}`\n\n{body.strip()}\n<!-- END {name} -->\n"
    )
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->\n", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
