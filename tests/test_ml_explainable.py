"""Tests of SHAP explanations for every model kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from statebits.core.errors import NotFittedError, ValidationError
from statebits.ml import AnomalyDetector, AutoMLPredictor, ExplainableAI, FeatureSpec, SequencePredictor, StateClusterer
from test_ml_support import NAB_SERIES, history_frame, load_nab, sunspots


@pytest.fixture(scope="module")
def traffic():
    return load_nab(NAB_SERIES[4])


def assert_additive(xai, frame, rows, atol):
    values = xai.shap_values(frame, max_rows=rows)
    assert len(values) == rows
    outputs = xai.adapter_.predict(xai.adapter_.matrix(frame, None)[0][-rows:])
    np.testing.assert_allclose(values.sum(axis=1).to_numpy() + xai.expected_value_, outputs, atol=atol)


def test_detector_shap_names_and_additivity(traffic):
    detector = AnomalyDetector().fit(traffic)
    xai = ExplainableAI(detector, background_size=80).fit(traffic)
    assert xai.feature_names_ == ["value", "delta", "rolling_z_50", "rolling_std_50"]
    assert_additive(xai, traffic, rows=20, atol=1e-6)


def test_explain_flagged_transition(traffic):
    detector = AnomalyDetector().fit(traffic)
    scored = detector.score_frame(traffic)
    flagged_position = int(np.flatnonzero(scored["is_anomaly"].to_numpy())[0])
    xai = ExplainableAI(detector, background_size=80).fit(traffic)
    explanation = xai.explain_transition(traffic, transition_index=flagged_position)
    assert explanation["step"] == flagged_position + 1
    assert explanation["output"] == pytest.approx(scored["anomaly_score"].iloc[flagged_position])
    contributions = list(explanation["contributions"].values())
    assert contributions == sorted(contributions, key=abs, reverse=True)
    # A flagged row scores above the background mean, so the contributions add up to a positive push.
    assert sum(contributions) > 0


def test_single_feature_detector():
    values = np.r_[np.random.default_rng(0).normal(size=200), 9.0]
    frame = history_frame(values, pd.date_range("2024-01-01", periods=201, freq="h", tz="UTC"))
    spec = FeatureSpec(lags=(), windows=(), calendar=False, columns=("value",))
    detector = AnomalyDetector(method="mad", features=spec).fit(frame)
    xai = ExplainableAI(detector, background_size=50).fit(frame)
    explanation = xai.explain_transition(frame)
    assert list(explanation["contributions"]) == ["value"]
    assert explanation["base_value"] + explanation["contributions"]["value"] == pytest.approx(explanation["output"])


def test_single_lag_predictor():
    frame = sunspots().head(80)
    predictor = SequencePredictor(hidden_size=8, num_layers=1).train(frame, sequence_length=1, epochs=2)
    xai = ExplainableAI(predictor, background_size=30).fit(frame)
    values = xai.shap_values(frame, max_rows=5)
    assert list(values.columns) == ["lag_1"]
    last = xai.explain_transition(frame)
    assert last["output"] == pytest.approx(predictor.predict(frame).predicted_value, rel=1e-6)


def test_predictor_lags_explain_forecast():
    frame = sunspots().head(150)
    predictor = SequencePredictor().train(frame, sequence_length=6, epochs=5)
    xai = ExplainableAI(predictor, background_size=40).fit(frame)
    assert xai.feature_names_ == [f"lag_{k}" for k in range(1, 7)]
    explanation = xai.explain_transition(frame)
    assert explanation["step"] == 150
    assert explanation["output"] == pytest.approx(predictor.predict(frame).predicted_value, rel=1e-6)
    assert_additive(xai, frame, rows=5, atol=1e-3)


def test_clusterer_and_automl_explanations():
    frame = sunspots().head(120)
    clusterer = StateClusterer(n_clusters=3).fit(frame)
    cluster_xai = ExplainableAI(clusterer, background_size=40).fit(frame)
    assert cluster_xai.feature_names_ == list(clusterer.feature_names_in_)
    assert_additive(cluster_xai, frame, rows=5, atol=1e-6)

    automl = AutoMLPredictor(candidates=["last_value", "linear"], season_length=11).fit(frame)
    automl_xai = ExplainableAI(automl, background_size=40).fit(frame)
    importance = automl_xai.feature_importance(frame, max_rows=20)
    assert importance.index[0].startswith("lag_")
    assert importance.is_monotonic_decreasing


def test_background_clamped_with_warning():
    frame = sunspots().head(30)
    detector = AnomalyDetector(method="zscore").fit(frame)
    with pytest.warns(UserWarning, match=r"`background_size`=100 exceeds .*using 30"):
        ExplainableAI(detector).fit(frame)


def test_unfitted_model_rejected():
    with pytest.raises(NotFittedError):
        ExplainableAI(AnomalyDetector()).fit(sunspots())


def test_unknown_model_rejected():
    with pytest.raises(ValidationError, match="cannot explain a dict"):
        ExplainableAI({}).fit(sunspots())


def test_shap_values_before_fit():
    with pytest.raises(NotFittedError):
        ExplainableAI(AnomalyDetector()).shap_values(sunspots())
