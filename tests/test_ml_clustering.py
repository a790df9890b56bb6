"""Tests of StateClusterer on Seattle weather and edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import statebits
from statebits.core.errors import InsufficientDataError, NotFittedError, ValidationError
from statebits.ml.clustering import METHODS, StateClusterer
from statebits.ml.features import FeatureSpec
from test_ml_support import history_frame, seattle_weather

VALUE_ONLY = FeatureSpec(lags=(), windows=(), calendar=False, columns=("value",))


@pytest.fixture(scope="module")
def temp_max():
    weather = seattle_weather()
    return history_frame(weather["temp_max"].to_numpy(), weather["date"], identity="temp_max")


def test_kmeans_clusters_follow_seasons(temp_max):
    clusterer = StateClusterer(method="kmeans", n_clusters=3).fit(temp_max)
    coldest = int(clusterer.cluster_centers_["value"].idxmin())
    labels = clusterer.cluster_frame(temp_max)["cluster"].to_numpy()
    months = temp_max["timestamp"].dt.month.to_numpy()
    summer = np.isin(months, [7, 8])
    winter = np.isin(months, [12, 1])
    # The two warmer clusters split summer days by how much they vary, so
    # only the cold cluster is tied to a season.
    assert (labels[winter] == coldest).mean() > 0.9
    assert (labels[summer] != coldest).mean() > 0.95


def test_distribution_counts_every_transition(temp_max):
    clusterer = StateClusterer(method="kmeans", n_clusters=4).fit(temp_max)
    distribution = clusterer.get_all_clusters(temp_max)
    assert sorted(distribution) == [0, 1, 2, 3]
    assert sum(distribution.values()) == len(temp_max)
    assert clusterer.n_clusters_ == 4


@pytest.mark.parametrize("method", METHODS)
def test_every_method_labels_rows(method, temp_max):
    frame = temp_max.head(300)
    clusterer = StateClusterer(method=method, n_clusters=3, features=VALUE_ONLY).fit(frame)
    assert len(clusterer.labels_) == 300
    assert clusterer.n_clusters_ >= 1
    info = clusterer.predict_cluster(frame, transition_index=-1)
    # Refitted labels and predicted labels agree on a training row.
    assert info["cluster"] == clusterer.labels_[-1]


def test_dbscan_marks_far_rows_as_noise():
    values = np.r_[np.zeros(50), np.full(50, 10.0), 1000.0]
    frame = history_frame(values, pd.date_range("2024-01-01", periods=101, freq="h", tz="UTC"))
    clusterer = StateClusterer(method="dbscan", features=VALUE_ONLY, params={"eps": 0.5, "min_samples": 5}).fit(frame)
    assert clusterer.n_clusters_ == 2
    assert clusterer.get_all_clusters(frame)[-1] == 1
    assert clusterer.predict_cluster(frame, transition_index=-1)["cluster"] == -1


def test_cluster_count_clamped_with_warning():
    frame = history_frame([1.0, 1.0, 5.0, 5.0, 9.0], pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC"))
    with pytest.warns(UserWarning, match=r"`n_clusters`=10 exceeds .*using 3"):
        clusterer = StateClusterer(n_clusters=10, features=VALUE_ONLY).fit(frame)
    assert clusterer.n_clusters_ == 3


def test_min_samples_clamped_with_warning():
    frame = history_frame([1.0, 2.0, 3.0], pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC"))
    with pytest.warns(UserWarning, match="min_samples"):
        StateClusterer(method="dbscan", params={"min_samples": 10}).fit(frame)


def test_one_row_is_too_few():
    frame = history_frame([1.0], ["2024-01-01"])
    with pytest.raises(InsufficientDataError, match="at least 2 transitions, got 1"):
        StateClusterer().fit(frame)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_invalid_cluster_count(bad):
    with pytest.raises(ValidationError, match="n_clusters"):
        StateClusterer(n_clusters=bad).fit(history_frame([1.0, 2.0], ["2024-01-01", "2024-01-02"]))


def test_not_fitted(temp_max):
    with pytest.raises(NotFittedError):
        StateClusterer().get_all_clusters(temp_max)


def test_predict_cluster_fields(temp_max):
    clusterer = StateClusterer(n_clusters=3).fit(temp_max)
    info = clusterer.predict_cluster(temp_max, transition_index=10)
    assert info["step"] == 11
    assert info["identity"] == "temp_max"
    assert info["distance"] >= 0
    assert set(info["features"]) == set(clusterer.feature_names_in_)


def test_guide_example_with_statebit(fixed_clock):
    weather = seattle_weather()
    statebit = statebits.Statebit(identity="seattle_temp_max", initial_value=float(weather["temp_max"].iloc[0]))
    statebit.batch_transition(
        [{"new_value": float(v), "reason": "daily maximum"} for v in weather["temp_max"].iloc[1:400]]
    )
    clusterer = StateClusterer(method="kmeans", n_clusters=3)
    clusterer.fit(statebit)
    clusters = clusterer.get_all_clusters(statebit)
    assert sum(clusters.values()) == 399
    assert len(clusters) == 3
    cluster_info = clusterer.predict_cluster(statebit, transition_index=-1)
    assert cluster_info["cluster"] in clusters
