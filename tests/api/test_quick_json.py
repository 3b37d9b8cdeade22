"""parse_json_strictly (service/http/request_body.py) tries orjson first and
keeps its value only when it must be the standard library's: every body must
be answered exactly as the standard library's path alone answers it (the same
value, of the same types, or the same refusal), hostile bodies included."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service.http.request_body as body
from service.http.problems import Problem


def quick_or_strict(raw: bytes) -> tuple[str, Any]:
    try:
        return "parsed", body.parse_json_strictly(raw)
    except Problem as problem:
        return "refused", problem.detail


def strict(raw: bytes) -> tuple[str, Any]:
    try:
        return "parsed", body._parse_with_the_standard_library(raw)
    except Problem as problem:
        return "refused", problem.detail


def typed(value: Any) -> Any:
    """`value` with every scalar's type spelled out (1, 1.0 and True differ; -0.0 is not 0.0)."""
    if isinstance(value, dict):
        return ("dict", [(typed(key), typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def assert_same(raw: bytes) -> None:
    quick, reference = quick_or_strict(raw), strict(raw)
    assert (quick[0], typed(quick[1])) == (reference[0], typed(reference[1])), raw


HOSTILE = [
    b"NaN", b"[Infinity]", b"-Infinity", b"[1e400]", b"-1e400", b"1e-400",
    b"1.7976931348623159e308",
    b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
    b"-9223372036854775809", b"123456789012345678901234567890", b"9223372036854775808.0",
    b"1e19", b"-0", b"-0.0", b"0.30000000000000004", b"4.9e-324", b"2.2250738585072011e-308",
    b'"\\ud800"', b'"\\udc00\\ud800"', b'"\\ud83d\\ude00"', b'"\\ud800\\u0041"',
    b'"\xed\xa0\x80"', b'"\xff"', b'"\xc0\xaf"', b"\xef\xbb\xbf{}", b'"a\x00"', b'"a\x1f"',
    b'"\x7f"', b" {} ", b"{}\x0c", b"\x0b{}", b"[1,]", b"01", b"+1", b"0x1", b"1.", b".5",
    b'"\\u0000"', b'"\\/"', b"", b" ", b"{} x", b"[1] [2]", b"tru", b"nul", b"// c\n{}",
    b'{"a": 1, "a": 2}', b'{"a":1,"b":{"a":2,"a":3}}', b'[{"a":1},{"a":1}]',
    b'{"a":"\\"","a":1}', b'{"a\\"":1,"a\\"":2}', b'{"\\u0061":1,"a":2}', b'{"a":"\\u0022","a":1}',
    b'{"a" :1,"a": 2}', b'{"x":"\\":","x":1}', b"[" * 32 + b"]" * 32, b"[" * 33 + b"]" * 33,
    b'{"a":' * 32 + b"1" + b"}" * 32, b'{"a":' * 33 + b"1" + b"}" * 33, b"[" * 2000 + b"]" * 2000,
    b'"' + b"1" * 4400 + b'"', b"1" * 4400, b"1" * 5000 + b".5", b'{"a":"\t"}', b'{"a":"\n"}',
    b'{"\xe2\x80\xa8":"\xf0\x9f\x98\x80"}', b'"\\x41"', b'"\\U0041"', b"[1,2", b'{"a"}', b"{,}",
    b"{}\x00", b"\x00{}", b"[1]\n", b'{"a":1}\r\n', b"\t[]", b"1E+2", b"1e-0", b"-", b"- 1",
    b"1.5E",
    b"[1 2]", b"[-]", b"[0.0e]", b"[1.e5]", b'{"a":1,}', b'{"a" 1}', b'{"":0,"":1}',
    b"[1e308, 1e-308, 5e-324, 2.5e-324]", b'"\\uD83D\\uDE00"', b'"\\uDFFF"', b'"\xf4\x90\x80\x80"',
    b'"\xf0\x80\x80\x80"', b'"\xe0\x80\x80"', b'"\\t\\b\\f\\n\\r\\/\\\\"',
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_bodies_are_answered_as_the_standard_library_answers_them(raw):
    assert_same(raw)


def parsed_quickly(raw: bytes) -> bool:
    """Whether parse_json_strictly took orjson's value (not the standard library's path)."""
    made_once = body._DECODER
    body._DECODER = None  # the standard library's path fails if it is taken
    try:
        body.parse_json_strictly(raw)
        return True
    except (AttributeError, Problem):  # (orjson's path refuses nothing itself)
        return False
    finally:
        body._DECODER = made_once


def test_a_plain_event_is_parsed_quickly():
    raw = json.dumps({"event_id": "e", "data": {"plan": {"n": 3, "f": 30.5}}, "x": [1, None, True]})
    assert parsed_quickly(raw.encode())


@pytest.mark.parametrize("raw", [b'{"a": 1, "a": 2}', b'{"a":"\\"","a":1}', b"1e19",
                                 b"[" * 33 + b"]" * 33, b"18446744073709551616", b"[NaN]"])
def test_what_orjson_may_read_otherwise_is_left_to_the_standard_library(raw):
    assert not parsed_quickly(raw)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=6) | st.sampled_from(['"', "\\", "\ud800", "a\"b", "\x00"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=3) | st.sampled_from(["a", "a\"", '"']), inner, max_size=4),
    max_leaves=12,
)
PIECES = st.sampled_from(['"a": 1, ', '"a": 1', '"a":"\\""', '{', '}', '[', ']', ',', ':', '"',
                          '\\', '\\u', '\\"', '\\u0022', 'NaN', '-Infinity', '1e999', '-0',
                          '0x1', '"\\ud800"', '\ufeff', ' ', '\n', 'null', 'tru', '1' * 25,
                          '9' * 19, '\x00', '"a": 2', '.5', 'e400', '[' * 33, ']' * 33])


@st.composite
def bodies(draw: Any) -> bytes:
    value = draw(JSON_VALUES)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), allow_nan=True,
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")])))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(PIECES) + text[at:]
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0 and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return raw


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=bodies())
def test_any_body_is_answered_as_the_standard_library_answers_it(raw):
    assert_same(raw)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(number=st.floats(allow_nan=False, allow_infinity=False) | st.integers())
def test_numbers_are_read_as_the_standard_library_reads_them(number):
    for text in (repr(number), json.dumps(number), f"{number}".upper(), f"{number:e}"):
        if not math.isfinite(float(number)) if isinstance(number, float) else False:
            continue
        assert_same(text.encode())
        assert_same(f'{{"n": {text}}}'.encode())


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
                          fullmatch=True))
def test_number_texts_are_read_as_the_standard_library_reads_them(text):
    assert_same(text.encode())
    assert_same(f'[{text}, {{"n": {text}}}]'.encode())
