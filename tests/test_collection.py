"""StatebitsCollection membership, statistics, queries and causal graph."""

from __future__ import annotations

import pytest

from statebits import Statebit, StatebitsCollection, TickingClock, ValidationError, use_clock


@pytest.fixture
def sensors():
    with use_clock(TickingClock("2024-01-01", step="1min")):
        temp = Statebit("temperature", 20.0)
        humid = Statebit("humidity", 40.0)
        temp.transition(21.0, "reading", confidence=0.9, tags=["sensor", "auto"])
        humid.transition(41.0, "reading", confidence=0.5, tags=["sensor"])
        temp.transition(22.0, "manual", confidence=1.0, tags=["manual"], caused_by=humid.history[-1])
    return StatebitsCollection("iot", [temp, humid])


def test_membership_by_key_and_object(sensors):
    assert "temperature" in sensors
    assert sensors["temperature"] in sensors
    assert Statebit("temperature", 0) not in sensors
    assert len(sensors) == 2
    assert sensors.keys() == ["temperature", "humidity"]


def test_duplicate_key_rejected(sensors):
    with pytest.raises(ValidationError, match="already contains"):
        sensors.add(Statebit("temperature", 0))
    assert len(sensors) == 2


def test_non_statebit_rejected(sensors):
    with pytest.raises(ValidationError, match="expected a Statebit"):
        sensors.add("temperature")  # type: ignore[arg-type]


def test_remove_and_missing_key(sensors):
    removed = sensors.remove("humidity")

    assert removed.identity == "humidity"
    assert "humidity" not in sensors
    with pytest.raises(KeyError, match="humidity"):
        sensors.remove("humidity")
    with pytest.raises(KeyError, match="no statebit"):
        sensors["humidity"]
    assert sensors.get("humidity") is None


def test_statistics_fields(sensors):
    stats = sensors.get_collection_statistics()

    assert stats["total_transitions"] == 3
    assert stats["average_confidence"] == pytest.approx((0.9 + 0.5 + 1.0) / 3)
    assert stats["transitions_per_identity"] == {"temperature": 2, "humidity": 1}
    assert stats["tag_counts"] == {"sensor": 2, "auto": 1, "manual": 1}
    assert stats["time_span"]["seconds"] == 120.0


def test_statistics_of_empty_collection():
    stats = StatebitsCollection("empty").get_collection_statistics()

    assert stats["total_transitions"] == 0
    assert stats["average_confidence"] is None
    assert stats["time_span"] is None


def test_recent_transitions_newest_first(sensors):
    recent = sensors.get_recent_transitions(limit=2)

    assert [(t.identity, t.reason) for t in recent] == [("temperature", "manual"), ("humidity", "reading")]
    with pytest.raises(ValidationError, match="limit"):
        sensors.get_recent_transitions(limit=-1)


def test_queries_across_members(sensors):
    assert len(sensors.get_transitions_by_tag("sensor")) == 2
    assert [t.identity for t in sensors.get_transitions_by_confidence(0.8)] == ["temperature", "temperature"]
    assert len(sensors.query(lambda t: t.to_value > 21.5 and t.identity == "temperature")) == 1
    assert sensors.values_at("2024-01-01T00:02:30Z") == {"temperature": 21.0, "humidity": 40.0}


def test_causal_graph_edges(sensors):
    graph = sensors.causal_graph()

    assert graph.edges == [(("humidity", "main", 1), ("temperature", "main", 2))]
    assert graph.causes_of(("temperature", "main", 2)) == [("humidity", "main", 1)]
    assert "humidity#1" in graph.to_dot()


def test_fork_lives_beside_parent(sensors):
    fork = sensors["temperature"].fork("what if")
    sensors.add(fork)

    assert fork.key == "temperature@fork-1"
    assert len(sensors) == 3


def test_collection_integrity(sensors):
    assert sensors.verify_integrity()
    sensors["humidity"].history.confidences[0] = 0.99
    sensors["humidity"].history._cache.clear()

    assert not sensors.verify_integrity()
    assert sensors.integrity_reports()["humidity"].first_bad_step == 1


def test_causal_graph_counts_fork_links_once():
    rain = Statebit("rain", 0.0)
    level = Statebit("level", 10.0)
    rain.transition(5.0, "storm")
    level.transition(12.0, "runoff", caused_by=rain.history[-1])
    what_if = level.fork("what if the runoff doubles")
    what_if.transition(14.0, "doubled runoff", caused_by=rain.history[-1])
    level.merge(what_if, strategy="latest")

    graph = StatebitsCollection("basin", [rain, level, what_if]).causal_graph()

    assert len(graph) == 3
    assert graph.causes_of(("level", "main", 1)) == [("rain", "main", 1)]
    assert '"level@fork-1#2" -> "level#2"' in graph.to_dot()
    assert "level@fork-1 changed" in level.explain()
