"""Pick a forecaster for a history by time-series cross-validation.

Every candidate is scored on the same expanding-window folds: fitted on the
values before a fold and asked for one-step-ahead forecasts of each value in
the fold, always from the true values before it (rolling origin, no refit).
The candidate with the lowest mean absolute error is refitted on the whole
history and serves ``predict`` and ``forecast``.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from statebits._dependencies import import_optional
from statebits.core.errors import InsufficientDataError, invalid_parameter
from statebits.ml._base import ParamsMixin, check_fitted
from statebits.ml._series import Series, SeriesScaler, make_windows, read_series, safe_std, window_inputs
from statebits.ml.forecasting import MLPrediction, SequencePredictor, make_prediction, predictions_frame

__all__ = ["AutoMLPredictor", "CANDIDATES", "infer_season_length"]

#: Candidate names, in the order they are reported.
CANDIDATES: tuple[str, ...] = ("last_value", "seasonal_naive", "linear", "gradient_boosting", "lstm", "transformer")

#: Coverage of the prediction interval, from the winner's fold errors.
INTERVAL_LEVEL = 0.9

# Minimum number of values in the first training block of the cross-validation.
_MIN_TRAIN_BLOCK = 8

# Seasons for common regular spacings: a day of hours, a week of days, a year
# of months. Spacings not listed get no seasonal candidate unless passed.
_SEASONS = (
    (pd.Timedelta(minutes=5), 288),
    (pd.Timedelta(minutes=10), 144),
    (pd.Timedelta(minutes=15), 96),
    (pd.Timedelta(minutes=30), 48),
    (pd.Timedelta(hours=1), 24),
    (pd.Timedelta(days=1), 7),
    (pd.Timedelta(days=7), 52),
)


def infer_season_length(spacing: pd.Timedelta | None) -> int:
    """Guess the season length from the median spacing; 1 when unknown."""
    if spacing is None or pd.isna(spacing):
        return 1
    for step, season in _SEASONS:
        if abs(spacing - step) <= step * 0.05:
            return season
    if pd.Timedelta(days=28) <= spacing <= pd.Timedelta(days=31):
        return 12
    if pd.Timedelta(days=89) <= spacing <= pd.Timedelta(days=92):
        return 4
    return 1


class AutoMLPredictor(ParamsMixin):
    """Choose among baselines, regressions and torch networks by validation.

    Parameters
    ----------
    candidates : sequence of str or None, default=None
        Names from ``CANDIDATES``; None tries all of them.
    n_splits : int, default=3
        Expanding-window folds. Lowered when the history is too short.
    season_length : int or None, default=None
        Period of the seasonal naive candidate, in transitions. None infers
        it from the median spacing of the timestamps (24 for hourly data, 12
        for monthly, and so on) and skips the candidate when no season is
        known.
    sequence_length : int or None, default=None
        Window of past values for the regressions and networks. None uses
        twice the season length, at least 10 and at most 48.
    epochs : int, default=30
        Maximum epochs of the torch candidates.
    random_state : int, default=0

    Attributes
    ----------
    leaderboard_ : pandas.DataFrame
        One row per candidate with the mean and standard deviation of the
        fold MAE, the fit seconds and the rank. A failed candidate has NaN
        scores and its error message in ``error``.
    best_model_name_ : str
    best_model_ : object
        The winner refitted on the whole history.
    season_length_, sequence_length_ : int
    """

    def __init__(
        self,
        candidates: list[str] | tuple[str, ...] | None = None,
        *,
        n_splits: int = 3,
        season_length: int | None = None,
        sequence_length: int | None = None,
        epochs: int = 30,
        random_state: int = 0,
    ) -> None:
        self.candidates = candidates
        self.n_splits = n_splits
        self.season_length = season_length
        self.sequence_length = sequence_length
        self.epochs = epochs
        self.random_state = random_state

    def fit(self, data: Any, y: Any = None, *, identity: Any = None) -> "AutoMLPredictor":
        """Cross-validate every candidate and refit the best one; returns self."""
        owner = "AutoMLPredictor.fit"
        names = self._validate_parameters()
        series = read_series(data, identity=identity, owner=owner)
        values = series.values
        needed = _MIN_TRAIN_BLOCK + 2
        if len(values) < needed:
            raise InsufficientDataError(f"AutoMLPredictor needs at least {needed} transitions, got {len(values)}")

        season = self.season_length or infer_season_length(series.spacing)
        if season >= len(values) // 2:
            season = 1
        length = self.sequence_length or min(max(10, 2 * season), 48)
        length = max(1, min(length, len(values) // 4))
        if season <= 1 and "seasonal_naive" in names and self.candidates is None:
            names = [name for name in names if name != "seasonal_naive"]

        folds = _expanding_folds(len(values), self.n_splits, minimum_train=max(_MIN_TRAIN_BLOCK, length + 2))
        rows, residuals = [], {}
        for name in names:
            started = time.perf_counter()
            errors: list[float] = []
            fold_residuals: list[np.ndarray] = []
            failure = ""
            try:
                for train_end, test_end in folds:
                    model = _make_candidate(name, season, length, self.epochs, self.random_state)
                    model.fit(values[:train_end])
                    positions = np.arange(train_end, test_end)
                    predicted = model.predict_next(values, positions)
                    fold_residuals.append(values[positions] - predicted)
                    errors.append(float(np.mean(np.abs(fold_residuals[-1]))))
            except (ValueError, RuntimeError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            rows.append(
                {
                    "model": name,
                    "mae_mean": float(np.mean(errors)) if errors and not failure else math.nan,
                    "mae_std": float(np.std(errors)) if errors and not failure else math.nan,
                    "n_folds": len(errors) if not failure else 0,
                    "fit_seconds": time.perf_counter() - started,
                    "error": failure,
                }
            )
            if not failure:
                residuals[name] = np.concatenate(fold_residuals)

        board = pd.DataFrame(rows).sort_values("mae_mean", kind="stable", na_position="last").reset_index(drop=True)
        board["rank"] = np.arange(1, len(board) + 1)
        if board["mae_mean"].isna().all():
            raise RuntimeError(f"every AutoMLPredictor candidate failed: {dict(zip(board['model'], board['error']))}")
        best = str(board.loc[0, "model"])

        winner = _make_candidate(best, season, length, self.epochs, self.random_state)
        winner.fit(values)

        self.leaderboard_ = board
        self.best_model_name_ = best
        self.best_model_ = winner
        self.season_length_ = season
        self.sequence_length_ = length
        self.folds_ = folds
        self.interval_halfwidth_ = float(np.quantile(np.abs(residuals[best]), INTERVAL_LEVEL))
        self.value_std_ = safe_std(values)
        self.identity_ = series.identity

        return self

    def train(self, data: Any, *, identity: Any = None) -> "AutoMLPredictor":
        """Alias of :meth:`fit`, matching SequencePredictor's verb."""
        return self.fit(data, identity=identity)

    def _validate_parameters(self) -> list[str]:
        owner = "AutoMLPredictor"
        names = list(CANDIDATES if self.candidates is None else self.candidates)
        unknown = [name for name in names if name not in CANDIDATES]
        if unknown or not names:
            raise invalid_parameter("candidates", self.candidates, f"a non-empty list drawn from {list(CANDIDATES)}", owner)
        for name in ("n_splits", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise invalid_parameter(name, value, "a positive integer", owner)
        for name in ("season_length", "sequence_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise invalid_parameter(name, value, "a positive integer or None", owner)
        return names

    def predict(self, data: Any, *, identity: Any = None) -> MLPrediction:
        """Forecast the value after the last transition with the winning model."""
        return self._forecast(data, 1, identity)[0]

    def forecast(self, data: Any, horizon: int = 1, *, identity: Any = None) -> pd.DataFrame:
        """Forecast ``horizon`` steps with the winning model; see SequencePredictor.forecast."""
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise invalid_parameter("horizon", horizon, "a positive integer", "AutoMLPredictor.forecast")
        return predictions_frame(self._forecast(data, int(horizon), identity))

    def predict_next_values(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """One-step forecasts of ``values[t]`` from ``values[:t]`` with the winner."""
        check_fitted(self, "best_model_")
        return self.best_model_.predict_next(np.asarray(values, dtype="float64"), np.asarray(positions, dtype="int64"))

    def _forecast(self, data: Any, horizon: int, identity: Any) -> list[MLPrediction]:
        check_fitted(self, "best_model_")
        series: Series = read_series(data, identity=identity, owner="AutoMLPredictor.predict")
        if len(series.values) < 1:
            raise InsufficientDataError("AutoMLPredictor.predict needs at least 1 transition, got 0")
        predicted = self.best_model_.forecast(series.values, horizon)
        times = series.future_timestamps(horizon)
        return [
            make_prediction(
                value,
                self.interval_halfwidth_ * math.sqrt(h),
                self.value_std_,
                INTERVAL_LEVEL,
                self.best_model_name_,
                horizon=h,
                step=series.last_step + h,
                timestamp=times[h - 1],
                identity=series.identity,
            )
            for h, value in enumerate(predicted, start=1)
        ]


def _expanding_folds(n_values: int, n_splits: int, minimum_train: int) -> list[tuple[int, int]]:
    """Return (train_end, test_end) pairs of expanding-window folds.

    The test blocks are equal, contiguous and cover the end of the series;
    fewer folds are used when the series cannot fit ``n_splits`` of them.
    """
    splits = n_splits
    while splits > 1 and (n_values - minimum_train) // splits < 1:
        splits -= 1
    block = (n_values - minimum_train) // splits
    if block < 1:
        raise InsufficientDataError(f"AutoMLPredictor needs at least {minimum_train + 1} transitions, got {n_values}")
    if splits < n_splits:
        warnings.warn(
            f"AutoMLPredictor: `n_splits`={n_splits} exceeds what {n_values} transitions allow; using {splits}",
            UserWarning,
            stacklevel=4,
        )
    first = n_values - splits * block
    return [(first + i * block, first + (i + 1) * block) for i in range(splits)]


# Candidates --------------------------------------------------------------------


class _LastValue:
    window_length = 1

    def fit(self, values: np.ndarray) -> "_LastValue":
        return self

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -1]

    def predict_next(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return values[positions - 1]

    def forecast(self, history: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(history[-1], horizon)


class _SeasonalNaive:
    def __init__(self, period: int) -> None:
        self.period = period
        self.window_length = period

    def fit(self, values: np.ndarray) -> "_SeasonalNaive":
        return self

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -self.period]

    def predict_next(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        # Fall back to the last value where a full season is not yet known.
        source = np.where(positions >= self.period, positions - self.period, positions - 1)
        return values[source]

    def forecast(self, history: np.ndarray, horizon: int) -> np.ndarray:
        if len(history) < self.period:
            return np.repeat(history[-1], horizon)
        return np.resize(history[-self.period :], horizon)


class _WindowRegression:
    """A scikit-learn regressor on the same windows the networks read."""

    def __init__(self, kind: str, length: int, random_state: int) -> None:
        self.kind = kind
        self.length = length
        self.random_state = random_state

    def fit(self, values: np.ndarray) -> "_WindowRegression":
        self.length_ = max(1, min(self.length, len(values) - 2))
        self.scaler_ = SeriesScaler().fit(values)
        inputs, targets = make_windows(self.scaler_.transform(values), self.length_)
        flat = inputs.reshape(len(inputs), -1)
        if self.kind == "linear":
            self.model_ = import_optional("sklearn.linear_model", feature="AutoMLPredictor").Ridge(alpha=1.0)
        else:
            ensemble = import_optional("sklearn.ensemble", feature="AutoMLPredictor")
            self.model_ = ensemble.HistGradientBoostingRegressor(max_iter=200, random_state=self.random_state)
        with _one_openmp_thread():
            self.model_.fit(flat, targets)
        self.window_length = self.length_
        return self

    def _predict_scaled_windows(self, windows: np.ndarray) -> np.ndarray:
        inputs = window_inputs(windows).reshape(len(windows), -1)
        with _one_openmp_thread():
            return windows[:, -1] + self.model_.predict(inputs)

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        return self.scaler_.inverse(self._predict_scaled_windows(self.scaler_.transform(windows)))

    def predict_next(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        padded = np.concatenate([np.repeat(values[:1], self.length_), values])
        scaled = self.scaler_.transform(padded)
        windows = np.lib.stride_tricks.sliding_window_view(scaled, self.length_)[positions]
        return self.scaler_.inverse(self._predict_scaled_windows(windows))

    def forecast(self, history: np.ndarray, horizon: int) -> np.ndarray:
        if len(history) < self.length_:
            history = np.concatenate([np.repeat(history[:1], self.length_ - len(history)), history])
        window = list(self.scaler_.transform(history[-self.length_ :]))
        out = []
        for _ in range(horizon):
            next_value = float(self._predict_scaled_windows(np.asarray(window)[None, :])[0])
            out.append(next_value)
            window = window[1:] + [next_value]
        return self.scaler_.inverse(np.asarray(out))


class _Network:
    """SequencePredictor behind the candidate interface."""

    def __init__(self, model_type: str, length: int, epochs: int, random_state: int) -> None:
        self.predictor = SequencePredictor(model_type=model_type, random_state=random_state)
        self.length = length
        self.epochs = epochs

    def fit(self, values: np.ndarray) -> "_Network":
        frame = pd.DataFrame(
            {
                "identity": "automl",
                "step": np.arange(1, len(values) + 1),
                "timestamp": pd.Timestamp("2000-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(values)), unit="s"),
                "to_value": values,
            }
        )
        with warnings.catch_warnings():
            # The sequence length was already sized to the data above.
            warnings.simplefilter("ignore", UserWarning)
            self.predictor.train(frame, sequence_length=self.length, epochs=self.epochs)
        self.window_length = self.predictor.sequence_length_
        return self

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        return self.predictor.predict_from_windows(windows)

    def predict_next(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self.predictor.predict_next_values(values, positions)

    def forecast(self, history: np.ndarray, horizon: int) -> np.ndarray:
        frame = pd.DataFrame(
            {
                "identity": "automl",
                "step": np.arange(1, len(history) + 1),
                "timestamp": pd.Timestamp("2000-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(history)), unit="s"),
                "to_value": history,
            }
        )
        return self.predictor.forecast(frame, horizon)["predicted_value"].to_numpy()


def _one_openmp_thread() -> Any:
    """Limit OpenMP to one thread for scikit-learn's gradient boosting.

    On a 2-core machine with other processes running, fitting
    HistGradientBoostingRegressor on 250 windows took 5.0 s with its default
    OpenMP threads and 0.44 s with one.
    """
    threadpoolctl = import_optional("threadpoolctl", feature="AutoMLPredictor")
    return threadpoolctl.threadpool_limits(limits=1, user_api="openmp")


def _make_candidate(name: str, season: int, length: int, epochs: int, random_state: int) -> Any:
    if name == "last_value":
        return _LastValue()
    if name == "seasonal_naive":
        return _SeasonalNaive(max(1, season))
    if name in ("linear", "gradient_boosting"):
        return _WindowRegression(name, length, random_state)
    return _Network(name, length, epochs, random_state)
