"""parse_json_strictly (service/http/request_body.py) parses with one decoder
made once: it must answer every body as json.loads with the same options made
afresh would (the way it parsed before), the same value or the same refusal."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.http.problems import Problem
from service.http.request_body import _no_duplicate_keys, _reject_constant, parse_json_strictly


def answer(raw: bytes) -> tuple[str, Any]:
    """The parsed body, or the refusal's detail."""
    try:
        return "parsed", parse_json_strictly(raw)
    except Problem as problem:
        return "refused", problem.detail


def reference(raw: bytes) -> tuple[str, Any]:
    """The answer when json.loads, with a decoder made for this one call, parses
    (and orjson's quick path, tests/api/test_quick_json.py, is not tried)."""
    import service.http.request_body as body

    made_once = body._DECODER
    body._DECODER = _AsJsonLoads()  # json.loads(text, **options) per call
    try:
        return "parsed", body._parse_with_the_standard_library(raw)
    except Problem as problem:
        return "refused", problem.detail
    finally:
        body._DECODER = made_once


class _AsJsonLoads:
    def decode(self, text: str) -> Any:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_reject_constant)


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    # NaN never equals itself; compare texts of parsed values instead.
    return json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8,
)
PIECES = st.sampled_from(['"a": 1, ', '{', '}', '[', ']', ',', ':', '"', '\\', '\\u',
                          'NaN', '-Infinity', 'Infinity', '1e999', '-0', '0x1', '"\\ud800"',
                          '\ufeff', ' ', '\n', 'null', 'tru', '1' * 4400, '\x00', '"a": 2'])


@st.composite
def bodies(draw: Any) -> bytes:
    text = json.dumps(draw(JSON_VALUES), allow_nan=True)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(PIECES) + text[at:]
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return raw


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=bodies())
def test_any_body_is_answered_as_json_loads_answers_it(raw):
    assert same(answer(raw), reference(raw))


def test_the_refusals_json_loads_words_itself_are_kept():
    for raw in (b"\xef\xbb\xbf{}", b"", b"{} x", b'{"a": 1, "a": 2}', b"[NaN]",
                b"1" * 4400, b'{"a": }'):
        assert answer(raw)[0] == "refused"
        assert answer(raw) == reference(raw)
    assert math.isinf(parse_json_strictly(b"1e999"))  # as json.loads: a float overflow is inf
