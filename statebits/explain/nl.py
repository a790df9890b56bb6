"""Plain-language explanations of histories, transitions and detected patterns.

NLExplainer needs no machine-learning package: it reads a Statebit's
transitions (or the rows of a history frame) with plain Python. Results of
the ML models (anomaly results, cluster assignments, predictions) are read by
their attributes, so this module never imports :mod:`statebits.ml`.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from numbers import Real
from typing import Any

from statebits.core.confidence import ConfidenceLevel
from statebits.core.errors import ValidationError

__all__ = ["NLExplainer"]


@dataclass(frozen=True)
class _Change:
    """The fields of one transition that the sentences use."""

    step: int
    timestamp: datetime | None
    from_value: Any
    to_value: Any
    reason: str
    confidence: float
    tags: tuple[str, ...]


class NLExplainer:
    """Describe histories and model results in plain English sentences.

    Parameters
    ----------
    precision : int, default=4
        Significant digits for numbers in the text.

    Examples
    --------
    >>> from statebits import Statebit
    >>> account = Statebit(identity="checking", initial_value=1000.0)
    >>> _ = account.transition(1500.0, "Deposit received")
    >>> NLExplainer().explain_transition(account).startswith("checking changed from 1000 to 1500")
    True
    """

    def __init__(self, precision: int = 4) -> None:
        if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
            raise ValidationError(f"invalid `precision` of NLExplainer: expected a positive integer, got {precision!r}")
        self.precision = precision

    def __repr__(self) -> str:
        return f"NLExplainer(precision={self.precision})"

    # Histories ---------------------------------------------------------------

    def explain_history(self, source: Any, *, identity: Any = None) -> str:
        """Summarise a whole history in a few sentences.

        Parameters
        ----------
        source : Statebit or history frame (pandas or Polars)
        identity : object, optional
            Which identity of a collection frame to describe.
        """
        name, initial, changes = self._read(source, identity)
        if not changes:
            return f"{name} has no recorded transitions; it holds its initial value {self._fmt(initial)}."

        first, last = changes[0], changes[-1]
        count = len(changes)
        noun = "transition" if count == 1 else "transitions"
        span = self._span(first.timestamp, last.timestamp)
        # A frame without the value before its first row starts from that row's value.
        start_value = first.to_value if _is_missing(initial) else initial
        sentences = [f"{name} went from {self._fmt(start_value)} to {self._fmt(last.to_value)} over {count} {noun}{span}."]

        numeric = [c for c in changes if _is_number(c.to_value)]
        if len(numeric) == count and _is_number(start_value):
            net = float(last.to_value) - float(start_value)
            sentences.append(f"The net change is {self._signed(net)}{self._percent(net, start_value)}.")
            steps = [(float(c.to_value) - float(c.from_value), c) for c in changes if _is_number(c.from_value)]
            if steps:
                size, biggest = max(steps, key=lambda item: abs(item[0]))
                sentences.append(
                    f"The largest single change was {self._signed(size)} at step {biggest.step} "
                    f"({self._quote(biggest.reason)})."
                )
            values = [float(c.to_value) for c in numeric]
            sentences.append(f"Values ranged from {self._fmt(min(values))} to {self._fmt(max(values))}.")
        else:
            distinct = Counter(_hashable(c.to_value) for c in changes)
            common, times = distinct.most_common(1)[0]
            sentences.append(
                f"It took {len(distinct)} distinct values; the most frequent was {self._fmt(common)} ({times} of {count})."
            )

        confidences = [c.confidence for c in changes]
        mean_confidence = statistics.fmean(confidences)
        low = sum(1 for value in confidences if value < ConfidenceLevel.MEDIUM)
        confidence_text = f"Average confidence was {mean_confidence:.2f} ({self._level(mean_confidence)})"
        if low:
            confidence_text += f"; {low} {'transition was' if low == 1 else 'transitions were'} below medium confidence (0.6)"
        sentences.append(confidence_text + ".")

        reasons = Counter(c.reason for c in changes).most_common(3)
        if reasons and (len(reasons) < count or count <= 3):
            listed = ", ".join(f"{self._quote(reason)} ({times}x)" for reason, times in reasons)
            sentences.append(f"Most common reasons: {listed}.")
        tags = Counter(tag for c in changes for tag in c.tags).most_common(5)
        if tags:
            sentences.append("Tags used: " + ", ".join(f"{tag} ({times}x)" for tag, times in tags) + ".")
        return " ".join(sentences)

    def explain_transition(self, source: Any, transition_index: int = -1, *, identity: Any = None) -> str:
        """Describe one transition and how it compares with the others.

        ``transition_index`` indexes the history as ``statebit.history[i]``
        does; negative values count from the end.
        """
        name, _initial, changes = self._read(source, identity)
        if not changes:
            raise ValidationError(f"{name} has no transitions to explain")
        if isinstance(transition_index, bool) or not isinstance(transition_index, int):
            raise ValidationError(f"invalid `transition_index`: expected an integer, got {transition_index!r}")
        if not -len(changes) <= transition_index < len(changes):
            raise IndexError(f"transition_index {transition_index} is out of range for a history of {len(changes)} transitions")
        return self._describe(name, changes[transition_index], _typical_change(changes))

    def explain_transitions(self, source: Any, *, identity: Any = None) -> list[str]:
        """Describe every transition of a history, oldest first.

        Equivalent to calling :meth:`explain_transition` for each index, but
        the history is read once.
        """
        name, _initial, changes = self._read(source, identity)
        typical = _typical_change(changes)
        return [self._describe(name, change, typical) for change in changes]

    def _describe(self, name: str, change: _Change, typical: float | None) -> str:
        when = f" ({_format_time(change.timestamp)})" if change.timestamp is not None else ""
        text = (
            f"{name} changed from {self._fmt(change.from_value)} to {self._fmt(change.to_value)} at step {change.step}{when} "
            f"because {self._quote(change.reason)}, with confidence {change.confidence:.2f} ({self._level(change.confidence)})."
        )
        if _is_number(change.to_value) and _is_number(change.from_value):
            size = float(change.to_value) - float(change.from_value)
            text += f" That is a change of {self._signed(size)}{self._percent(size, change.from_value)}."
            if typical:
                ratio = abs(size) / typical
                if ratio >= 3:
                    text += f" It is {ratio:.1f} times the typical (median) change size of {self._fmt(typical)}."
                elif ratio <= 1 / 3:
                    text += f" It is smaller than usual: the median change size is {self._fmt(typical)}."
        if change.tags:
            text += f" Tags: {', '.join(change.tags)}."
        return text

    # Model results -----------------------------------------------------------

    def explain_pattern(self, pattern: Any, source: Any = None) -> str:
        """Describe a detected pattern in words.

        Parameters
        ----------
        pattern : object
            An anomaly result (has ``is_anomaly`` and ``anomaly_score``), a
            cluster assignment (a mapping with ``"cluster"``), a prediction
            (has ``predicted_value`` and ``interval``), or a frame scored by
            ``AnomalyDetector.score_frame`` (has an ``is_anomaly`` column).
        source : Statebit or history frame, optional
            The history the pattern came from, used to add its reason and
            time.
        """
        # Frames first: pandas also exposes columns as attributes.
        columns = getattr(pattern, "columns", None)
        if columns is not None:
            if "is_anomaly" in list(columns):
                return self._explain_scored_frame(pattern)
        elif hasattr(pattern, "is_anomaly") and hasattr(pattern, "anomaly_score"):
            return self._explain_anomaly(pattern, source)
        elif isinstance(pattern, Mapping) and "cluster" in pattern:
            return self._explain_cluster(pattern)
        elif hasattr(pattern, "predicted_value") and hasattr(pattern, "interval"):
            return self._explain_prediction(pattern)
        raise ValidationError(
            f"explain_pattern cannot describe a {type(pattern).__name__}; pass an anomaly result, a cluster "
            "assignment, a prediction or a scored frame"
        )

    def _explain_anomaly(self, result: Any, source: Any) -> str:
        identity_text = "" if getattr(result, "identity", None) is None else f" of {result.identity}"
        verdict = "is flagged as an anomaly" if result.is_anomaly else "looks normal"
        relation = "above" if result.is_anomaly else "at or below"
        text = (
            f"Step {result.step}{identity_text} {verdict}: its score {self._fmt(result.anomaly_score)} is {relation} the threshold "
            f"{self._fmt(result.threshold)} (method {result.method}, contamination {result.contamination})."
        )
        features = getattr(result, "features", None) or {}
        z_names = [name for name in features if name.startswith("rolling_z_")]
        if z_names:
            z = features[z_names[0]]
            window = z_names[0].rsplit("_", 1)[-1]
            direction = "above" if z >= 0 else "below"
            text += (
                f" Its value {self._fmt(features.get('value', result.value))} is {abs(z):.1f} standard deviations "
                f"{direction} the mean of the previous {window} transitions."
            )
        if source is not None:
            _name, _initial, changes = self._read(source, getattr(result, "identity", None))
            match = next((c for c in changes if c.step == result.step), None)
            if match is not None:
                text += f" The recorded reason was {self._quote(match.reason)}."
        return text

    def _explain_cluster(self, assignment: Mapping[str, Any]) -> str:
        cluster = assignment["cluster"]
        step = assignment.get("step")
        identity_text = "" if assignment.get("identity") is None else f" of {assignment['identity']}"
        subject = f"Step {step}{identity_text}" if step is not None else "The transition"
        if cluster == -1:
            return f"{subject} is noise: it lies in no dense cluster."
        text = f"{subject} belongs to cluster {cluster}"
        distance = assignment.get("distance")
        if isinstance(distance, Real) and not math.isnan(distance):
            text += f", {distance:.2f} scaled units from the cluster's centre"
        return text + "."

    def _explain_prediction(self, prediction: Any) -> str:
        identity_text = "" if getattr(prediction, "identity", None) is None else f" of {prediction.identity}"
        horizon = getattr(prediction, "horizon", 1)
        ahead = "the next value" if horizon == 1 else f"the value {horizon} steps ahead"
        low, high = prediction.interval
        level = getattr(prediction, "interval_level", None)
        level_text = f"{level:.0%} interval" if isinstance(level, Real) else "interval"
        model = getattr(prediction, "model_type", None)
        by = f" by the {model} model" if model else ""
        return (
            f"{ahead[0].upper()}{ahead[1:]}{identity_text} is predicted to be {self._fmt(prediction.predicted_value)}{by} "
            f"({level_text} {self._fmt(low)} to {self._fmt(high)}; confidence {prediction.confidence:.2f})."
        )

    def _explain_scored_frame(self, frame: Any) -> str:
        if not hasattr(frame, "iloc"):
            frame = frame.to_pandas()
        flagged = frame[frame["is_anomaly"].astype(bool)]
        total = len(frame)
        if flagged.empty:
            return f"No anomalies among {total} transitions."
        share = len(flagged) / total if total else 0.0
        text = f"{len(flagged)} of {total} transitions ({share:.1%}) are flagged as anomalies."
        if "anomaly_score" in flagged.columns:
            top = flagged.loc[flagged["anomaly_score"].idxmax()]
            where = f" of {top['identity']}" if "identity" in flagged.columns else ""
            text += f" The highest score, {self._fmt(float(top['anomaly_score']))}, is at step {top['step']}{where}"
            if "timestamp" in flagged.columns:
                text += f" ({_format_time(top['timestamp'])})"
            text += "."
        return text

    # Reading sources ---------------------------------------------------------

    def _read(self, source: Any, identity: Any) -> tuple[str, Any, list[_Change]]:
        history = getattr(source, "history", None)
        if history is not None and hasattr(source, "identity"):
            changes = [_from_transition(t) for t in history]
            return str(source.identity), getattr(source, "initial_value", None), changes
        rows = _frame_rows(source)
        if rows is None:
            raise ValidationError(
                f"NLExplainer expected a Statebit or a history frame, got {type(source).__name__}"
            )
        identities = list(dict.fromkeys(row.get("identity") for row in rows))
        if identity is None and len(identities) > 1:
            raise ValidationError(f"the frame contains {len(identities)} identities; pass `identity=` to choose one")
        chosen = identities[0] if identity is None and identities else identity
        selected = [row for row in rows if row.get("identity") == chosen]
        if identity is not None and not selected:
            raise ValidationError(f"identity {identity!r} not found in the frame")
        selected.sort(key=lambda row: row.get("step", 0))
        changes = [_from_row(row) for row in selected]
        initial = changes[0].from_value if changes else None
        return str(chosen), initial, changes

    # Formatting --------------------------------------------------------------

    def _fmt(self, value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, Real):
            number = float(value)
            if math.isnan(number):
                return "NaN"
            if number.is_integer() and abs(number) < 1e15:
                return str(int(number))
            return f"{number:.{self.precision}g}"
        if isinstance(value, str):
            return repr(value)
        return repr(value)

    def _signed(self, value: float) -> str:
        return ("+" if value > 0 else "") + self._fmt(value)

    def _percent(self, change: float, base: Any) -> str:
        if not _is_number(base) or float(base) == 0:
            return ""
        return f" ({change / abs(float(base)):+.1%})"

    @staticmethod
    def _quote(reason: str) -> str:
        return f'"{reason}"'

    @staticmethod
    def _level(confidence: float) -> str:
        return ConfidenceLevel.from_value(min(max(confidence, 0.0), 1.0)).name.lower().replace("_", " ")

    @staticmethod
    def _span(start: datetime | None, end: datetime | None) -> str:
        if start is None or end is None:
            return ""
        if _format_time(start) == _format_time(end):
            return f" at {_format_time(start)}"
        return f" between {_format_time(start)} and {_format_time(end)}"


def _typical_change(changes: list[_Change]) -> float | None:
    """Median absolute numeric change, or None with fewer than 5 numeric changes."""
    sizes = [
        abs(float(c.to_value) - float(c.from_value))
        for c in changes
        if _is_number(c.to_value) and _is_number(c.from_value)
    ]
    if len(sizes) < 5:
        return None
    typical = statistics.median(sizes)
    return typical if typical > 0 else None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and not (isinstance(value, float) and math.isnan(value))


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _format_time(moment: Any) -> str:
    if moment is None:
        return "an unknown time"
    if hasattr(moment, "strftime"):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return str(moment)


def _from_transition(transition: Any) -> _Change:
    return _Change(
        step=int(transition.step),
        timestamp=getattr(transition, "timestamp", None),
        from_value=getattr(transition, "from_value", None),
        to_value=transition.to_value,
        reason=str(getattr(transition, "reason", "")),
        confidence=float(getattr(transition, "confidence", 1.0)),
        tags=tuple(getattr(transition, "tags", ()) or ()),
    )


def _frame_rows(source: Any) -> list[dict[str, Any]] | None:
    if hasattr(source, "to_dicts"):  # Polars
        return list(source.to_dicts())
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # pandas
        return list(source.to_dict("records"))
    return None


def _from_row(row: Mapping[str, Any]) -> _Change:
    tags = row.get("tags")
    timestamp = row.get("timestamp")
    confidence = row.get("confidence", 1.0)
    return _Change(
        step=int(row.get("step", 0)),
        timestamp=timestamp if hasattr(timestamp, "strftime") else None,
        from_value=row.get("from_value"),
        to_value=row.get("to_value"),
        reason=str(row.get("reason", "")),
        confidence=float(confidence) if _is_number(confidence) else 1.0,
        tags=_tag_tuple(tags),
    )


def _tag_tuple(tags: Any) -> tuple[str, ...]:
    # Frames hold tags as lists or arrays; a missing cell may be None or NaN.
    if tags is None or isinstance(tags, (str, float)):
        return ()
    return tuple(str(tag) for tag in tags)
