"""The code blocks of docs/enterprise.md run in order, and print what the page shows."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "enterprise.md"


def fenced_blocks(text, language):
    """Return the bodies of the fenced blocks whose info string is ``language`` ("" for none)."""
    blocks = []
    current = None
    for line in text.splitlines():
        if current is None and line.startswith("```"):
            current = {"language": line[3:].strip(), "lines": []}
        elif current is not None and line == "```":
            if current["language"] == language:
                blocks.append("\n".join(current["lines"]) + "\n")
            current = None
        elif current is not None:
            current["lines"].append(line)
    return blocks


def test_enterprise_doc_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    namespace: dict = {"__name__": "enterprise_doc"}

    for number, block in enumerate(fenced_blocks(text, "python"), start=1):
        exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)

    printed = capsys.readouterr().out.splitlines()
    documented = [line for block in fenced_blocks(text, "") for line in block.splitlines() if line.strip()]
    assert len(documented) >= 5
    for line in documented:
        assert line in printed
