"""The event catalogue (domain/events.py) is docs/events.md's table of events, and the
aggregate, the projections and the HTTP schemas agree with it.

The catalogue is pinned against explicit lists written from docs/events.md; the
other parts are then checked against the catalogue: every posted type has a
command and every command a type, every type a projection rule, and each
type's HTTP data schema takes exactly the declared fields and enforces every
declared range, choice, length and pattern (the cases generated from the
catalogue, so a new field is tested as soon as it is declared).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from eventsourcing.domain import Aggregate
from marshmallow import ValidationError

from domain import errors
from domain.events import (
    CORRECTABLE_TYPES,
    EVENT_TYPES,
    PLAN_FIELDS,
    EventType,
    Field,
    Kind,
    check_correction,
    check_plan_force,
    check_some_plan_field_given,
)
from domain.personal import ERASURE_TYPE
from domain.programme import Programme
from projections import summaries
from service.http.schemas.events import DATA_LOADERS, DATA_SCHEMAS, EventEnvelopeSchema

# ---- the catalogue is docs/events.md -----------------------------------------

MODALITIES = ("mechanical_table", "decompression_mat", "inversion", "stretching_exercises")
PLAN = {
    "modality": ("choice", True, MODALITIES),
    "sessions_per_week": ("integer", True, (1, 35)),
    "minutes_per_session": ("integer", True, (1, 180)),
    "force_percent_body_weight": ("number", False, (0, 60)),
}

#: docs/events.md's "Events" table: each field as (kind, required, its range, choices,
#: maximum length or pattern, or an object's own fields).
DOMAIN_MD: dict[str, dict[str, tuple[Any, ...]]] = {
    "ProgrammeStarted": {
        "patient_ref": ("pattern", True, r"^[A-Za-z0-9._-]{1,64}$"),
        "condition": ("choice", True, ("low_back_pain", "sciatica", "disc_herniation",
                                       "spinal_stenosis", "other")),
        "setting": ("choice", True, ("in_office", "at_home", "hybrid")),
        "plan": ("object", True, PLAN),
        "baseline": ("object", True, {
            "pain_nrs": ("integer", True, (0, 10)),
            "odi_percent": ("integer", False, (0, 100)),
        }),
    },
    "SessionCompleted": {
        "modality": ("choice", True, MODALITIES),
        "duration_minutes": ("integer", True, (1, 240)),
        "supervised": ("boolean", True, None),
        "force_percent_body_weight": ("number", False, (0, 60)),
        "discomfort_nrs": ("integer", False, (0, 10)),
        # Since 0.2.0 (optional: sessions recorded before have none).
        "device": ("pattern", False, r"^[A-Za-z0-9][A-Za-z0-9 ._()/+-]{0,79}$"),
    },
    "SessionMissed": {
        "reason": ("choice", True, ("pain", "schedule", "equipment", "illness", "other")),
    },
    "PainReported": {
        "pain_nrs": ("integer", True, (0, 10)),
        "odi_percent": ("integer", False, (0, 100)),
        "sleep_quality_nrs": ("integer", False, (0, 10)),
        "context": ("choice", False, ("before_session", "after_session", "follow_up")),
        # Since 0.2.0, version 2 (older reports read as nrs_11).
        "scale": ("choice", False, ("nrs_11",)),
    },
    "PlanAdjusted": {
        **{name: (kind, False, bounds) for name, (kind, _, bounds) in PLAN.items()},
        "reason": ("text", True, 500),
    },
    "AdverseEventReported": {
        "severity": ("choice", True, ("mild", "moderate", "severe")),
        "description": ("text", True, 1000),
    },
    "ProgrammePaused": {
        "reason": ("text", True, 500),
    },
    "ProgrammeResumed": {},
    "ProgrammeDischarged": {
        "outcome": ("choice", True, ("goals_met", "improved", "no_change", "worsened",
                                     "referred", "dropped_out")),
        "notes": ("text", False, 2000),
    },
    "EntryCorrected": {
        "corrects": ("uuid", True, None),
        "data": ("corrected_data", True, None),
        "reason": ("text", True, 500),
    },
}


def summary(field: Field) -> tuple[Any, ...]:
    """A field as DOMAIN_MD writes it."""
    match field.kind:
        case Kind.INTEGER | Kind.NUMBER:
            detail: Any = (field.minimum, field.maximum)
        case Kind.CHOICE:
            detail = field.choices
        case Kind.TEXT:
            detail = field.max_length
        case Kind.PATTERN:
            detail = field.pattern
        case Kind.OBJECT:
            detail = {f.name: summary(f) for f in field.fields}
        case _:
            detail = None
    return (field.kind.value, field.required, detail)


def test_the_catalogue_declares_the_types_of_domain_md_in_its_order():
    assert list(EVENT_TYPES) == list(DOMAIN_MD)
    assert all(name == t.name for name, t in EVENT_TYPES.items())


@pytest.mark.parametrize("name", list(DOMAIN_MD))
def test_each_type_declares_the_fields_of_domain_md(name):
    declared = {f.name: summary(f) for f in EVENT_TYPES[name].fields}
    assert declared == DOMAIN_MD[name]
    # In docs/events.md's order too (it is the order errors and documents list them in).
    assert list(declared) == list(DOMAIN_MD[name])


def test_the_plan_fields_are_the_plan_of_domain_md():
    assert PLAN_FIELDS == tuple(PLAN)


def test_only_sessions_and_pain_reports_can_be_corrected():
    assert list(CORRECTABLE_TYPES) == ["SessionCompleted", "PainReported"]
    assert {n for n, t in EVENT_TYPES.items() if t.correctable} == set(CORRECTABLE_TYPES)


def personal_fields(fields: tuple[Field, ...], prefix: str) -> set[str]:
    found = set()
    for field in fields:
        if field.personal:
            found.add(f"{prefix}.{field.name}")
        found |= personal_fields(field.fields, f"{prefix}.{field.name}")
    return found


def test_the_personal_fields_are_the_patient_key_and_the_free_texts():
    found = set()
    for name, event_type in EVENT_TYPES.items():
        found |= personal_fields(event_type.fields, name)
    assert found == {
        "ProgrammeStarted.patient_ref",
        "PlanAdjusted.reason",
        "AdverseEventReported.description",
        "ProgrammePaused.reason",
        "ProgrammeDischarged.notes",
        "EntryCorrected.reason",
    }


def all_fields(fields: tuple[Field, ...]):
    for field in fields:
        yield field
        yield from all_fields(field.fields)


@pytest.mark.parametrize("event_type", EVENT_TYPES.values(), ids=list(EVENT_TYPES))
def test_every_type_and_field_says_in_one_line_what_it_means(event_type: EventType):
    for text in [event_type.description, *(f.description for f in all_fields(
            event_type.fields))]:
        assert text.strip() and "\n" not in text and text.endswith("."), text


@pytest.mark.parametrize(
    ("kind", "missing"),
    [(Kind.INTEGER, "minimum, maximum"), (Kind.NUMBER, "minimum, maximum"),
     (Kind.CHOICE, "choices"), (Kind.TEXT, "max_length"), (Kind.PATTERN, "pattern"),
     (Kind.OBJECT, "fields")],
)
def test_a_field_without_what_its_kind_needs_cannot_be_declared(kind, missing):
    with pytest.raises(ValueError, match=f"needs {missing}$"):
        Field("x", kind, "An x.")


# ---- the aggregate and the projections agree with the catalogue -------------


def test_every_posted_type_has_a_command_and_every_command_a_type():
    assert set(Programme.COMMANDS) == set(EVENT_TYPES) - {"ProgrammeStarted"}
    for command in Programme.COMMANDS.values():
        assert callable(getattr(Programme, command))


def test_the_aggregate_records_exactly_the_catalogue_types():
    library_bases = {"Event", "Created"}
    recorded = {name for name, value in vars(Programme).items()
                if isinstance(value, type) and issubclass(value, Aggregate.Event)}
    # Besides the catalogue's (posted by clinics), the erasure the service records itself.
    assert recorded - library_bases == set(EVENT_TYPES) | {ERASURE_TYPE}


def test_every_type_has_a_projection_rule_and_every_rule_a_type():
    assert "ProgrammeStarted" not in summaries._HANDLERS  # it makes the state
    assert set(summaries._HANDLERS) | {"ProgrammeStarted"} == set(EVENT_TYPES) | {ERASURE_TYPE}
    assert summaries.EVENT_TYPES == (*EVENT_TYPES, ERASURE_TYPE)


# ---- the shape rules, as the domain states them ------------------------------


@pytest.mark.parametrize(
    ("plan", "refused"),
    [
        ({"modality": "mechanical_table", "force_percent_body_weight": 0}, False),
        ({"modality": "mechanical_table"}, True),
        ({"modality": "mechanical_table", "force_percent_body_weight": None}, True),
        ({"modality": "decompression_mat"}, False),
        ({"modality": "inversion", "force_percent_body_weight": 10}, True),
    ],
)
def test_rule_5_force_exactly_on_the_table(plan, refused):
    if refused:
        with pytest.raises(errors.ForceNotAllowed):
            check_plan_force(plan)
    else:
        check_plan_force(plan)


def test_an_adjustment_gives_some_plan_field():
    check_some_plan_field_given({"minutes_per_session": 20, "reason": "x"})
    with pytest.raises(errors.PlanUnchanged):
        check_some_plan_field_given({"reason": "x"})


@pytest.mark.parametrize(
    ("corrected_type", "data", "error"),
    [
        ("PainReported", {"pain_nrs": 3}, None),
        ("PainReported", {"pain_nrs": 3, "odi_percent": 20, "sleep_quality_nrs": 4,
                          "context": "follow_up"}, None),
        ("PainReported", {"odi_percent": 20}, errors.CorrectionDoesNotFit),
        ("PainReported", {"pain_nrs": 3, "duration_minutes": 30}, errors.CorrectionDoesNotFit),
        ("SessionCompleted", {"modality": "inversion", "duration_minutes": 5,
                              "supervised": False}, None),
        ("SessionCompleted", {"pain_nrs": 3}, errors.CorrectionDoesNotFit),
        ("SessionCompleted", {"modality": "mechanical_table", "duration_minutes": 5,
                              "supervised": True}, errors.ForceNotAllowed),
    ],
)
def test_a_correction_is_the_full_data_of_the_corrected_type(corrected_type, data, error):
    if error is None:
        check_correction(corrected_type, data)
    else:
        with pytest.raises(error):
            check_correction(corrected_type, data)


# ---- the HTTP data schemas take exactly what the catalogue declares ----------

#: A valid value for each pattern field (a regex does not say which strings match).
PATTERN_EXAMPLES = {"patient_ref": "pt-0001", "device": "Example Mat (v2)"}


def example(fields: tuple[Field, ...]) -> dict[str, Any]:
    """Data with every declared field, each at a valid value (the table, with its force)."""
    data: dict[str, Any] = {}
    for field in fields:
        match field.kind:
            case Kind.INTEGER | Kind.NUMBER:
                data[field.name] = field.maximum
            case Kind.BOOLEAN:
                data[field.name] = True
            case Kind.CHOICE:
                data[field.name] = field.choices[0]
            case Kind.TEXT:
                data[field.name] = "as discussed"
            case Kind.PATTERN:
                data[field.name] = PATTERN_EXAMPLES[field.name]
            case Kind.UUID:
                data[field.name] = str(uuid.uuid4())
            case Kind.OBJECT:
                data[field.name] = example(field.fields)
            case Kind.CORRECTED_DATA:
                data[field.name] = {"pain_nrs": 3}
    return data


def walk(fields: tuple[Field, ...], path: tuple[str, ...] = ()):
    """Every field with its path in the data, nested objects' fields included."""
    for field in fields:
        yield (*path, field.name), field
        if field.kind is Kind.OBJECT:
            yield from walk(field.fields, (*path, field.name))


