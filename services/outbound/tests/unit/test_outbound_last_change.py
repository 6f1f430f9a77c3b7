""" "Last change wins" on the write side, field by field (PRODUCT.md rule 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from outbound.domain.customers import renamed_individual
from outbound.domain.last_change import Seen, Verdict, WrittenState, decide, last_seen

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def label(wanted: str, current: str, seen: Seen | None, *, changed: int, updated: int) -> Verdict:
    return decide("label", wanted, current, seen, changed_at=t(changed), updated_at=t(updated))


OLD = Seen({"label": "Old", "reference": "R"}, t(0))


def test_pennylane_already_holding_the_value_needs_no_write() -> None:
    assert label("A", "A", OLD, changed=5, updated=9) is Verdict.SAME


def test_a_stockpit_change_pennylane_did_not_touch_is_written_whenever_pennylane_changed() -> None:
    # A price edit after the rename bumps updated_at, but the label is still the one Stockpit saw.
    assert label("A", "Old", OLD, changed=5, updated=9) is Verdict.WRITE


def test_stockpit_renamed_then_pennylane_renamed_later_keeps_pennylane() -> None:
    assert label("A", "B", OLD, changed=5, updated=9) is Verdict.KEEP


def test_pennylane_renamed_then_stockpit_renamed_later_writes_stockpit() -> None:
    assert label("A", "B", OLD, changed=9, updated=5) is Verdict.WRITE


def test_a_field_stockpit_did_not_change_keeps_pennylane_whatever_the_times() -> None:
    assert label("Old", "B", OLD, changed=9, updated=5) is Verdict.KEEP


def test_without_anything_known_the_times_decide() -> None:
    assert label("A", "B", None, changed=5, updated=9) is Verdict.KEEP
    assert label("A", "B", None, changed=9, updated=5) is Verdict.WRITE


def test_a_field_the_state_does_not_hold_is_decided_by_the_times() -> None:
    seen = Seen({"reference": "R"}, t(0))
    assert label("A", "B", seen, changed=5, updated=9) is Verdict.KEEP


def test_two_stockpit_renames_sent_late_both_reach_pennylane() -> None:
    # A1 (minute 1) and A2 (minute 2) waited; A1 was written at minute 8 (our own write): A2 is
    # newer than Stockpit's base, and Pennylane still holds what we wrote, so A2 goes out.
    ours = Seen({"label": "A1", "reference": "R"}, t(8))
    seen = last_seen(OLD, ours)
    assert seen is ours
    assert label("A2", "A1", seen, changed=2, updated=8) is Verdict.WRITE


def test_a_revert_in_stockpit_after_our_write_is_written() -> None:
    ours = Seen({"label": "A1", "reference": "R"}, t(8))
    assert label("Old", "A1", last_seen(OLD, ours), changed=9, updated=8) is Verdict.WRITE


def test_a_pennylane_rename_after_our_write_wins_over_an_older_stockpit_change() -> None:
    ours = Seen({"label": "A1", "reference": "R"}, t(8))
    assert label("A2", "B", last_seen(OLD, ours), changed=2, updated=9) is Verdict.KEEP


@pytest.mark.parametrize(
    ("base_at", "ours_at", "expected"),
    [(5, 8, "ours"), (9, 8, "base"), (None, 8, "ours"), (5, None, "base")],
)
def test_the_later_of_base_and_our_write_is_the_last_known_state(
    base_at: int | None, ours_at: int | None, expected: str
) -> None:
    base = Seen({"label": "base"}, None if base_at is None else t(base_at))
    ours = Seen({"label": "ours"}, None if ours_at is None else t(ours_at))
    seen = last_seen(base, ours)
    assert seen is not None
    assert seen.fields["label"] == expected
    assert last_seen(None, ours) is ours
    assert last_seen(base, None) is base
    assert last_seen(None, None) is None


def test_written_state_round_trips_through_json() -> None:
    state = WrittenState(7, Seen({"label": "A", "reference": None}, t(3)))
    assert WrittenState.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jean Pierre Martin", ("Jean Pierre", "Martin")),  # unchanged: parts kept as they are
        ("Jean  Pierre  Martin ", ("Jean Pierre", "Martin")),  # spacing aside
        ("Jean Pierre Dupont", ("Jean Pierre", "Dupont")),  # same first name
        ("Marie Martin", ("Marie", "Martin")),  # same last name
        ("Paul Louis Durand", ("Paul", "Louis Durand")),  # wholly new: split at the first space
        ("Cher", ("Jean Pierre", "Cher")),  # one word: the last name
    ],
)
def test_an_individual_keeps_pennylane_first_and_last_names(
    name: str, expected: tuple[str, str]
) -> None:
    assert renamed_individual(name, "Jean Pierre", "Martin") == expected
