"""Fork and merge: shared history, strategies, previews and refusals."""

from __future__ import annotations

import pytest

from statebits import MergeError, Statebit, TickingClock, ValidationError, use_clock


@pytest.fixture
def account():
    with use_clock(TickingClock("2024-01-01", step="1min")):
        sb = Statebit("account", 100)
        sb.transition(150, "deposit", confidence=0.9)
        sb.transition(120, "fee", confidence=0.8)
        yield sb


def test_fork_shares_parent_history(account):
    fork = account.fork("what if")

    assert fork.value == 120
    assert fork.fork_point == 2
    assert fork.parent is account
    assert fork.history.base is account.history
    assert fork.history.own_len == 0
    assert [t.to_value for t in fork.history] == [150, 120]


def test_fork_from_past_step(account):
    fork = account.fork("replay", at=1)
    fork.transition(175, "larger deposit")

    assert fork.value == 175
    assert [t.to_value for t in fork.history] == [150, 175]
    assert account.value == 120
    assert fork.verify_integrity()


def test_fork_changes_leave_parent(account):
    fork = account.fork("sandbox")
    fork.transition(0, "drain")

    assert account.value == 120
    assert len(account.history) == 2
    assert fork.history[-1].branch == fork.branch
    assert fork.history[0].branch == "main"


@pytest.mark.parametrize("at", [-1, 3, "1", 1.0])
def test_fork_invalid_step(account, at):
    with pytest.raises(ValidationError, match="fork step"):
        account.fork("bad", at=at)


def test_fork_needs_reason(account):
    with pytest.raises(ValidationError, match="reason"):
        account.fork("")


def test_merge_latest_takes_newer(account):
    with use_clock(TickingClock("2024-02-01", step="1min")):
        fork = account.fork("scenario")
        fork.transition(80, "withdrawal")
        merged = account.merge(fork, strategy="latest")

    assert account.value == 80
    assert merged.tags == ("merge",)
    assert merged.caused_by[0].step == fork.history[-1].step
    assert account.verify_integrity()


def test_merge_latest_keeps_newer_target(account):
    with use_clock(TickingClock("2024-02-01", step="1min")):
        fork = account.fork("scenario")
        fork.transition(80, "withdrawal")
        account.transition(500, "later deposit")
        account.merge(fork, strategy="latest")

    assert account.value == 500


def test_merge_highest_confidence(account):
    with use_clock(TickingClock("2024-02-01", step="1min")):
        fork = account.fork("guess")
        fork.transition(999, "rumour", confidence=0.2)
        account.transition(130, "statement", confidence=0.95)
        account.merge(fork, strategy="highest_confidence")

    assert account.value == 130


def test_merge_custom_resolver(account):
    fork = account.fork("split")
    fork.transition(60, "half")
    account.transition(200, "income")
    account.merge(fork, strategy="custom", resolver=lambda ours, theirs: ours + theirs)

    assert account.value == 260


def test_merge_unknown_strategy_changes_nothing(account):
    fork = account.fork("x")
    fork.transition(1, "y")

    with pytest.raises(MergeError, match="unknown merge strategy 'newest'"):
        account.merge(fork, strategy="newest")
    assert len(account.history) == 2


def test_merge_custom_needs_resolver(account):
    fork = account.fork("x")
    fork.transition(1, "y")

    with pytest.raises(MergeError, match="resolver"):
        account.merge(fork, strategy="custom")


def test_merge_unrelated_refused(account):
    stranger = Statebit("account", 100)
    stranger.transition(150, "deposit", confidence=0.9)

    with pytest.raises(MergeError, match="unrelated"):
        account.merge(stranger)
    assert len(account.history) == 2


def test_merge_same_fork_twice_is_noop(account):
    fork = account.fork("x")
    fork.transition(1, "y")
    account.merge(fork)

    assert account.merge(fork) is None
    assert len(account.history) == 3


def test_second_fork_merges_against_current_head(account):
    with use_clock(TickingClock("2024-03-01", step="1min")):
        first = account.fork("first")
        second = account.fork("second")
        first.transition(10, "first change")
        second.transition(20, "second change")
        account.merge(first)
        preview = account.merge_preview(second)
        account.merge(second)

    assert preview.ours_value == 10
    assert preview.conflict
    assert account.value == 20
    assert account.verify_integrity()


def test_merge_preview_lists_changes(account):
    fork = account.fork("x")
    fork.transition(1, "a")
    fork.transition(2, "b")
    preview = account.merge_preview(fork)

    assert preview.base_step == 2
    assert [t.reason for t in preview.theirs] == ["a", "b"]
    assert preview.ours == []
    assert not preview.conflict
    assert len(account.history) == 2


def test_parent_merges_into_fork(account):
    fork = account.fork("x")
    account.transition(1000, "parent moves on")
    fork.merge(account)

    assert fork.value == 1000


def test_merge_into_itself_refused(account):
    with pytest.raises(MergeError, match="itself"):
        account.merge(account)


def test_fork_of_fork_merges_to_root(account):
    child = account.fork("child")
    grandchild = child.fork("grandchild")
    grandchild.transition(7, "deep change")
    account.merge(grandchild)

    assert account.value == 7
    assert grandchild.branch == f"{child.branch}.fork-1"
    assert grandchild.verify_integrity()


def test_branch_name_with_at_rejected(account):
    with pytest.raises(ValidationError, match="without '@'"):
        account.fork("bad name", branch="a@b")


def test_empty_merge_reason_rejected(account):
    fork = account.fork("x")
    fork.transition(1, "y")

    with pytest.raises(ValidationError, match="reason"):
        account.merge(fork, reason="")
    assert len(account.history) == 2
