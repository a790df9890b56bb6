"""Tests of the shared feature builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statebits
from statebits.core.errors import ValidationError
from statebits.ml.features import FeatureSpec, build_features
from test_ml_support import history_frame, load_nab


def naive_features(values, seconds, lags, windows):
    """Compute the features one row at a time, as the reference."""
    rows = []
    for i, value in enumerate(values):
        row = {"value": value}
        row["delta"] = value - values[i - 1] if i else 0.0
        row["time_since_previous"] = seconds[i] - seconds[i - 1] if i else 0.0
        row["rate"] = row["delta"] / row["time_since_previous"] if row["time_since_previous"] > 0 else 0.0
        for k in lags:
            row[f"lag_{k}"] = values[i - k] if i >= k else values[0]
        for w in windows:
            before = values[max(0, i - w) : i]
            mean = float(np.mean(before)) if len(before) else value
            std = float(np.std(before, ddof=1)) if len(before) >= 2 else 0.0
            row[f"rolling_mean_{w}"] = mean
            row[f"rolling_std_{w}"] = std
            # pandas' online rolling variance keeps rounding residue of every
            # value that passed through the window, so a spread far below the
            # largest earlier value is not resolvable and is left out (NaN).
            resolvable = std > 1e-4 * max(1.0, float(np.max(np.abs(values[: i + 1]))))
            if resolvable:
                row[f"rolling_z_{w}"] = (value - mean) / std
            elif std == 0:
                row[f"rolling_z_{w}"] = 0.0
            else:
                row[f"rolling_z_{w}"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
    gaps=st.lists(st.integers(0, 3600), min_size=40, max_size=40),
)
def test_features_match_row_by_row_reference(values, gaps):
    seconds = np.cumsum(gaps[: len(values)]).astype(float)
    times = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    frame = history_frame(np.asarray(values), times)
    built = build_features(frame.drop(columns="from_value"), lags=(1, 3), windows=(2, 5), calendar=False).reset_index(drop=True)
    expected = naive_features(values, seconds, (1, 3), (2, 5))
    # Absolute tolerance for the same rounding residue, relative to the largest value.
    residue = 1e-6 + 1e-8 * float(np.max(np.abs(values)))
    for column in expected.columns:
        reference = expected[column].to_numpy()
        known = ~np.isnan(reference)
        rtol = 1e-4 if column.startswith("rolling_z_") else 1e-9
        np.testing.assert_allclose(built[column].to_numpy()[known], reference[known], rtol=rtol, atol=residue, err_msg=column)


def test_features_identities_do_not_leak():
    times = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    first = history_frame([1.0, 2.0, 3.0, 4.0], times, identity="a")
    second = history_frame([100.0, 90.0, 80.0, 70.0], times, identity="b")
    both = pd.concat([second, first], ignore_index=True)
    built = build_features(both, lags=(1,), windows=(3,), calendar=False)
    assert built.loc[("b", 1), "delta"] == 0.0
    assert built.loc[("b", 1), "lag_1"] == 100.0
    assert built.loc[("a", 2), "rolling_mean_3"] == 1.0
    assert built.loc[("b", 4), "rolling_mean_3"] == 90.0


def test_features_names_and_finite_on_nab():
    frame = load_nab("realKnownCause/nyc_taxi.csv")
    built = build_features(frame)
    assert list(built.columns) == list(FeatureSpec().names)
    assert {"value", "delta", "rate", "time_since_previous", "confidence", "hour", "day_of_week", "month"} <= set(built.columns)
    assert np.isfinite(built.to_numpy()).all()
    assert built["time_since_previous"].iloc[1:].eq(1800.0).all()


def test_features_calendar_parts_in_utc():
    times = ["2024-03-05T23:30:00+02:00"]
    built = build_features(history_frame([1.0], times), lags=(), windows=())
    assert built["hour"].iloc[0] == 21.0
    assert built["day_of_week"].iloc[0] == 1.0
    assert built["month"].iloc[0] == 3.0


def test_features_accept_polars_and_unsorted_rows():
    times = pd.date_range("2024-01-01", periods=5, freq="min", tz="UTC")
    frame = history_frame([5.0, 4.0, 3.0, 2.0, 1.0], times)
    shuffled = frame.sample(frac=1.0, random_state=1)
    from_polars = build_features(pl.from_pandas(frame[["identity", "step", "timestamp", "to_value"]]))
    from_pandas = build_features(shuffled)
    pd.testing.assert_frame_equal(from_polars, from_pandas)


def test_features_missing_values_carried_forward():
    times = pd.date_range("2024-01-01", periods=4, freq="min", tz="UTC")
    frame = history_frame(np.array([1.0, np.nan, 3.0, None], dtype=object), times)
    built = build_features(frame, lags=(), windows=(), calendar=False)
    assert built["value"].tolist() == [1.0, 1.0, 3.0, 3.0]


def test_features_reject_text_values():
    times = pd.date_range("2024-01-01", periods=2, freq="min", tz="UTC")
    frame = history_frame(np.array(["happy", "sad"], dtype=object), times)
    with pytest.raises(ValidationError, match="numeric values"):
        build_features(frame)


def test_features_booleans_become_numbers():
    times = pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC")
    built = build_features(history_frame(np.array([True, False, True]), times), lags=(), windows=())
    assert built["value"].tolist() == [1.0, 0.0, 1.0]


def test_features_missing_columns_listed():
    with pytest.raises(ValidationError, match=r"missing: \['step', 'timestamp'\]"):
        build_features(pd.DataFrame({"identity": ["a"], "to_value": [1.0]}))


def test_features_reject_non_frame():
    with pytest.raises(ValidationError, match="got list"):
        build_features([1, 2, 3])


def test_feature_spec_rejects_unknown_column():
    with pytest.raises(ValidationError, match="unknown feature names"):
        FeatureSpec(columns=("value", "nonsense"))


def test_feature_spec_rejects_bad_window():
    with pytest.raises(ValidationError, match="windows"):
        FeatureSpec(windows=(0,))


def test_features_from_statebit(fixed_clock):
    sb = statebits.Statebit(identity="sensor", initial_value=20.0)
    for value in (21.0, 23.0, 22.0):
        sb.transition(value, "reading", confidence=0.9)
    built = build_features(sb, lags=(1,), windows=(2,))
    assert built.index.get_level_values("step").tolist() == [1, 2, 3]
    # The first change is measured from the initial value.
    assert built["delta"].tolist() == [1.0, 2.0, -1.0]
    assert built["confidence"].tolist() == [0.9, 0.9, 0.9]
    assert built["time_since_previous"].iloc[1] > 0
