"""Run the widgets tutorial under nbval, which compares every stored output with a fresh run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_widgets.ipynb"

pytest.importorskip("nbval")
pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")


@pytest.mark.slow
def test_widgets_tutorial_outputs_repeat():
    # pytest-randomly, where installed, would shuffle the cells, which nbval must run in order.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(NOTEBOOK), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
