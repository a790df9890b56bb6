"""AnomalyWidget: anomaly scores over time with a threshold slider that updates the flags."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import traitlets

from statebits.charts import (
    DEFAULT_MAX_POINTS,
    THRESHOLD,
    anomaly_chart,
    anomaly_scores,
    default_threshold,
    history_frame,
)
from statebits.core.errors import NotFittedError, ValidationError
from statebits.widgets._base import FALLBACK_MAX_POINTS, OfflineJupyterChart, StatebitsWidget, ipywidgets

__all__ = ["AnomalyWidget"]

#: Positions of the threshold slider between the lowest and the highest score.
SLIDER_STEPS = 200


class AnomalyWidget(StatebitsWidget):
    """Values with flagged transitions, anomaly scores, and a threshold slider.

    A transition is flagged when its score is above :attr:`threshold`
    (higher scores are more anomalous, as in ``statebits.ml``). Moving the slider, or setting
    :attr:`threshold` from Python, updates :attr:`flags`, :attr:`flagged` and
    the chart.

    Parameters
    ----------
    data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
        A history. Without ``detector`` it must already have the score column.
    detector : object, optional
        An anomaly detector with ``score_frame(frame)`` that returns the frame
        with a score column added, such as ``statebits.ml.AnomalyDetector``.
        A detector whose ``score_frame`` raises NotFittedError is fitted on
        ``data`` first.
    score_column : str, default="anomaly_score"
        Name of the score column.
    threshold : float, optional
        Initial threshold. Defaults to the detector's ``threshold_`` if it has
        one, else the highest score among rows not flagged in
        ``flag_column``, else the 99th percentile of the scores.
    flag_column : str, default="is_anomaly"
        Boolean column of flags set by a detector, used only for the default
        threshold.
    tz : str or datetime.tzinfo, optional
        Time zone of the axis and tooltips; None shows UTC.
    max_points : int, default=5000
        Maximum number of transitions drawn; the highest scores are kept.
    title : str, optional
        Chart title.
    width : int, default=640
        Chart width in pixels.
    fallback : {"svg", "png", None}, default="svg"
        Static image in the HTML representation; None leaves it out.

    Attributes
    ----------
    threshold : float
        Score above which a transition is flagged.
    """

    threshold = traitlets.Float(help="Score above which a transition is flagged.")

    def __init__(
        self,
        data: Any,
        *,
        detector: Any = None,
        score_column: str = "anomaly_score",
        threshold: float | None = None,
        flag_column: str = "is_anomaly",
        tz: str | dt.tzinfo | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        title: str | None = None,
        width: int = 640,
        fallback: str | None = "svg",
    ) -> None:
        owner = "AnomalyWidget"
        frame = history_frame(data, owner)
        if detector is not None:
            frame = history_frame(_score_with(detector, frame), owner)
        self._frame = frame
        self._score_column = score_column
        self._scores = anomaly_scores(frame, score_column, owner)
        initial = _initial_threshold(threshold, detector, frame, self._scores, flag_column)
        self._options = {"score_column": score_column, "tz": tz, "title": title, "width": width}
        self._max_points = max_points

        low, high = float(np.nanmin(self._scores)), float(np.nanmax(self._scores))
        step = (high - low) / SLIDER_STEPS if high > low else 1.0
        self._slider = ipywidgets.FloatSlider(
            value=initial,
            min=min(low, initial),
            max=max(high, initial),
            step=step,
            description="threshold",
            readout_format=".3g",
            continuous_update=True,
            layout=ipywidgets.Layout(width="480px"),
        )
        self._view = OfflineJupyterChart.create(anomaly_chart(frame, threshold=initial, max_points=max_points, **self._options))
        self._status = ipywidgets.HTML()
        super().__init__(children=[self._slider, self._view, self._status], fallback=fallback, owner=owner)
        self.threshold = initial
        self._slider.observe(self._on_change_slider, names=["value"])
        self._update_status()

    # -- public API -----------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """The scored history, sorted by time."""
        return self._frame.copy()

    @property
    def scores(self) -> pd.Series:
        """The anomaly score of each transition, aligned with :attr:`frame`."""
        return self._scores.copy()

    @property
    def flags(self) -> pd.Series:
        """Whether each transition's score is above :attr:`threshold`; missing scores are not flagged."""
        return (self._scores > self.threshold).fillna(False).astype(bool).rename("flagged")

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged transitions."""
        return self._frame[self.flags.to_numpy()].copy()

    # -- trait handling ----------------------------------------------------

    @traitlets.validate("threshold")
    def _validate_threshold(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if math.isnan(value):
            raise ValidationError("AnomalyWidget.threshold must be a number, got nan")
        return value

    @traitlets.observe("threshold")
    def _on_change_threshold(self, change: dict[str, Any]) -> None:
        value = change["new"]
        slider = self._slider
        with self.hold_sync(), slider.hold_sync():
            # A threshold outside the scores' range widens the slider instead of being clamped by it.
            slider.min = min(slider.min, value)
            slider.max = max(slider.max, value)
            slider.value = value
            # The chart's threshold parameter recolours the points in the browser without a rebuild.
            setattr(self._view.params, THRESHOLD, value)
            self._update_status()

    def _on_change_slider(self, change: dict[str, Any]) -> None:
        self.threshold = change["new"]

    # -- display -----------------------------------------------------------

    def _update_status(self) -> None:
        self._status.value = f'<span class="statebits-status">{self._status_text()}</span>'

    def _status_text(self) -> str:
        count = int(self.flags.sum())
        return f"{count:,} of {len(self._frame):,} transitions flagged at threshold {self.threshold:.3g}."

    def describe(self) -> str:
        """Return one plain-text paragraph saying what the widget shows."""
        identities = self._frame["identity"].astype(str).unique()
        name = identities[0] if len(identities) == 1 else f"{len(identities)} statebits"
        return (
            f"AnomalyWidget of {name}: values and anomaly scores ('{self._score_column}') over time, "
            f"with a threshold slider. {self._status_text()}"
        )

    def static_chart(self) -> Any:
        """Return the anomaly chart drawn as the static fallback, at the current threshold."""
        limit = min(self._max_points, FALLBACK_MAX_POINTS)
        return anomaly_chart(self._frame, threshold=self.threshold, max_points=limit, **self._options)


def _score_with(detector: Any, frame: pd.DataFrame) -> pd.DataFrame:
    if not hasattr(detector, "score_frame"):
        raise ValidationError(
            f"AnomalyWidget: the detector {type(detector).__name__} has no score_frame(frame) method; "
            "pass a statebits.ml.AnomalyDetector, or a frame with a score column"
        )
    try:
        scored = detector.score_frame(frame)
    except NotFittedError:
        detector.fit(frame)
        scored = detector.score_frame(frame)
    return scored


def _initial_threshold(threshold: float | None, detector: Any, frame: pd.DataFrame, scores: pd.Series, flag_column: str) -> float:
    if threshold is not None:
        return float(threshold)
    fitted = getattr(detector, "threshold_", None) if detector is not None else None
    if isinstance(fitted, (int, float, np.number)) and not math.isnan(float(fitted)):
        return float(fitted)
    if flag_column in frame.columns:
        flags = frame[flag_column].fillna(False).astype(bool).to_numpy()
        unflagged = scores[~flags].dropna()
        if flags.any() and not unflagged.empty:
            return float(unflagged.max())
    return default_threshold(scores)
