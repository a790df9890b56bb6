"""The user guide's "ML & AI Integration" examples, run as written with top-level imports."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture
def statebit():
    from statebits import Statebit, TickingClock, use_clock

    with use_clock(TickingClock("2024-01-01", step="1h")):
        sb = Statebit("temperature", 20.0)
        for i in range(120):
            spike = 15.0 if i == 100 else 0.0
            sb.transition(20 + 5 * math.sin(i / 6) + spike, "hourly reading", confidence=0.9)
    return sb


@pytest.mark.parametrize(
    "arguments",
    [
        {"model_type": "lstm", "hidden_size": 64, "num_layers": 2},
        {"model_type": "transformer", "d_model": 64, "nhead": 4, "num_layers": 2},
    ],
)
def test_sequence_predictor_example(statebit, arguments):
    from statebits import SequencePredictor

    predictor = SequencePredictor(**arguments)
    predictor.train(statebit, sequence_length=10, epochs=50)
    prediction = predictor.predict(statebit)

    assert math.isfinite(prediction.predicted_value)
    assert 0.0 <= prediction.confidence <= 1.0
    assert prediction.interval[0] <= prediction.predicted_value <= prediction.interval[1]


def test_anomaly_detection_example(statebit):
    from statebits import AnomalyDetector

    detector = AnomalyDetector(method="isolation_forest", contamination=0.1)
    detector.fit(statebit)
    result = detector.detect(statebit, transition_index=-1)
    spike = detector.detect(statebit, transition_index=100)

    assert isinstance(result.is_anomaly, bool)
    assert math.isfinite(result.anomaly_score)
    assert spike.anomaly_score > result.anomaly_score
    assert result.contamination == 0.1


def test_clustering_example(statebit):
    from statebits import StateClusterer

    clusterer = StateClusterer(method="kmeans", n_clusters=3)
    clusterer.fit(statebit)
    clusters = clusterer.get_all_clusters(statebit)
    cluster_info = clusterer.predict_cluster(statebit, transition_index=-1)

    assert sum(clusters.values()) == 120
    assert len(clusters) == 3
    assert cluster_info["cluster"] in clusters


def test_nl_explainer_needs_no_ml(statebit):
    from statebits import NLExplainer

    text = NLExplainer().explain_history(statebit)

    assert "temperature" in text
    assert "120 transitions" in text
