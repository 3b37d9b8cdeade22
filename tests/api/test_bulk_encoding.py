"""A bulk answer's receipt lines are written by orjson (encode_receipt_line,
service/http/bulk_ingest.py) where that gives the bytes the standard library's
compact, ASCII-only encoder gives; and by that encoder everywhere else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.http.bulk_ingest import encode, encode_receipt_line

TEXT = st.text() | st.sampled_from(["clinic-a", "\x7f", "\x00\x1f\n\t\"\\/", "é", "\u2028",
                                    "\ud800", "😀"])
INTEGERS = st.integers() | st.sampled_from([0, -1, 2**63 - 1, 2**64 - 1, 2**64, -(2**63) - 1])


@st.composite
def receipt_lines(draw: Any) -> dict[str, Any]:
    recorded = draw(st.lists(st.fixed_dictionaries({
        "event_id": TEXT, "type": TEXT, "version": INTEGERS, "position": INTEGERS}), max_size=4))
    return {"line": draw(INTEGERS), "status": draw(st.sampled_from([200, 201])),
            "receipt": {"programme_id": draw(TEXT), "clinic_id": draw(TEXT),
                        "version": draw(INTEGERS), "recorded": recorded}}


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=receipt_lines())
def test_a_receipt_line_is_the_standard_librarys_bytes(value):
    assert encode_receipt_line(value) == encode(value)


def test_a_plain_receipt_line():
    value = {"line": 7, "status": 201, "receipt": {
        "programme_id": "0001f5b6-0000-4000-8000-000000000000", "clinic_id": "clinic-a",
        "version": 2, "recorded": [{"event_id": "0001f5b6-0001-4000-8000-000000000000",
                                    "type": "PainReported", "version": 2, "position": 41}]}}
    assert encode_receipt_line(value) == encode(value) == (
        b'{"line":7,"status":201,"receipt":{"programme_id":"0001f5b6-0000-4000-8000-000000000000",'
        b'"clinic_id":"clinic-a","version":2,"recorded":[{"event_id":'
        b'"0001f5b6-0001-4000-8000-000000000000","type":"PainReported","version":2,'
        b'"position":41}]}}\n')
