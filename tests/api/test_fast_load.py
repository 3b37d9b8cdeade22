"""The fast path through the event schemas (service/http/schemas/fast_load.py)
answers exactly as marshmallow's own load: for every input, valid or broken, the
same loaded value or the same errors; and valid envelopes do take it."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from service.http.schemas import fast_load
from service.http.schemas.bulk import BulkLineSchema
from service.http.schemas.events import EventPostSchema
from tests import builders as b

POST, LINE = EventPostSchema(), BulkLineSchema()


def envelopes() -> list[dict[str, Any]]:
    """One valid envelope of every type, some with their optional fields."""
    session = b.session(1, discomfort_nrs=3)
    return [
        b.started(), b.started(modality="decompression_mat"), session,
        b.session(2, "inversion"),
        b.missed(2), b.pain(4, 2, odi_percent=30, context="follow_up"),
        b.adjusted(3, sessions_per_week=5), b.adjusted(3, modality="stretching_exercises"),
        b.adverse("severe", 3), b.paused(4), b.resumed(5), b.discharged(6, "goals_met"),
        b.corrected(session, 7, duration_minutes=45),
        b.corrected(b.pain(5, 2), 7, pain_nrs=4),
    ]


def outcome(schema: Any, value: Any, *, fast: bool) -> tuple[str, Any]:
    fast_load.ENABLED = fast
    try:
        return "loaded", schema.load(copy.deepcopy(value))
    except ValidationError as error:
        return "refused", error.messages
    finally:
        fast_load.ENABLED = True


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["", "2026-03-04T09:00:00Z", "2026-03-04", str(uuid.uuid4()),
                       "mechanical_table", "sciatica", "\x00", "x" * 600]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


@st.composite
def broken(draw: Any, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with a few of its values replaced, removed, or extra ones added."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(value)[1:] or [("extra",)]))
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(JSON_VALUES)
        elif isinstance(parent, dict | list):
            parent[path[-1]] = draw(JSON_VALUES)
    return value


def posts() -> list[Any]:
    single = [dict(e) for e in envelopes()]
    return [*single, {"events": envelopes()[2:6], "expected_version": 1},
            {**envelopes()[2], "expected_version": 0}]


def lines() -> list[dict[str, Any]]:
    return [{**e, "programme_id": str(uuid.uuid4())} for e in envelopes()] + [
        {**envelopes()[4], "programme_id": str(uuid.uuid4()), "expected_version": 3}]


@pytest.mark.parametrize("schema, value", [(POST, v) for v in posts()]
                         + [(LINE, v) for v in lines()])
def test_a_valid_input_takes_the_fast_path_to_the_same_value(schema, value):
    loader = fast_load.compiled(schema)
    assert loader is not None
    loader(copy.deepcopy(value))  # no Unsure: the fast path vouched for it
    assert outcome(schema, value, fast=True) == outcome(schema, value, fast=False)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_input_is_answered_as_marshmallow_answers_it(data):
    schema, base = data.draw(st.sampled_from([(POST, v) for v in posts()]
                                             + [(LINE, v) for v in lines()]))
    value = data.draw(broken(base))
    assert outcome(schema, value, fast=True) == outcome(schema, value, fast=False)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=JSON_VALUES)
def test_anything_at_all_is_answered_as_marshmallow_answers_it(value):
    for schema in (POST, LINE):
        assert outcome(schema, value, fast=True) == outcome(schema, value, fast=False)


def bounds(schema: Any, found: set | None = None) -> set:
    """Every bound of every Range and Length in `schema` and the schemas inside it."""
    from marshmallow import fields
    from marshmallow.validate import Length, Range

    from service.http.schemas.events import DATA_LOADERS
    found = set() if found is None else found
    for field in schema.load_fields.values():
        for check in field.validators:
            if isinstance(check, Range | Length):
                found.update(b for b in (check.min, check.max) if b is not None)
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            bounds(inner.schema, found)
    if schema is LINE:
        for loader in DATA_LOADERS.values():
            bounds(loader, found)
    return found


def edges(value: Any, limits: set) -> list[Any]:
    """Values next to `value` and to every bound: where an inlined check can be off by one."""
    near = [None, True, False, 0, -1, 1.5, [], {}, "", "x", "\x1f", "\t\n", "2026-02-30T09:00:00Z",
            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-03-04T09:00:00",
            "2026-03-04T09:00:00.5+23:59", "2026-03-04T09:00:00+24:00",
            "{12345678-1234-5678-1234-567812345678}", "urn:uuid:12345678123456781234567812345678",
            "1234_678-1234-5678-1234-567812345678", str(uuid.uuid4()).upper(),
            2**63 - 1, 2**63, 2**1023, 2**1024, 10**400, 1e308, -0.0]
    for bound in limits:
        near += [bound - 1, bound, bound + 1, float(bound), bound - 0.5, bound + 0.5]
        if isinstance(bound, int) and 0 <= bound < 2000:
            near += ["x" * (bound - 1), "x" * bound, "x" * (bound + 1)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        near += [value - 1, value + 1, float(value), -value]
    if isinstance(value, str):
        near += [value + " ", value[:-1], value.upper(), value + "\x00"]
    return near


@pytest.mark.parametrize("schema, value", [(POST, v) for v in posts()[:2] + posts()[-2:]]
                         + [(LINE, v) for v in lines()])
def test_every_value_at_every_bound_is_answered_as_marshmallow_answers_it(schema, value):
    limits = bounds(schema)
    for path in paths(value)[1:]:
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        for replacement in edges(parent[path[-1]], limits):
            changed = copy.deepcopy(value)
            target = changed
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = replacement
            assert outcome(schema, changed, fast=True) == outcome(schema, changed, fast=False), (
                path, replacement)


@settings(max_examples=3000, deadline=None)
@given(text=st.uuids().map(str) | st.text(alphabet="0123456789abcdefABCDEF-_+ {}:urniduU\t",
                                            min_size=30, max_size=44)
       | st.uuids().map(lambda u: f"{{{u}}}") | st.uuids().map(lambda u: f"urn:uuid:{u}")
       | st.uuids().map(lambda u: str(u).replace("-", "", 2) + "--"))
def test_a_uuid_is_read_as_uuid_reads_it(text):
    try:
        expected = uuid.UUID(text)
    except ValueError:
        with pytest.raises(fast_load.Unsure):
            fast_load._load_uuid(text)
        return
    loaded = fast_load._load_uuid(text)
    assert type(loaded) is uuid.UUID
    assert [getattr(loaded, slot) for slot in ("int", "is_safe")] == [
        expected.int, expected.is_safe]
    assert set(uuid.UUID.__slots__) <= {"int", "is_safe", "__weakref__"}  # nothing else to set
    assert loaded == expected and hash(loaded) == hash(expected) and str(loaded) == str(expected)