def checks_along(event_type: EventType, path: tuple[str, ...]):
    """The rules of the object that holds `path`, with that object's path."""
    checks, fields = event_type.checks, event_type.fields
    for name in path[:-1]:
        field = next(f for f in fields if f.name == name)
        checks, fields = field.checks, field.fields
    return checks, path[:-1]


def get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for name in path:
        data = data[name]
    return data


def with_value(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    get(changed, path[:-1])[path[-1]] = value
    return changed


def without(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    del get(changed, path[:-1])[path[-1]]
    return changed


def load_errors(type_name: str, data: dict[str, Any]) -> dict[str, Any]:
    try:
        DATA_LOADERS[type_name].load(data)
    except ValidationError as error:
        assert isinstance(error.messages, dict)
        return error.messages
    return {}


def errors_at(messages: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    for name in path:
        if not isinstance(messages, dict) or name not in messages:
            return []
        messages = messages[name]
    return messages if isinstance(messages, list) else []


def obeys_rules(event_type: EventType, path: tuple[str, ...], data: dict[str, Any]) -> bool:
    checks, holder = checks_along(event_type, path)
    try:
        for check in checks:
            check(get(data, holder))
    except errors.DomainRuleViolation:
        return False
    return True


FIELDS = [(name, path, field) for name, t in EVENT_TYPES.items()
          for path, field in walk(t.fields)]
FIELD_IDS = [f"{name}.{'.'.join(path)}" for name, path, _ in FIELDS]


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_the_data_schema_accepts_every_declared_field(name):
    data = example(EVENT_TYPES[name].fields)
    assert load_errors(name, data) == {}
    assert set(DATA_SCHEMAS[name]._declared_fields) == {f.name for f in EVENT_TYPES[name].fields}


@pytest.mark.parametrize(("name", "path", "field"), FIELDS, ids=FIELD_IDS)
def test_a_required_field_is_required_and_an_optional_one_optional(name, path, field):
    event_type = EVENT_TYPES[name]
    data = without(example(event_type.fields), path)
    messages = load_errors(name, data)
    if field.required:
        assert errors_at(messages, path) == ["Missing data for required field."]
    elif obeys_rules(event_type, path, data):
        assert messages == {}
    else:  # optional, but a rule over several fields wants it here (rule 5)
        assert errors_at(messages, path) == ["Required when modality is mechanical_table."]


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_an_unknown_field_is_refused_at_every_level(name):
    event_type = EVENT_TYPES[name]
    objects = [()] + [path for path, f in walk(event_type.fields) if f.kind is Kind.OBJECT]
    for holder in objects:
        data = with_value(example(event_type.fields), (*holder, "mood"), "fine")
        assert errors_at(load_errors(name, data), (*holder, "mood")) == ["Unknown field."]


def bad_values(field: Field) -> list[tuple[Any, str]]:
    """Values the field refuses, with the message for each."""
    match field.kind:
        case Kind.INTEGER | Kind.NUMBER:
            bounds = (f"Must be greater than or equal to {field.minimum} and less than or "
                      f"equal to {field.maximum}.")
            assert field.minimum is not None and field.maximum is not None
            wrong_type = [(str(field.minimum), f"Not a valid {field.kind.value}."),
                          (True, f"Not a valid {field.kind.value}.")]
            if field.kind is Kind.INTEGER:
                wrong_type.append((field.minimum + 0.5, "Not a valid integer."))
            return [(field.minimum - 1, bounds), (field.maximum + 1, bounds), *wrong_type]
        case Kind.BOOLEAN:
            return [("true", "Not a valid boolean (true or false)."),
                    (1, "Not a valid boolean (true or false).")]
        case Kind.CHOICE:
            return [(f"not_{field.choices[0]}", f"Must be one of: {', '.join(field.choices)}."),
                    (1, "Not a valid string.")]
        case Kind.TEXT:
            length = f"Length must be between 1 and {field.max_length}."
            assert field.max_length is not None
            return [("", length), ("x" * (field.max_length + 1), length),
                    ("a\x00b", "Control characters are not allowed.")]
        case Kind.PATTERN:
            return [("not valid!", f"Must match {field.pattern}.")]
        case Kind.UUID:
            return [("not-a-uuid", "Not a valid UUID.")]
        case Kind.OBJECT:
            return [("plan", "Invalid input type.")]
        case Kind.CORRECTED_DATA:
            return [("data", "Not a valid mapping type.")]
    raise AssertionError(f"no bad values for {field.kind}")


def good_values(field: Field) -> list[Any]:
    match field.kind:
        case Kind.INTEGER:
            return [field.minimum, field.maximum]
        case Kind.NUMBER:
            assert field.minimum is not None and field.maximum is not None
            return [field.minimum, field.maximum, (field.minimum + field.maximum) / 2]
        case Kind.BOOLEAN:
            return [True, False]
        case Kind.CHOICE:
            return list(field.choices)
        case Kind.TEXT:
            assert field.max_length is not None
            return ["x", "x" * field.max_length, "two lines\n\tand a tab"]
    return []


@pytest.mark.parametrize(("name", "path", "field"), FIELDS, ids=FIELD_IDS)
def test_each_declared_range_choice_length_and_pattern_is_enforced(name, path, field):
    event_type = EVENT_TYPES[name]
    data = example(event_type.fields)
    for value, message in [*bad_values(field), (None, "Field may not be null.")]:
        messages = load_errors(name, with_value(data, path, value))
        # An object that is not an object is refused as a whole.
        where = (*path, "_schema") if field.kind is Kind.OBJECT and value is not None else path
        assert errors_at(messages, where) == [message], value
    for value in good_values(field):
        messages = load_errors(name, with_value(data, path, value))
        assert errors_at(messages, path) == [], value
        if obeys_rules(event_type, path, with_value(data, path, value)):
            assert messages == {}, value


def test_the_envelope_takes_exactly_the_catalogue_types():
    assert list(DATA_SCHEMAS) == list(EVENT_TYPES)
    envelope = EventEnvelopeSchema()
    assert envelope.fields["type"].validate.choices == list(EVENT_TYPES)  # type: ignore[union-attr]


# ---- the rules over several fields, worded for integrators ---------------------


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("SessionCompleted", {"modality": "decompression_mat", "duration_minutes": 10,
                              "supervised": False, "force_percent_body_weight": 5},
         {"force_percent_body_weight": ["Only allowed when modality is mechanical_table."]}),
        ("SessionCompleted", {"modality": "mechanical_table", "duration_minutes": 10,
                              "supervised": True},
         {"force_percent_body_weight": ["Required when modality is mechanical_table."]}),
        ("ProgrammeStarted", {**example(EVENT_TYPES["ProgrammeStarted"].fields),
                              "plan": {"modality": "inversion", "sessions_per_week": 3,
                                       "minutes_per_session": 5,
                                       "force_percent_body_weight": 5}},
         {"plan": {"force_percent_body_weight": [
             "Only allowed when modality is mechanical_table."]}}),
        ("PlanAdjusted", {"reason": "nothing else"},
         {"_schema": ["Give at least one plan field to change."]}),
        # Force without a modality is the aggregate's to judge (it knows the plan).
        ("PlanAdjusted", {"force_percent_body_weight": 5, "reason": "stronger"}, {}),
    ],
)
def test_the_catalogue_checks_are_field_errors(name, data, expected):
    assert load_errors(name, data) == expected


@pytest.mark.parametrize(
    ("corrected", "expected"),
    [
        ({"pain_nrs": 11}, {"data": {"pain_nrs": [
            "Must be greater than or equal to 0 and less than or equal to 10."]}}),
        # No pain_nrs: it claims to be a session, and is checked as one.
        ({}, {"data": {f: ["Missing data for required field."]
                       for f in ("modality", "duration_minutes", "supervised")}}),
        ({"pain_nrs": 3, "modality": "inversion"}, {"data": {"modality": ["Unknown field."]}}),
        ({"modality": "inversion", "duration_minutes": 5, "supervised": False,
          "force_percent_body_weight": 10},
         {"data": {"force_percent_body_weight": [
             "Only allowed when modality is mechanical_table."]}}),
    ],
)
def test_a_correction_s_data_is_loaded_as_the_type_it_claims_to_be(corrected, expected):
    data = {"corrects": str(uuid.uuid4()), "data": corrected, "reason": "typo"}
    assert load_errors("EntryCorrected", data) == expected


def test_a_loaded_correction_names_its_target_as_text_and_keeps_its_data_typed():
    target = uuid.uuid4()
    loaded = DATA_LOADERS["EntryCorrected"].load(
        {"corrects": str(target).upper(), "data": {"modality": "mechanical_table",
                                                   "duration_minutes": 30,
                                                   "supervised": True,
                                                   "force_percent_body_weight": 25},
         "reason": "typo"})
    assert loaded == {"corrects": str(target), "reason": "typo", "data": {
        "modality": "mechanical_table", "duration_minutes": 30, "supervised": True,
        "force_percent_body_weight": 25.0}}
    assert isinstance(loaded["data"]["force_percent_body_weight"], float)
