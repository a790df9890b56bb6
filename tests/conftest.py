"""Shared fixtures."""

from __future__ import annotations

import pytest

import statebits


@pytest.fixture
def fixed_clock():
    """Make every reading of the statebits clock one second after the previous."""
    with statebits.use_clock(statebits.TickingClock("2024-01-01T00:00:00Z", step="1s")):
        yield
