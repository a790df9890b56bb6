"""The user guide's examples from "Quick Start" to "Async Support", run as written."""

from __future__ import annotations

import asyncio

import pytest


def test_first_statebit_example(capsys):
    from statebits import Statebit

    account = Statebit(identity="checking", initial_value=1000.0)
    account.transition(1500.0, "Deposit received", confidence=1.0)
    account.transition(1450.0, "ATM withdrawal", confidence=1.0)
    print(f"Balance: ${account.value}")
    print(account.explain())

    out = capsys.readouterr().out
    assert "Balance: $1450.0" in out
    assert "ATM withdrawal" in out
    assert "Deposit received" in out
    assert "integrity verified" in out


def test_basic_usage_mood_example(capsys):
    from statebits import Statebit

    mood = Statebit(identity="user_mood", initial_value="neutral")
    mood.transition("happy", "Got good news")
    mood.transition("excited", "Won a prize", confidence=0.95)
    mood.transition("relaxed", "Meditation session", tags=["wellness", "scheduled"])
    current = mood.value
    for transition in mood.history:
        print(f"{transition.from_value} → {transition.to_value}")
        print(f"Reason: {transition.reason}")
        print(f"Confidence: {transition.confidence}")
    print(mood.explain())

    out = capsys.readouterr().out
    assert current == "relaxed"
    assert "neutral → happy" in out
    assert "happy → excited" in out
    assert "Confidence: 0.95" in out
    assert mood.history[-1].tags == ("wellness", "scheduled")


def test_account_management_example():
    from statebits import Statebit

    account = Statebit(identity="account_001", initial_value=1000.0)
    account.transition(1500.0, "Direct deposit salary", confidence=1.0, tags=["income", "payroll"])
    account.transition(1200.0, "Rent payment", confidence=1.0, tags=["expense", "recurring"])
    text = account.explain(depth=3)

    assert account.value == 1200.0
    assert "Rent payment" in text
    assert "Direct deposit salary" in text


def test_sensor_transition_with_all_parameters():
    from statebits import Statebit

    sensor = Statebit(identity="sensor", initial_value=20.0)
    sensor.transition(25.5, "Temperature reading")
    sensor.transition(
        new_value=25.5,
        reason="Ambient temperature sensor reading",
        confidence=0.9,
        tags=["sensor", "automated"],
        metadata={"location": "room_a", "source": "mqtt"},
    )
    last = sensor.history[-1]

    assert last.metadata == {"location": "room_a", "source": "mqtt"}
    assert last.confidence == 0.9
    assert last.tags == ("sensor", "automated")


def test_batch_transition_example():
    from statebits import Statebit

    statebit = Statebit(identity="batch", initial_value=-1)
    transitions = [{"new_value": i, "reason": f"Update {i}", "confidence": 0.9} for i in range(10)]
    statebit.batch_transition(transitions)

    assert len(statebit.history) == 10
    assert statebit.value == 9
    assert statebit.verify_integrity()


def test_confidence_levels_example():
    from statebits import ConfidenceLevel, Statebit

    sensor = Statebit(identity="sensor", initial_value=20.0)
    sensor.transition(25.0, "Sensor reading", confidence=ConfidenceLevel.HIGH)
    sensor.transition(26.0, "Predicted value", confidence=0.7)
    high_conf = sensor.get_transitions_by_confidence(0.8)

    assert [t.to_value for t in high_conf] == [25.0]
    assert high_conf[0].confidence == 0.8
    assert type(high_conf[0].confidence) is float


@pytest.mark.parametrize(
    ("name", "value"),
    [("VERY_LOW", 0.1), ("LOW", 0.3), ("MEDIUM", 0.6), ("HIGH", 0.8), ("VERY_HIGH", 0.95), ("CERTAIN", 1.0)],
)
def test_confidence_level_values(name, value):
    from statebits import ConfidenceLevel

    assert ConfidenceLevel[name] == value


def test_collections_example(capsys):
    from statebits import Statebit, StatebitsCollection

    temp_sensor = Statebit("temperature", 20.0)
    humidity_sensor = Statebit("humidity", 40.0)
    pressure_sensor = Statebit("pressure", 1013.0)
    temp_sensor.transition(21.0, "reading", confidence=0.9, tags=["sensor"])
    humidity_sensor.transition(42.0, "reading", confidence=0.7, tags=["sensor"])
    pressure_sensor.transition(1012.0, "reading", confidence=0.8)

    sensors = StatebitsCollection(name="IoT_Sensors")
    sensors.add(temp_sensor)
    sensors.add(humidity_sensor)
    sensors.add(pressure_sensor)
    stats = sensors.get_collection_statistics()
    print(f"Total transitions: {stats['total_transitions']}")
    print(f"Avg confidence: {stats['average_confidence']}")
    recent = sensors.get_recent_transitions(limit=10)

    assert stats["total_transitions"] == 3
    assert stats["average_confidence"] == pytest.approx(0.8)
    assert stats["tag_counts"] == {"sensor": 2}
    assert stats["transitions_per_identity"] == {"temperature": 1, "humidity": 1, "pressure": 1}
    assert [t.identity for t in recent] == ["pressure", "humidity", "temperature"]
    assert "Total transitions: 3" in capsys.readouterr().out


def test_fork_and_merge_example():
    from statebits import Statebit

    original = Statebit(identity="wallet", initial_value=500)
    original.transition(400, "Groceries")
    simulation = original.fork(reason="Testing withdrawal scenario")
    simulation.transition(100, "Simulated withdrawal")
    simulation.transition(80, "Simulated fee")

    assert original.value == 400
    merged = original.merge(simulation, strategy="latest")
    assert original.value == 80
    assert merged.metadata["merged_branch"] == simulation.branch
    assert original.verify_integrity()


def test_async_statebit_example(capsys):
    from statebits import AsyncStatebit

    async def main():
        mood = AsyncStatebit(identity="user_mood", initial_value="neutral")
        await mood.transition("happy", "Good news", confidence=0.9)
        await mood.transition("excited", "Won prize", confidence=0.95)
        print(f"Current: {mood.value}")
        return mood

    mood = asyncio.run(main())

    assert "Current: excited" in capsys.readouterr().out
    assert len(mood.history) == 2
