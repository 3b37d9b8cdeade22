"""A recorder's memory of the clinic numbers it gave last (service/storage/ledger.py)."""

from __future__ import annotations

from service.storage.ledger import RecentClinicNumbers


def test_keeps_at_least_the_latest_numbers_and_forgets_the_oldest() -> None:
    numbers = RecentClinicNumbers(kept=250)
    for start in range(1, 2001, 100):  # chunks, as bulk ingest commits them
        numbers.keep([(position, "clinic-a" if position % 3 else "clinic-b", position * 7)
                      for position in range(start, start + 100)])
    remembered = numbers.of("clinic-a", range(1, 2001))
    # The last 250 always; never more than twice as many, the oldest first out.
    assert {p: p * 7 for p in range(1751, 2001) if p % 3}.items() <= remembered.items()
    assert len(numbers.of("clinic-a", range(1, 2001))) + len(
        numbers.of("clinic-b", range(1, 2001))) <= 500
    assert numbers.of("clinic-a", range(1, 1001)) == {}
    assert min(remembered) > 1000 and all(remembered[p] == p * 7 for p in remembered)
    assert numbers.of("clinic-b", [1800, 1801]) == {1800: 12600}


def test_a_chunk_larger_than_what_is_kept_leaves_its_last_rows() -> None:
    numbers = RecentClinicNumbers(kept=10)
    numbers.keep([(position, "c", position) for position in range(1, 101)])
    assert numbers.of("c", range(1, 101)) == {p: p for p in range(91, 101)}


def test_what_is_remembered_is_contiguous_up_to_the_last_kept() -> None:
    numbers = RecentClinicNumbers(kept=7)
    for position in range(1, 50):  # one save at a time
        numbers.keep([(position, "c", position)])
        remembered = numbers.of("c", range(1, position + 1))
        assert 7 <= len(remembered) <= 14 or len(remembered) == position
        assert sorted(remembered) == list(range(position - len(remembered) + 1, position + 1))


def test_another_clinics_position_is_not_answered() -> None:
    numbers = RecentClinicNumbers(kept=10)
    numbers.keep([(1, "a", 1), (2, "b", 1), (3, "a", 2)])
    assert numbers.of("a", [1, 2, 3]) == {1: 1, 3: 2}
    assert numbers.of("b", [1, 2, 3, 4]) == {2: 1}
