"""Tests of the plain-language explainer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

import statebits
from statebits.core.errors import ValidationError
from statebits.explain.nl import NLExplainer
from statebits.ml.anomaly import AnomalyResult
from statebits.ml.forecasting import MLPrediction
from test_ml_support import history_frame


@pytest.fixture
def account(fixed_clock):
    sb = statebits.Statebit(identity="checking", initial_value=1000.0)
    sb.transition(1500.0, "Deposit received", confidence=1.0, tags=["income"])
    sb.transition(1450.0, "ATM withdrawal", confidence=0.5)
    return sb


def test_history_summary(account):
    text = NLExplainer().explain_history(account)
    assert text.startswith("checking went from 1000 to 1450 over 2 transitions")
    assert "The net change is +450 (+45.0%)." in text
    assert 'The largest single change was +500 at step 1 ("Deposit received").' in text
    assert "1 transition was below medium confidence (0.6)" in text
    assert "Tags used: income (1x)." in text


def test_transition_sentence(account):
    text = NLExplainer().explain_transition(account, -1)
    assert text.startswith('checking changed from 1500 to 1450 at step 2 (2024-01-01 00:00 UTC) because "ATM withdrawal"')
    assert "confidence 0.50 (low)" in text
    assert "That is a change of -50 (-3.3%)." in text


def test_unusual_change_is_called_out(fixed_clock):
    sb = statebits.Statebit(identity="temp", initial_value=20.0)
    for value in (20.5, 21.0, 20.5, 21.0, 20.5, 30.0):
        sb.transition(value, "reading")
    text = NLExplainer().explain_transition(sb)
    assert "19.0 times the typical (median) change size of 0.5" in text


def test_text_values(fixed_clock):
    mood = statebits.Statebit(identity="user_mood", initial_value="neutral")
    mood.transition("happy", "Got good news")
    mood.transition("excited", "Won a prize", confidence=0.95)
    history = NLExplainer().explain_history(mood)
    assert history.startswith("user_mood went from 'neutral' to 'excited' over 2 transitions")
    assert "2 distinct values" in history
    assert "very high" in history
    transition = NLExplainer().explain_transition(mood)
    assert "change of" not in transition


def test_empty_history(fixed_clock):
    text = NLExplainer().explain_history(statebits.Statebit(identity="x", initial_value=3))
    assert text == "x has no recorded transitions; it holds its initial value 3."
    with pytest.raises(ValidationError, match="no transitions"):
        NLExplainer().explain_transition(statebits.Statebit(identity="x", initial_value=3))


def test_frames_pandas_and_polars():
    frame = history_frame([1.0, 2.0, 4.0], pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"), identity="f")
    from_pandas = NLExplainer().explain_history(frame)
    from_polars = NLExplainer().explain_history(pl.from_pandas(frame[["identity", "step", "timestamp", "from_value", "to_value", "reason", "confidence"]]))
    assert from_pandas.startswith("f went from 1 to 4 over 3 transitions")
    assert from_polars == from_pandas
    assert NLExplainer().explain_transitions(frame)[2].startswith("f changed from 2 to 4 at step 3")


def test_collection_frame_needs_identity():
    times = pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC")
    frame = pd.concat([history_frame([1.0, 2.0], times, identity="a"), history_frame([5.0, 6.0], times, identity="b")])
    with pytest.raises(ValidationError, match="identity="):
        NLExplainer().explain_history(frame)
    assert NLExplainer().explain_history(frame, identity="b").startswith("b went from")


def test_index_out_of_range(account):
    with pytest.raises(IndexError, match="out of range"):
        NLExplainer().explain_transition(account, 5)


def test_anomaly_pattern(account):
    result = AnomalyResult(
        is_anomaly=True, anomaly_score=12.5, threshold=8.0, contamination="auto", method="ecod", step=2,
        identity="checking", value=1450.0, features={"value": 1450.0, "rolling_z_50": -4.2},
    )
    text = NLExplainer().explain_pattern(result, account)
    assert text.startswith("Step 2 of checking is flagged as an anomaly: its score 12.5 is above the threshold 8")
    assert "4.2 standard deviations below the mean of the previous 50 transitions" in text
    assert text.endswith('The recorded reason was "ATM withdrawal".')


def test_cluster_and_prediction_patterns():
    explainer = NLExplainer()
    assert explainer.explain_pattern({"cluster": -1, "step": 4}) == "Step 4 is noise: it lies in no dense cluster."
    assert explainer.explain_pattern({"cluster": 2, "step": 4, "distance": 0.5}) == (
        "Step 4 belongs to cluster 2, 0.50 scaled units from the cluster's centre."
    )
    prediction = MLPrediction(predicted_value=359.8, confidence=0.93, interval=(358.9, 360.7), interval_level=0.9, model_type="lstm", identity="co2")
    assert explainer.explain_pattern(prediction) == (
        "The next value of co2 is predicted to be 359.8 by the lstm model (90% interval 358.9 to 360.7; confidence 0.93)."
    )


def test_scored_frame_pattern():
    times = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    frame = history_frame([1.0, 1.0, 9.0, 1.0], times).assign(anomaly_score=[0.1, 0.2, 5.0, 0.1], is_anomaly=[False, False, True, False])
    text = NLExplainer().explain_pattern(frame)
    assert text == "1 of 4 transitions (25.0%) are flagged as anomalies. The highest score, 5, is at step 3 of series (2024-01-01 02:00 UTC)."
    assert NLExplainer().explain_pattern(frame.assign(is_anomaly=False)) == "No anomalies among 4 transitions."


def test_unknown_pattern_rejected():
    with pytest.raises(ValidationError, match="cannot describe a int"):
        NLExplainer().explain_pattern(3)


def test_numbers_formatted_with_precision():
    assert NLExplainer(precision=3)._fmt(np.float64(3.14159)) == "3.14"
    assert NLExplainer()._fmt(float("nan")) == "NaN"


def test_needs_no_ml_dependency():
    code = (
        "import sys\n"
        "for name in ('torch', 'sklearn', 'pyod', 'shap'):\n"
        "    sys.modules[name] = None\n"
        "from statebits import Statebit\n"
        "from statebits.explain.nl import NLExplainer\n"
        "sb = Statebit(identity='a', initial_value=1.0)\n"
        "sb.transition(2.0, 'up')\n"
        "print(NLExplainer().explain_history(sb))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("a went from 1 to 2 over 1 transition")
