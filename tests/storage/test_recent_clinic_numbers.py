"""A recorder's memory of the clinic numbers it gave last (service/storage/ledger.py)."""

from __future__ import annotations

from service.storage.ledger import RecentClinicNumbers


def test_keeps_the_latest_numbers_oldest_first_out() -> None:
    numbers = RecentClinicNumbers(kept=250)
    for start in range(1, 2001, 100):  # chunks, as bulk ingest commits them
        numbers.keep([(position, "clinic-a" if position % 3 else "clinic-b", position * 7)
                      for position in range(start, start + 100)])
    assert numbers.of("clinic-a", range(1, 1751)) == {}
    remembered = numbers.of("clinic-a", range(1, 2001))
    assert remembered == {p: p * 7 for p in range(1751, 2001) if p % 3}
    assert numbers.of("clinic-b", [1800, 1801]) == {1800: 12600}


def test_a_chunk_larger_than_what_is_kept_leaves_its_last_rows() -> None:
    numbers = RecentClinicNumbers(kept=10)
    numbers.keep([(position, "c", position) for position in range(1, 101)])
    assert numbers.of("c", range(1, 101)) == {p: p for p in range(91, 101)}
