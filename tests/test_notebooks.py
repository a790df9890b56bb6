"""Run every tutorial notebook under nbval, which compares each stored output with a fresh run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytest.importorskip("nbval")


def test_every_tutorial_is_collected():
    assert [path.stem[:2] for path in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_tutorial_saved_with_outputs(notebook):
    # nbval compares only the outputs a notebook stores, so a notebook saved
    # with cleared outputs would pass without checking anything.
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code_cells = [cell for cell in cells if cell["cell_type"] == "code"]
    unexecuted = [index for index, cell in enumerate(code_cells) if cell.get("execution_count") is None]

    assert code_cells
    assert unexecuted == [], f"code cells {unexecuted} have no execution count. Run jupyter nbconvert --execute --inplace {notebook.name}"
    assert sum(len(cell["outputs"]) for cell in code_cells) > 0


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_tutorial_outputs_repeat(notebook):
    # nbval runs the cells in order, so pytest-randomly (where installed) must not shuffle them.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(notebook), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
