"""Next-value forecasts from a history with LSTM or transformer networks.

The network reads the last ``sequence_length`` values, standardised with a
scale fitted on the training part of the series only, and predicts the change
to the next value. Training holds out the last ``validation_fraction`` of the
windows, stops early when the validation loss stops improving and keeps the
best weights. Prediction intervals come from the absolute one-step errors on
the validation windows.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import InsufficientDataError, ValidationError, invalid_parameter
from statebits.ml._base import ParamsMixin, check_fitted, warn_clamped
from statebits.ml._networks import build_network
from statebits.ml._series import Series, SeriesScaler, make_windows, read_series, safe_std, window_inputs

__all__ = ["SequencePredictor", "MLPrediction", "MODEL_TYPES", "make_prediction", "predictions_frame"]

#: Accepted values of ``model_type``.
MODEL_TYPES: tuple[str, ...] = ("lstm", "transformer")

#: Minimum number of transitions training accepts: two windows of one value each.
MIN_TRAIN_ROWS = 3

# Format version written by save(); load() rejects other versions.
_SAVE_FORMAT = 1


@dataclass(frozen=True)
class MLPrediction:
    """A forecast of one future value.

    Attributes
    ----------
    predicted_value : float
    confidence : float
        In (0, 1], derived from the interval: ``1 / (1 + width / (2 s))``
        with ``s`` the standard deviation of the training values. 1.0 means
        an exact forecast, 0.5 an interval as wide as two standard deviations
        of the series.
    interval : tuple of float
        Lower and upper bound of the prediction interval.
    interval_level : float
        Intended coverage of ``interval``, such as 0.9.
    model_type : str
    horizon : int
        How many steps ahead of the last known value this forecast is.
    step : int or None
        The step number the forecast is for.
    timestamp : pandas.Timestamp or None
        Expected time of that step: the history's calendar frequency
        continued when pandas can infer one, else the last time plus
        ``horizon`` median spacings.
    identity : object
    """

    predicted_value: float
    confidence: float
    interval: tuple[float, float]
    interval_level: float
    model_type: str
    horizon: int = 1
    step: int | None = None
    timestamp: pd.Timestamp | None = None
    identity: Any = None
    details: dict[str, Any] = field(default_factory=dict)


class SequencePredictor(ParamsMixin):
    """Forecast the next values of a numeric history with a torch network.

    Parameters
    ----------
    model_type : {"lstm", "transformer"}, default="lstm"
    hidden_size : int, default=64
        LSTM hidden units per layer.
    num_layers : int, default=2
        Stacked LSTM layers or transformer encoder layers.
    d_model : int, default=64
        Transformer embedding width; must be divisible by ``nhead``.
    nhead : int, default=4
        Transformer attention heads.
    dropout : float, default=0.1
    learning_rate : float, default=0.003
        Adam learning rate.
    batch_size : int, default=128
    validation_fraction : float, default=0.2
        Share of the windows, taken from the end, held out for early stopping
        and for the prediction interval.
    patience : int, default=5
        Epochs without validation improvement before training stops.
    interval_level : float, default=0.9
        Coverage of the prediction interval.
    random_state : int, default=0
        Seed for weights and batch order, so training repeats exactly on one
        machine.
    num_threads : int or None, default=None
        torch threads used while training and predicting; None uses one.
        The default networks are small, so a second thread gains little, and
        when other processes compete for the cores two threads ran much
        slower than one: 25.4 s against 1.8 s for 3 LSTM epochs on 10,000
        values in one run of benchmarks/bench_ml.py on a busy 2-core machine.
        The previous torch setting is restored afterwards.

    Attributes
    ----------
    sequence_length_ : int
        Window length used, after clamping to the data.
    n_epochs_ : int
        Epochs run before early stopping.
    train_losses_, validation_losses_ : list of float
        Mean squared error per epoch, in scaled units.
    interval_halfwidth_ : float
        Half-width of the one-step interval in the series' units.
    training_time_ : float
        Seconds spent training.

    Examples
    --------
    >>> predictor = SequencePredictor(model_type="lstm", hidden_size=64, num_layers=2)  # doctest: +SKIP
    >>> predictor.train(statebit, sequence_length=10, epochs=50)  # doctest: +SKIP
    >>> predictor.predict(statebit).predicted_value  # doctest: +SKIP
    """

    def __init__(
        self,
        model_type: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        d_model: int = 64,
        nhead: int = 4,
        *,
        dropout: float = 0.1,
        learning_rate: float = 0.003,
        batch_size: int = 128,
        validation_fraction: float = 0.2,
        patience: int = 5,
        interval_level: float = 0.9,
        random_state: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.model_type = model_type
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.d_model = d_model
        self.nhead = nhead
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.interval_level = interval_level
        self.random_state = random_state
        self.num_threads = num_threads

    # Training ----------------------------------------------------------------

    def fit(self, data: Any, y: Any = None, *, sequence_length: int = 10, epochs: int = 50, identity: Any = None) -> "SequencePredictor":
        """Train on a history; the scikit-learn spelling of :meth:`train`."""
        return self.train(data, sequence_length=sequence_length, epochs=epochs, identity=identity)

    def train(self, data: Any, sequence_length: int = 10, epochs: int = 50, *, identity: Any = None) -> "SequencePredictor":
        """Train the network on one identity's history.

        Parameters
        ----------
        data : Statebit, StatebitsCollection, pandas.DataFrame or polars.DataFrame
            A numeric history.
        sequence_length : int, default=10
            Number of past values the network reads. Lowered with a warning
            when the history is too short for two training windows.
        epochs : int, default=50
            Upper bound on training epochs; early stopping may end sooner.
        identity : object, optional
            Which identity of a collection frame to train on.

        Returns
        -------
        SequencePredictor
            The trained predictor.

        Raises
        ------
        InsufficientDataError
            With fewer than 3 transitions.
        """
        owner = "SequencePredictor.train"
        self._validate_parameters(sequence_length, epochs)
        series = read_series(data, identity=identity, owner=owner)
        values = series.values
        if len(values) < MIN_TRAIN_ROWS:
            raise InsufficientDataError(
                f"SequencePredictor needs at least {MIN_TRAIN_ROWS} transitions to train, got {len(values)}"
            )

        # Two windows are the minimum to fit anything; shorten the window if needed.
        length = int(sequence_length)
        if len(values) - length < 2:
            used = len(values) - 2
            warn_clamped("SequencePredictor.train", "sequence_length", sequence_length, used, f"{len(values)} transitions")
            length = used

        n_windows = len(values) - length
        n_validation = int(round(n_windows * self.validation_fraction)) if n_windows >= 10 else 0
        n_train_windows = n_windows - n_validation
        # The scaler is fitted on the values the training windows and targets cover, nothing later.
        scaler = SeriesScaler().fit(values[: n_train_windows + length])
        scaled = scaler.transform(values)
        inputs, targets = make_windows(scaled, length)

        self.sequence_length_ = length
        self.scaler_ = scaler
        self.identity_ = series.identity
        self.n_samples_fit_ = len(values)
        self.value_std_ = safe_std(values)
        self.constant_value_ = float(values[0]) if np.all(values == values[0]) else None

        started = time.perf_counter()
        with self._torch_threads() as torch:
            torch.manual_seed(self.random_state)
            self.network_ = self._new_network(length)
            if self.constant_value_ is None:
                self._fit_network(torch, inputs[:n_train_windows], targets[:n_train_windows], inputs[n_train_windows:], targets[n_train_windows:], epochs)
            else:
                # A constant series has nothing to learn: its forecast is the value itself.
                self.train_losses_, self.validation_losses_, self.n_epochs_ = [0.0], [], 0
            residual_inputs = inputs[n_train_windows:] if n_validation else inputs
            residual_targets = targets[n_train_windows:] if n_validation else targets
            errors = np.abs(self._predict_scaled_changes(torch, residual_inputs) - residual_targets)
        self.training_time_ = time.perf_counter() - started
        self.interval_halfwidth_ = float(np.quantile(errors, self.interval_level)) * scaler.spread * scaler.magnitude if len(errors) else 0.0
        if self.constant_value_ is not None:
            self.interval_halfwidth_ = 0.0

        return self

    def _validate_parameters(self, sequence_length: Any, epochs: Any) -> None:
        owner = "SequencePredictor"
        if self.model_type not in MODEL_TYPES:
            raise invalid_parameter("model_type", self.model_type, f"one of {list(MODEL_TYPES)}", owner)
        for name in ("hidden_size", "num_layers", "d_model", "nhead", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise invalid_parameter(name, value, "a positive integer", owner)
        if self.model_type == "transformer" and self.d_model % self.nhead:
            raise invalid_parameter("d_model", self.d_model, f"a multiple of nhead={self.nhead}", owner)
        if not 0 <= self.dropout < 1:
            raise invalid_parameter("dropout", self.dropout, "a number in [0, 1)", owner)
        if not 0 <= self.validation_fraction < 1:
            raise invalid_parameter("validation_fraction", self.validation_fraction, "a number in [0, 1)", owner)
        if not 0 < self.interval_level < 1:
            raise invalid_parameter("interval_level", self.interval_level, "a number in (0, 1)", owner)
        if not self.learning_rate > 0:
            raise invalid_parameter("learning_rate", self.learning_rate, "a positive number", owner)
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise invalid_parameter("num_threads", self.num_threads, "a positive integer or None", owner)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, (int, np.integer)) or sequence_length < 1:
            raise invalid_parameter("sequence_length", sequence_length, "a positive integer", f"{owner}.train")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise invalid_parameter("epochs", epochs, "a positive integer", f"{owner}.train")

    def _new_network(self, length: int) -> Any:
        return build_network(
            self.model_type,
            sequence_length=length,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            d_model=self.d_model,
            nhead=self.nhead,
            dropout=self.dropout,
        )

    def _fit_network(self, torch: Any, train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray, epochs: int) -> None:
        network = self.network_
        optimizer = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        loss_fn = torch.nn.MSELoss()
        generator = torch.Generator().manual_seed(self.random_state)
        x = torch.as_tensor(train_x, dtype=torch.float32)
        y = torch.as_tensor(train_y, dtype=torch.float32)
        vx = torch.as_tensor(valid_x, dtype=torch.float32)
        vy = torch.as_tensor(valid_y, dtype=torch.float32)

        best_loss, best_state, stale = math.inf, None, 0
        self.train_losses_, self.validation_losses_ = [], []
        for _epoch in range(epochs):
            network.train()
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), self.batch_size):
                batch = order[start : start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(network(x[batch]), y[batch])
                loss.backward()
                # Clipping keeps one outlying window from blowing up the weights.
                torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                total += loss.item() * len(batch)
            self.train_losses_.append(total / len(x))

            monitored = self.train_losses_[-1]
            if len(vx):
                network.eval()
                with torch.no_grad():
                    monitored = float(loss_fn(network(vx), vy))
                self.validation_losses_.append(monitored)
            if monitored < best_loss - 1e-7:
                best_loss, stale = monitored, 0
                best_state = {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break

        if best_state is not None:
            network.load_state_dict(best_state)
        network.eval()
        self.n_epochs_ = len(self.train_losses_)

    @contextlib.contextmanager
    def _torch_threads(self) -> Iterator[Any]:
        torch = import_optional("torch", feature="SequencePredictor")
        previous = torch.get_num_threads()
        wanted = self.num_threads or 1
        torch.set_num_threads(wanted)
        try:
            yield torch
        finally:
            torch.set_num_threads(previous)

    # Prediction --------------------------------------------------------------

    def _predict_scaled_changes(self, torch: Any, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 0:
            return np.empty(0)
        if self.constant_value_ is not None:
            return np.zeros(len(inputs))
        self.network_.eval()
        outputs = []
        with torch.no_grad():
            for start in range(0, len(inputs), 4096):
                chunk = torch.as_tensor(inputs[start : start + 4096], dtype=torch.float32)
                outputs.append(self.network_(chunk).numpy().astype("float64"))
        return np.concatenate(outputs)

    def predict_next_values(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Predict ``values[t]`` from ``values[:t]`` for each ``t`` in ``positions``.

        Every position must have at least one earlier value; when fewer than
        ``sequence_length_`` earlier values exist the window is padded with
        the first value. Used for rolling-origin evaluation without refitting.
        """
        check_fitted(self, "network_", verb="train")
        values = np.asarray(values, dtype="float64")
        positions = np.asarray(positions, dtype="int64")
        if len(positions) and positions.min() < 1:
            raise ValidationError("predict_next_values needs at least one value before each position")
        length = self.sequence_length_
        padded = np.concatenate([np.repeat(values[:1], length), values])
        windows = np.lib.stride_tricks.sliding_window_view(padded, length)
        # The window that ends just before original position t starts at padded index t.
        return self.predict_from_windows(windows[positions])

    def predict_from_windows(self, windows: np.ndarray) -> np.ndarray:
        """Predict the value after each window of shape (n, sequence_length_), oldest value first."""
        check_fitted(self, "network_", verb="train")
        windows = np.asarray(windows, dtype="float64")
        if windows.ndim != 2 or windows.shape[1] != self.sequence_length_:
            raise ValidationError(
                f"expected windows of shape (n, {self.sequence_length_}), got {windows.shape}"
            )
        scaled = self.scaler_.transform(windows)
        with self._torch_threads() as torch:
            changes = self._predict_scaled_changes(torch, window_inputs(scaled))
        return self.scaler_.inverse(scaled[:, -1] + changes)

    def predict(self, data: Any, *, identity: Any = None) -> MLPrediction:
        """Forecast the value after the last transition of ``data``."""
        return self._forecast_series(self._read(data, identity, "SequencePredictor.predict"), 1)[0]

    def forecast(self, data: Any, horizon: int = 1, *, identity: Any = None) -> pd.DataFrame:
        """Forecast ``horizon`` steps ahead, feeding each forecast back as input.

        Returns
        -------
        pandas.DataFrame
            One row per future step with the columns identity, step,
            timestamp, predicted_value, lower, upper and confidence. Interval
            half-widths grow with the square root of the horizon, an
            assumption of independent one-step errors.
        """
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise invalid_parameter("horizon", horizon, "a positive integer", "SequencePredictor.forecast")
        predictions = self._forecast_series(self._read(data, identity, "SequencePredictor.forecast"), int(horizon))
        return predictions_frame(predictions)

    def _read(self, data: Any, identity: Any, owner: str) -> Series:
        check_fitted(self, "network_", verb="train")
        series = read_series(data, identity=identity, owner=owner)
        if len(series.values) < 1:
            raise InsufficientDataError(f"{owner} needs at least 1 transition, got 0")
        return series

    def _forecast_series(self, series: Series, horizon: int) -> list[MLPrediction]:
        length = self.sequence_length_
        history = series.values
        if len(history) < length:
            history = np.concatenate([np.repeat(history[:1], length - len(history)), history])
        window = list(self.scaler_.transform(history[-length:]))

        predicted_scaled = []
        with self._torch_threads() as torch:
            for _ in range(horizon):
                change = self._predict_scaled_changes(torch, window_inputs(np.asarray(window)[None, :]))[0]
                next_value = window[-1] + change
                predicted_scaled.append(next_value)
                window = window[1:] + [next_value]
        predicted = self.scaler_.inverse(np.asarray(predicted_scaled))
        if self.constant_value_ is not None:
            predicted = np.full(horizon, self.constant_value_)

        results = []
        times = series.future_timestamps(horizon)
        for h, value in enumerate(predicted, start=1):
            halfwidth = self.interval_halfwidth_ * math.sqrt(h)
            results.append(
                make_prediction(
                    value,
                    halfwidth,
                    self.value_std_,
                    self.interval_level,
                    self.model_type,
                    horizon=h,
                    step=series.last_step + h,
                    timestamp=times[h - 1],
                    identity=series.identity,
                )
            )
        return results

    # Persistence -------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the trained predictor to ``path`` with ``torch.save``.

        The file contains the weights and plain numbers only, so :meth:`load`
        reads it with ``weights_only=True``.
        """
        check_fitted(self, "network_", verb="train")
        torch = import_optional("torch", feature="SequencePredictor.save")
        state = {
            "format": _SAVE_FORMAT,
            "params": self.get_params(),
            "weights": self.network_.state_dict(),
            "fitted": {
                "sequence_length_": self.sequence_length_,
                "scaler_": self.scaler_.to_dict(),
                "identity_": None if self.identity_ is None else str(self.identity_),
                "n_samples_fit_": self.n_samples_fit_,
                "value_std_": self.value_std_,
                "constant_value_": self.constant_value_,
                "interval_halfwidth_": self.interval_halfwidth_,
                "n_epochs_": self.n_epochs_,
                "train_losses_": list(self.train_losses_),
                "validation_losses_": list(self.validation_losses_),
                "training_time_": self.training_time_,
            },
        }
        torch.save(state, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SequencePredictor":
        """Read a predictor written by :meth:`save`."""
        torch = import_optional("torch", feature="SequencePredictor.load")
        try:
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:  # torch raises several unrelated types for a file that is not a checkpoint
            raise ValidationError(f"{path} is not a SequencePredictor file written by save(): {exc}") from None
        if not isinstance(state, dict) or state.get("format") != _SAVE_FORMAT:
            raise ValidationError(f"{path} is not a SequencePredictor file of format {_SAVE_FORMAT}")
        predictor = cls(**state["params"])
        fitted = dict(state["fitted"])
        fitted["scaler_"] = SeriesScaler.from_dict(fitted["scaler_"])
        for name, value in fitted.items():
            setattr(predictor, name, value)
        predictor.network_ = predictor._new_network(predictor.sequence_length_)
        predictor.network_.load_state_dict(state["weights"])
        predictor.network_.eval()
        return predictor


def make_prediction(
    value: float,
    halfwidth: float,
    value_std: float,
    level: float,
    model_type: str,
    **details: Any,
) -> MLPrediction:
    """Build an MLPrediction whose confidence follows from the interval width."""
    width = 2.0 * halfwidth
    if width == 0:
        confidence = 1.0
    elif value_std > 0:
        confidence = 1.0 / (1.0 + width / (2.0 * value_std))
    else:
        # A constant training series with a nonzero interval cannot arise from
        # train(); treat the interval as one standard deviation wide.
        confidence = 0.5
    return MLPrediction(
        predicted_value=float(value),
        confidence=float(confidence),
        interval=(float(value - halfwidth), float(value + halfwidth)),
        interval_level=level,
        model_type=model_type,
        **details,
    )


def predictions_frame(predictions: list[MLPrediction]) -> pd.DataFrame:
    """Tabulate predictions: identity, step, timestamp, value, bounds, confidence."""
    return pd.DataFrame(
        {
            "identity": [p.identity for p in predictions],
            "step": pd.array([p.step for p in predictions], dtype="Int64"),
            "timestamp": pd.to_datetime(pd.Series([p.timestamp for p in predictions], dtype="object"), utc=True),
            "predicted_value": [p.predicted_value for p in predictions],
            "lower": [p.interval[0] for p in predictions],
            "upper": [p.interval[1] for p in predictions],
            "confidence": [p.confidence for p in predictions],
        }
    )
