"""Tests of SequencePredictor on CO2 and sunspots and on edge cases."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import statebits
from statebits.core.errors import InsufficientDataError, NotFittedError, ValidationError
from statebits.ml._series import mase, seasonal_naive_forecast
from statebits.ml.forecasting import MLPrediction, SequencePredictor
from test_ml_support import co2_monthly, history_frame, sunspots


def one_step_mase(frame, predictor, period, sequence_length, epochs):
    """Train on the first 80 %, forecast each later value one step ahead, return MASE and the naive's."""
    values = frame["to_value"].to_numpy()
    cut = int(len(values) * 0.8)
    predictor.train(frame.iloc[:cut], sequence_length=sequence_length, epochs=epochs)
    positions = np.arange(cut, len(values))
    predicted = predictor.predict_next_values(values, positions)
    naive = values[positions - period]
    train = values[:cut]
    return mase(values[positions], predicted, train, period), mase(values[positions], naive, train, period)


@pytest.mark.parametrize("model_type", ["lstm", "transformer"])
def test_co2_beats_seasonal_naive(model_type):
    score, naive = one_step_mase(co2_monthly(), SequencePredictor(model_type=model_type), 12, 24, 30)
    assert np.isfinite(score)
    assert score < 1.0
    assert score < naive


def test_sunspots_lstm_beats_seasonal_naive():
    score, naive = one_step_mase(sunspots(), SequencePredictor(model_type="lstm"), 11, 10, 30)
    assert score < 1.0
    assert score < naive


def make_statebit(values):
    sb = statebits.Statebit(identity="metric", initial_value=float(values[0]))
    sb.batch_transition([{"new_value": float(v), "reason": "reading", "confidence": 0.9} for v in values[1:]])
    return sb


def test_guide_lstm_example(fixed_clock):
    statebit = make_statebit(20 + np.sin(np.arange(40) / 3.0))
    predictor = SequencePredictor(model_type="lstm", hidden_size=64, num_layers=2)
    started = time.perf_counter()
    predictor.train(statebit, sequence_length=10, epochs=50)
    assert time.perf_counter() - started < 20
    prediction = predictor.predict(statebit)
    assert isinstance(prediction, MLPrediction)
    assert 18 < prediction.predicted_value < 22
    assert 0 < prediction.confidence <= 1
    assert prediction.interval[0] <= prediction.predicted_value <= prediction.interval[1]
    assert prediction.step == len(statebit.history) + 1
    assert prediction.identity == "metric"


def test_guide_transformer_example(fixed_clock):
    statebit = make_statebit(20 + np.sin(np.arange(40) / 3.0))
    predictor = SequencePredictor(model_type="transformer", d_model=64, nhead=4, num_layers=2)
    predictor.train(statebit, sequence_length=10, epochs=50)
    prediction = predictor.predict(statebit)
    assert np.isfinite(prediction.predicted_value)
    assert 0 < prediction.confidence <= 1


def test_constant_series_predicts_constant():
    frame = history_frame(np.full(30, 7.5), pd.date_range("2024-01-01", periods=30, freq="D", tz="UTC"))
    predictor = SequencePredictor().train(frame, sequence_length=5, epochs=3)
    prediction = predictor.predict(frame)
    assert prediction.predicted_value == 7.5
    assert prediction.interval == (7.5, 7.5)
    assert prediction.confidence == 1.0
    forecast = predictor.forecast(frame, 3)
    assert forecast["predicted_value"].tolist() == [7.5, 7.5, 7.5]


