"""Tests of the frame verbs and of lazy imports of the ML extra."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

from statebits.core.errors import MissingDependencyError, ValidationError
from statebits.ml import verbs
from test_ml_support import NAB_SERIES, history_frame, load_nab, seattle_weather


@pytest.fixture(scope="module")
def weather_collection():
    weather = seattle_weather()
    frames = [
        history_frame(weather[column].to_numpy(), weather["date"], identity=column).head(200)
        for column in ("temp_max", "temp_min")
    ]
    return pd.concat(frames, ignore_index=True)


def test_anomalies_on_pandas_and_polars():
    frame = load_nab(NAB_SERIES[4])
    scored = verbs.anomalies(frame)
    assert {"anomaly_score", "is_anomaly"} <= set(scored.columns)
    assert scored.index.equals(frame.index)
    as_polars = verbs.anomalies(pl.from_pandas(frame[["identity", "step", "timestamp", "to_value"]]))
    assert isinstance(as_polars, pl.DataFrame)
    assert as_polars["is_anomaly"].sum() == scored["is_anomaly"].sum()


def test_anomalies_fit_on_reference_period():
    frame = load_nab(NAB_SERIES[4])
    scored = verbs.anomalies(frame, method="mad", fit_on=frame.head(300))
    assert len(scored) == len(frame)


def test_clusters_on_collection(weather_collection):
    clustered = verbs.clusters(weather_collection, n_clusters=2)
    assert set(clustered["cluster"]) == {0, 1}
    # One clusterer serves both identities: the warm cluster holds only daily
    # maxima, while the minima all fall in the cool cluster.
    means = clustered.groupby("cluster")["to_value"].mean()
    warm = clustered[clustered["cluster"] == means.idxmax()]
    cool = clustered[clustered["cluster"] == means.idxmin()]
    assert set(warm["identity"]) == {"temp_max"}
    assert (cool["identity"] == "temp_min").sum() >= 180


def test_forecast_each_identity(weather_collection):
    result = verbs.forecast(weather_collection, 3, model="lstm", sequence_length=7, epochs=2)
    assert len(result) == 6
    assert set(result["identity"]) == {"temp_max", "temp_min"}
    assert result.groupby("identity")["step"].apply(list).to_dict() == {"temp_max": [201, 202, 203], "temp_min": [201, 202, 203]}
    assert not result.isna().any().any()


def test_forecast_automl_names_model(weather_collection):
    temp_max_rows = weather_collection[weather_collection["identity"] == "temp_max"]
    result = verbs.forecast(pl.from_pandas(temp_max_rows[["identity", "step", "timestamp", "to_value"]]), 2, candidates=["last_value", "linear"])
    assert isinstance(result, pl.DataFrame)
    assert set(result["model"].to_list()) <= {"last_value", "linear"}


def test_forecast_rejects_unknown_model(weather_collection):
    with pytest.raises(ValidationError, match="model"):
        verbs.forecast(weather_collection, 1, model="arima")


def test_explain_sentences_per_transition(weather_collection):
    explained = verbs.explain(weather_collection)
    assert list(explained.columns) == ["identity", "step", "explanation"]
    assert len(explained) == len(weather_collection)
    first = explained[(explained["identity"] == "temp_min") & (explained["step"] == 2)]["explanation"].item()
    assert first.startswith("temp_min changed from 5 to 2.8 at step 2")


def test_explain_with_model_returns_shap(weather_collection):
    from statebits.ml import AnomalyDetector

    temp_max_rows = weather_collection[weather_collection["identity"] == "temp_max"]
    detector = AnomalyDetector().fit(temp_max_rows)
    values = verbs.explain(temp_max_rows, model=detector, max_rows=4)
    assert list(values.columns) == ["identity", "step", "value", "delta", "rolling_z_50", "rolling_std_50"]
    assert len(values) == 4


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_statebits_ml_loads_no_heavy_dependency():
    code = (
        "import sys, statebits, statebits.ml, statebits.ml.anomaly, statebits.ml.forecasting, "
        "statebits.ml.automl, statebits.ml.explainable, statebits.ml.verbs, statebits.explain.nl\n"
        "heavy = [m for m in ('torch', 'sklearn', 'pyod', 'shap') if m in sys.modules]\n"
        "print(heavy)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_torch_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import numpy as np, pandas as pd\n"
        "from statebits.ml import SequencePredictor\n"
        "frame = pd.DataFrame({'identity': 'a', 'step': range(1, 21), "
        "'timestamp': pd.date_range('2024-01-01', periods=20, tz='UTC'), 'to_value': np.arange(20.0)})\n"
        "try:\n"
        "    SequencePredictor().train(frame)\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "MissingDependencyError" in result.stdout
    assert "statebits[ml]" in result.stdout


def test_missing_dependency_error_is_import_error():
    assert issubclass(MissingDependencyError, ImportError)


def test_models_accept_real_collection(fixed_clock):
    import statebits
    from statebits.ml import AnomalyDetector, StateClusterer

    weather = seattle_weather().head(300)
    events = weather.melt(id_vars="date", value_vars=["temp_max", "temp_min"], var_name="identity", value_name="value")
    collection = statebits.from_events(events, identity="identity", value="value", time="date", reason="daily reading")
    detector = AnomalyDetector().fit(collection)
    assert detector.n_samples_fit_ == 600
    assert detector.detect(collection, identity="temp_min").step == 300
    clusterer = StateClusterer(n_clusters=2).fit(collection)
    assert sum(clusterer.get_all_clusters(collection).values()) == 600
    scored = verbs.anomalies(collection.to_pandas())
    assert scored.groupby("identity").size().to_dict() == {"temp_max": 300, "temp_min": 300}
