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
