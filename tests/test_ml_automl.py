"""Tests of AutoMLPredictor's cross-validation and model choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statebits.core.errors import InsufficientDataError, NotFittedError, ValidationError
from statebits.ml._series import mae
from statebits.ml.automl import CANDIDATES, AutoMLPredictor, _expanding_folds, infer_season_length
from statebits.ml.forecasting import MLPrediction
from test_ml_support import co2_monthly, history_frame


@pytest.fixture(scope="module")
def co2_split():
    frame = co2_monthly()
    cut = int(len(frame) * 0.8)
    return frame, cut


@pytest.fixture(scope="module")
def fitted(co2_split):
    frame, cut = co2_split
    return AutoMLPredictor(epochs=8).fit(frame.iloc[:cut])


def test_leaderboard_reports_every_candidate(fitted):
    board = fitted.leaderboard_
    assert sorted(board["model"]) == sorted(CANDIDATES)
    assert board["error"].eq("").all()
    assert board["mae_mean"].is_monotonic_increasing
    assert board["rank"].tolist() == list(range(1, len(CANDIDATES) + 1))
    assert fitted.best_model_name_ == board.loc[0, "model"]
    assert fitted.season_length_ == 12


def test_winner_beats_baselines_on_held_out_co2(fitted, co2_split):
    frame, cut = co2_split
    values = frame["to_value"].to_numpy()
    positions = np.arange(cut, len(values))
    predicted = fitted.predict_next_values(values, positions)
    assert mae(values[positions], predicted) < mae(values[positions], values[positions - 1])
    assert mae(values[positions], predicted) < mae(values[positions], values[positions - 12])
    assert fitted.best_model_name_ not in ("last_value", "seasonal_naive")


def test_predict_and_forecast_use_winner(fitted, co2_split):
    frame, cut = co2_split
    train = frame.iloc[:cut]
    prediction = fitted.predict(train)
    assert isinstance(prediction, MLPrediction)
    assert prediction.model_type == fitted.best_model_name_
    assert abs(prediction.predicted_value - train["to_value"].iloc[-1]) < 5
    forecast = fitted.forecast(train, horizon=3)
    assert forecast["predicted_value"].iloc[0] == pytest.approx(prediction.predicted_value)
    assert len(forecast) == 3


def test_baselines_only_is_fast_and_picks_best():
    # A pure seasonal pattern: the seasonal naive forecast is exact.
    values = np.tile([1.0, 5.0, 3.0, 8.0], 30)
    frame = history_frame(values, pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC"))
    model = AutoMLPredictor(candidates=["last_value", "seasonal_naive"], season_length=4).fit(frame)
    assert model.best_model_name_ == "seasonal_naive"
    assert model.leaderboard_.loc[0, "mae_mean"] == 0.0
    assert model.predict(frame).predicted_value == 1.0


def test_no_season_skips_seasonal_candidate():
    values = np.cumsum(np.random.default_rng(0).normal(size=60))
    times = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(60) * 17, unit="min")
    model = AutoMLPredictor(candidates=None, epochs=2).fit(history_frame(values, times))
    assert "seasonal_naive" not in set(model.leaderboard_["model"])


def test_too_short_says_how_many():
    frame = history_frame(np.arange(5.0), pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC"))
    with pytest.raises(InsufficientDataError, match="at least 10 transitions, got 5"):
        AutoMLPredictor().fit(frame)


def test_unknown_candidate_rejected():
    with pytest.raises(ValidationError, match="candidates"):
        AutoMLPredictor(candidates=["prophet"]).fit(co2_monthly())


def test_not_fitted():
    with pytest.raises(NotFittedError):
        AutoMLPredictor().predict(co2_monthly())


def test_folds_cover_the_end_without_overlap():
    folds = _expanding_folds(100, 3, minimum_train=10)
    assert folds[-1][1] == 100
    assert all(end == next_start for (_, end), (next_start, _) in zip(folds, folds[1:]))
    assert folds[0][0] >= 10


def test_folds_reduced_with_warning():
    with pytest.warns(UserWarning, match="n_splits"):
        folds = _expanding_folds(12, 5, minimum_train=10)
    assert len(folds) == 2


@pytest.mark.parametrize(
    ("spacing", "season"),
    [(pd.Timedelta(hours=1), 24), (pd.Timedelta(minutes=30), 48), (pd.Timedelta(days=1), 7), (pd.Timedelta(days=31), 12), (pd.Timedelta(days=365), 1), (None, 1)],
)
def test_season_inferred_from_spacing(spacing, season):
    assert infer_season_length(spacing) == season
