"""The examples in docs/stores.md run as written and print the output their comments state."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "stores.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def expected_output(code: str) -> list[str]:
    """Return the comments after print calls, which state what each prints."""
    return [line.rsplit("# ", 1)[1].strip() for line in code.splitlines() if "print(" in line and "# " in line]


def test_stores_doc_examples_print_documented_output(tmp_path, monkeypatch):
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}

    for number, code in enumerate(blocks, start=1):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)  # noqa: S102 - our own docs

        assert output.getvalue().splitlines() == expected_output(code), f"block {number}:\n{code}"


@pytest.mark.parametrize("name", ["MemoryStore", "SQLiteStore", "StoreConflictError", "load_collection", "verify"])
def test_stores_doc_mentions_api(name):
    assert name in DOC.read_text()
