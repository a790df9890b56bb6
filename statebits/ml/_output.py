"""Return results in the frame library the caller used."""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from statebits.ml._input import ORIGINAL_POSITION

__all__ = ["like_input"]


def like_input(data: Any, frame: pd.DataFrame) -> Any:
    """Restore the input's row order and return a Polars frame for Polars input.

    ``frame`` is a coerced history frame that carries the ``_position``
    column; that column is dropped from the result.
    """
    frame = frame.sort_values(ORIGINAL_POSITION, kind="stable").drop(columns=ORIGINAL_POSITION)
    if isinstance(data, pd.DataFrame):
        frame.index = data.index
        return frame
    frame = frame.reset_index(drop=True)
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(data, polars.DataFrame):
        return polars.from_pandas(frame)
    return frame