@pytest.mark.parametrize("scale", [1e300, 1e-300, -1e250])
def test_extreme_magnitudes_stay_finite(scale):
    values = scale * (1.0 + 0.1 * np.sin(np.arange(60) / 4.0))
    frame = history_frame(values, pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC"))
    predictor = SequencePredictor().train(frame, sequence_length=8, epochs=3)
    prediction = predictor.predict(frame)
    assert np.isfinite(prediction.predicted_value)
    assert np.isfinite(prediction.interval).all()
    assert abs(prediction.predicted_value) < abs(scale) * 2
    assert 0 < prediction.confidence <= 1


def test_too_short_history_says_how_many():
    frame = history_frame([1.0, 2.0], ["2024-01-01", "2024-01-02"])
    with pytest.raises(InsufficientDataError, match="at least 3 transitions to train, got 2"):
        SequencePredictor().train(frame)


def test_sequence_length_clamped_with_warning():
    frame = history_frame([1.0, 2.0, 3.0, 4.0, 5.0], pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC"))
    with pytest.warns(UserWarning, match=r"`sequence_length`=10 exceeds .*using 3"):
        predictor = SequencePredictor().train(frame, sequence_length=10, epochs=2)
    assert predictor.sequence_length_ == 3
    assert np.isfinite(predictor.predict(frame).predicted_value)


def test_missing_values_do_not_make_nan():
    values = np.sin(np.arange(50) / 3.0)
    values[[5, 17, 40]] = np.nan
    frame = history_frame(values, pd.date_range("2024-01-01", periods=50, freq="D", tz="UTC"))
    predictor = SequencePredictor().train(frame, sequence_length=5, epochs=3)
    assert np.isfinite(predictor.predict(frame).predicted_value)


def test_text_values_rejected():
    frame = history_frame(np.array(["a", "b", "c", "d"], dtype=object), pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC"))
    with pytest.raises(ValidationError, match="numeric values"):
        SequencePredictor().train(frame)


def test_same_seed_same_model():
    frame = sunspots().head(120)
    first = SequencePredictor(random_state=3).train(frame, sequence_length=10, epochs=5).predict(frame)
    second = SequencePredictor(random_state=3).train(frame, sequence_length=10, epochs=5).predict(frame)
    assert first.predicted_value == second.predicted_value
    assert first.interval == second.interval


@pytest.mark.parametrize("model_type", ["lstm", "transformer"])
def test_save_load_round_trip(tmp_path, model_type):
    frame = sunspots().head(120)
    predictor = SequencePredictor(model_type=model_type, hidden_size=16, d_model=16, nhead=2).train(frame, sequence_length=6, epochs=3)
    path = tmp_path / "model.pt"
    predictor.save(path)
    loaded = SequencePredictor.load(path)
    assert loaded.get_params() == predictor.get_params()
    assert loaded.predict(frame) == predictor.predict(frame)
    pd.testing.assert_frame_equal(loaded.forecast(frame, 4), predictor.forecast(frame, 4))


def test_load_rejects_other_files(tmp_path):
    import torch

    path = tmp_path / "other.pt"
    torch.save({"format": 99}, path)
    with pytest.raises(ValidationError, match="not a SequencePredictor file"):
        SequencePredictor.load(path)


def test_load_rejects_junk_bytes(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"junk" * 10)

    with pytest.raises(ValidationError, match="not a SequencePredictor file"):
        SequencePredictor.load(path)


def test_forecast_frame_and_widening_interval():
    frame = co2_monthly().head(200)
    predictor = SequencePredictor().train(frame, sequence_length=12, epochs=5)
    forecast = predictor.forecast(frame, horizon=6)
    assert list(forecast.columns) == ["identity", "step", "timestamp", "predicted_value", "lower", "upper", "confidence"]
    assert forecast["step"].tolist() == list(range(201, 207))
    widths = (forecast["upper"] - forecast["lower"]).to_numpy()
    assert (np.diff(widths) > 0).all()
    assert forecast["timestamp"].is_monotonic_increasing
    assert forecast["timestamp"].iloc[0] > frame["timestamp"].iloc[-1]
    assert not forecast.isna().any().any()


def test_torch_threads_restored():
    import torch

    before = torch.get_num_threads()
    frame = sunspots().head(60)
    SequencePredictor(num_threads=1).train(frame, sequence_length=5, epochs=2)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"model_type": "gru"}, "model_type"),
        ({"model_type": "transformer", "d_model": 30, "nhead": 4}, "d_model"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_invalid_parameters_rejected(params, match):
    with pytest.raises(ValidationError, match=match):
        SequencePredictor(**params).train(sunspots().head(50), epochs=1)


def test_predict_before_train():
    with pytest.raises(NotFittedError, match="call `train`"):
        SequencePredictor().predict(sunspots())


def test_seasonal_naive_helper():
    assert seasonal_naive_forecast(np.arange(6.0), 4, period=3).tolist() == [3.0, 4.0, 5.0, 3.0]
    assert seasonal_naive_forecast(np.arange(2.0), 2, period=3).tolist() == [1.0, 1.0]


def test_forecast_continues_calendar_frequency():
    months = pd.date_range("2020-01-01", periods=40, freq="MS", tz="UTC")
    frame = history_frame(np.sin(np.arange(40) / 2.0), months)
    predictor = SequencePredictor(hidden_size=8, num_layers=1).train(frame, sequence_length=6, epochs=2)
    forecast = predictor.forecast(frame, horizon=3)
    expected = pd.to_datetime(["2023-05-01", "2023-06-01", "2023-07-01"], utc=True)
    assert forecast["timestamp"].tolist() == list(expected)


def test_forecast_irregular_times_use_median_spacing():
    seconds = np.array([0, 10, 30, 40, 60, 70, 90, 100, 120, 130])
    times = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    frame = history_frame(np.arange(10.0), times)
    predictor = SequencePredictor(hidden_size=8, num_layers=1).train(frame, sequence_length=3, epochs=2)
    forecast = predictor.forecast(frame, horizon=2)
    assert forecast["timestamp"].tolist() == [times[-1] + pd.Timedelta(seconds=10), times[-1] + pd.Timedelta(seconds=20)]
