"""The OpenAPI document types each event type's data exactly as the catalogue
(domain/events.py) declares it: every type, every field's type, range,
vocabulary, pattern, description, and whether it is required.

Read from /openapi.json of the real app and compared with the catalogue
itself, so the document and the validation cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.events import CORRECTABLE_TYPES, EVENT_TYPES, Field, Kind
from service.http.app import create_app
from tests import builders as b
from tests.api.json_schema import misfits
from tests.stores import components_at, initialise

EVENTS_PATH = "/v1/clinics/{clinic_id}/programmes/{programme_id}/events"


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """/openapi.json of the real app (the document does not depend on the store)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('document')}/ledger.sqlite"
    initialise(url)
    components = components_at(url)
    try:
        yield create_app(components).test_client().get("/openapi.json").json
    finally:
        components.close()


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref`, or the single `allOf` apispec wraps a described reference in."""
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = schema["allOf"][0]
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return document["components"]["schemas"][name]
    return schema


def union_members(document: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """The envelopes of a discriminated union, by the type each carries."""
    union = document["components"]["schemas"][name]
    assert union["discriminator"]["propertyName"] == "type"
    mapping = union["discriminator"]["mapping"]
    assert [m["$ref"] for m in union["oneOf"]] == list(mapping.values())
    members = {}
    for event_type, reference in mapping.items():
        envelope = resolve(document, {"$ref": reference})
        assert envelope["properties"]["type"]["enum"] == [event_type]
        members[event_type] = envelope
    return members


def test_all_ten_event_types_are_in_both_unions(document):
    for union in ("Event", "EventPost"):
        members = union_members(document, union)
        assert len(members) == len(EVENT_TYPES) == 10
        assert list(members) == list(EVENT_TYPES)


def test_a_batch_holds_typed_events_and_a_single_post_may_carry_expected_version(document):
    schemas = document["components"]["schemas"]
    post = document["paths"][EVENTS_PATH]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"oneOf": [{"$ref": "#/components/schemas/EventBatch"},
                              {"$ref": "#/components/schemas/EventPost"}]}
    batch = schemas["EventBatch"]
    assert batch["properties"]["events"]["items"] == {"$ref": "#/components/schemas/Event"}
    assert (batch["properties"]["events"]["minItems"],
            batch["properties"]["events"]["maxItems"]) == (1, 500)
    for event_type, envelope in union_members(document, "Event").items():
        assert "expected_version" not in envelope["properties"], event_type
        assert envelope["additionalProperties"] is False
        assert sorted(envelope["required"]) == [
            "data", "event_id", "occurred_at", "recorded_by", "type"]
    for event_type, envelope in union_members(document, "EventPost").items():
        assert envelope["properties"]["expected_version"]["minimum"] == 0, event_type
        assert "expected_version" not in envelope["required"]
    assert "EventEnvelope" not in schemas  # the untyped envelope is not shown


def check_field(document: dict[str, Any], where: str, spec: Field,
                documented: dict[str, Any]) -> None:
    assert documented.get("description") == spec.description, where
    match spec.kind:
        case Kind.INTEGER | Kind.NUMBER:
            assert documented["type"] == ("integer" if spec.kind is Kind.INTEGER else "number")
            assert (documented["minimum"], documented["maximum"]) == (
                spec.minimum, spec.maximum), where
        case Kind.BOOLEAN:
            assert documented["type"] == "boolean", where
        case Kind.CHOICE:
            assert (documented["type"], documented["enum"]) == (
                "string", list(spec.choices)), where
        case Kind.TEXT:
            assert (documented["type"], documented["minLength"], documented["maxLength"]) == (
                "string", 1, spec.max_length), where
        case Kind.PATTERN:
            assert (documented["type"], documented["pattern"]) == (
                "string", spec.pattern), where
        case Kind.UUID:
            assert (documented["type"], documented["format"]) == ("string", "uuid"), where
        case Kind.OBJECT:
            check_object(document, where, spec.fields, resolve(document, documented))
        case Kind.CORRECTED_DATA:
            # One of the correctable types' own data schemas, as they are documented.
            assert documented["oneOf"] == [
                {"$ref": f"#/components/schemas/{name}Data"} for name in CORRECTABLE_TYPES
            ], where
        case _:
            pytest.fail(f"{where}: no check for {spec.kind} fields")


def check_object(document: dict[str, Any], where: str, declared: tuple[Field, ...],
                 documented: dict[str, Any]) -> None:
    assert documented["type"] == "object", where
    assert documented["additionalProperties"] is False, f"{where}: unknown fields are refused"
    assert list(documented.get("properties", {})) == [f.name for f in declared], where
    assert sorted(documented.get("required", [])) == sorted(
        f.name for f in declared if f.required), where
    for spec in declared:
        check_field(document, f"{where}.{spec.name}", spec,
                    documented["properties"][spec.name])


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_each_type_s_data_is_documented_as_the_catalogue_declares_it(document, event_type):
    declared = EVENT_TYPES[event_type]
    for union in ("Event", "EventPost"):
        envelope = union_members(document, union)[event_type]
        data = envelope["properties"]["data"]
        assert data["description"] == declared.description
        assert resolve(document, data) is document["components"]["schemas"][
            f"{event_type}Data"]
    check_object(document, event_type, declared.fields,
                 document["components"]["schemas"][f"{event_type}Data"])


def test_the_checks_compare_something():
    """Every kind of field the catalogue uses is covered by check_field."""
    kinds = set()

    def walk(declared: tuple[Field, ...]) -> None:
        for spec in declared:
            kinds.add(spec.kind)
            walk(spec.fields)

    for event_type in EVENT_TYPES.values():
        walk(event_type.fields)
    assert kinds == set(Kind)


def test_what_the_service_accepts_fits_the_document_and_what_it_refuses_does_not(document):
    """Each type's events as clinic systems post them fit `Event` (and posted alone,
    `EventPost`); a field out of its range, or a field of another type, does not."""
    session = b.session(1)
    accepted = [b.started(), session, b.missed(2), b.pain(4, 3, context="follow_up"),
                b.adjusted(4, sessions_per_week=2), b.adverse("severe", 5), b.paused(6),
                b.resumed(7),
                b.envelope("ProgrammeDischarged", b.discharge_data(notes="home now"), 9),
                b.corrected(session, 8, duration_minutes=45)]
    assert sorted({event["type"] for event in accepted}) == sorted(EVENT_TYPES)
    batch = {"$ref": "#/components/schemas/EventBatch"}
    single = {"$ref": "#/components/schemas/EventPost"}
    assert misfits(document, batch, {"events": accepted, "expected_version": 0}) == []
    for event in accepted:
        assert misfits(document, single, {**event, "expected_version": 3}) == [], event
    refused = [
        {**b.pain(11, 3)},
        {**b.pain(4, 3), "data": {"pain_nrs": 4, "duration_minutes": 30}},
        {**b.missed(2), "data": {"reason": "holiday"}},
        {**b.resumed(7), "data": {"reason": "x"}},
        {**b.session(1), "expected_version": 1},  # only beside a batch's events
    ]
    for event in refused:
        assert misfits(document, batch, {"events": [event]}), event
