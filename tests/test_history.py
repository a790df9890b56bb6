"""History internals: bulk extension, views, import hooks."""

from __future__ import annotations

import subprocess
import sys
from array import array

import pytest

from statebits import IntegrityError, Statebit
from statebits.core.history import extend_history


def build(values):
    sb = Statebit("bulk", 0.0)
    count = len(values)
    extend_history(
        sb.history,
        array("d", values),
        ["reading"] * count,
        [1.0] * count,
        list(range(1, count + 1)),
        list(range(1, count + 1)),
    )
    return sb


def test_bulk_extension_matches_single_appends():
    bulk = build([1.0, 2.0, 3.0])
    single = Statebit("bulk", 0.0)
    for position, value in enumerate([1.0, 2.0, 3.0], start=1):
        single.history.append(value, b"f" + array("d", [value]).tobytes(), single.history.reasons.add("reading"), 0, 1.0, position, position)

    assert bulk.history.head_checksum() == single.history.head_checksum()
    assert bulk.verify_integrity()
    assert bulk.value == 3.0


def test_bulk_mismatch_leaves_history_unchanged():
    source = build([1.0, 2.0, 3.0])
    expected = bytearray(source.history.checksums)
    expected[40] ^= 1
    target = build([])

    with pytest.raises(IntegrityError, match="step 2"):
        extend_history(
            target.history,
            array("d", [1.0, 2.0, 3.0]),
            ["reading"] * 3,
            [1.0] * 3,
            [1, 2, 3],
            [1, 2, 3],
            expected=bytes(expected),
        )
    assert len(target.history) == 0
    assert target.value == 0.0
    assert target.verify_integrity()


def test_bulk_mixed_values_verify():
    sb = Statebit("mixed", None)
    extend_history(sb.history, [1, "two", 3.0, None], ["r"] * 4, [0.5] * 4, [1, 2, 3, 4], [1, 2, 3, 4], tags=[("a",), (), ("a", "b"), ()])

    assert sb.verify_integrity()
    assert [t.tags for t in sb.history] == [("a",), (), ("a", "b"), ()]
    assert [t.to_value for t in sb.history] == [1, "two", 3.0, None]


def test_import_statebits_skips_optional_dependencies():
    probe = (
        "import sys, statebits; "
        "heavy = [m for m in ('torch', 'sklearn', 'pyod', 'shap', 'redis', 'websockets', 'ipywidgets') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


def test_post_import_hook_runs_after_import():
    probe = (
        "import sys; from statebits._import_hooks import when_imported; "
        "seen = []; when_imported('json', lambda m: seen.append(m.__name__)); "
        "import json; print(seen)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    # json may already be loaded by the interpreter; either way the callback ran once.
    assert out.stdout.strip() == "['json']"
