"""The event catalogue: every event type a programme records, declared once.

Each `EventType` says what its `data` holds (the `Field`s of docs/events.md, with
their ranges, vocabularies and patterns), what it means to an integrator,
whether a later EntryCorrected may replace its data, and the rules over
several of its fields together (`checks`). The HTTP data schemas are
generated from these declarations; the aggregate's commands and the
projections' handlers are checked against them by tests
(tests/domain/test_event_catalogue.py). Adding a field or a type is one edit
here, plus its command, its projection rule and tests.

The shape rules that both the HTTP validation and the aggregate apply are
written here once: the plan fields, rule 5 (`check_plan_force`), a plan
adjustment giving at least one plan field, and what a correction's data must
be (`check_correction`). They raise the domain's own errors; the HTTP layer
words them for integrators.

Pure Python: no Flask, no marshmallow, no SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from domain import errors
from domain.vocabulary import (
    CONDITIONS,
    MISSED_REASONS,
    MODALITIES,
    OUTCOMES,
    PAIN_CONTEXTS,
    PAIN_SCALES,
    SETTINGS,
    SEVERITIES,
)


class Kind(StrEnum):
    """What a field's value is, as JSON."""

    INTEGER = "integer"  # an integer from minimum to maximum
    NUMBER = "number"  # a finite number (integer or decimal) from minimum to maximum
    BOOLEAN = "boolean"  # true or false
    CHOICE = "choice"  # one word of `choices`
    TEXT = "text"  # free text, 1 to max_length characters
    PATTERN = "pattern"  # a string matching `pattern` (an identifier or key)
    UUID = "uuid"  # a UUID, as text
    OBJECT = "object"  # an object of the nested `fields`
    CORRECTED_DATA = "corrected_data"  # the full data of a correctable event type


#: A rule over several fields of one object; raises a DomainRuleViolation.
Check = Callable[[Mapping[str, Any]], None]

#: What each kind needs declared besides its name and description.
_NEEDS: dict[Kind, tuple[str, ...]] = {
    Kind.INTEGER: ("minimum", "maximum"),
    Kind.NUMBER: ("minimum", "maximum"),
    Kind.CHOICE: ("choices",),
    Kind.TEXT: ("max_length",),
    Kind.PATTERN: ("pattern",),
    Kind.OBJECT: ("fields",),
}


@dataclass(frozen=True)
class Field:
    """One field of an event's data (or of an object inside it)."""

    name: str
    kind: Kind
    description: str
    required: bool = True
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    max_length: int | None = None
    #: An object's own fields.
    fields: tuple[Field, ...] = ()
    #: An object's rules over several of its fields.
    checks: tuple[Check, ...] = ()
    #: Says something about the patient: an identifier or free text.
    personal: bool = False

    def __post_init__(self) -> None:
        missing = [a for a in _NEEDS.get(self.kind, ()) if getattr(self, a) in (None, ())]
        if missing:
            raise ValueError(f"{self.kind} field {self.name} needs {', '.join(missing)}")

    def optional(self) -> Field:
        """The same field, not required."""
        return replace(self, required=False)


@dataclass(frozen=True)
class EventType:
    """One type of event a programme records: its meaning and its data."""

    name: str
    description: str
    fields: tuple[Field, ...]
    #: A later EntryCorrected may replace this event's data.
    correctable: bool = False
    #: Rules over several fields of the data, raising the domain's errors.
    checks: tuple[Check, ...] = ()
    #: The schema version events of this type are recorded under now; the aggregate's
    #: event class has the same `class_version` and the upcasters from older ones.
    version: int = 1
    #: What changed, release by release: how events recorded earlier are read.
    changes: tuple[str, ...] = ()

    @property
    def required(self) -> frozenset[str]:
        """The names of the fields its data must have."""
        return frozenset(f.name for f in self.fields if f.required)

    @property
    def optional(self) -> frozenset[str]:
        """The names of the fields its data may have."""
        return frozenset(f.name for f in self.fields if not f.required)


# ---- field constructors (the declarations below read as docs/events.md) ---


def integer(name: str, description: str, minimum: int, maximum: int, *,
            required: bool = True) -> Field:
    return Field(name, Kind.INTEGER, description, required, minimum=minimum, maximum=maximum)


def number(name: str, description: str, minimum: int | float, maximum: int | float, *,
           required: bool = True) -> Field:
    return Field(name, Kind.NUMBER, description, required, minimum=minimum, maximum=maximum)


def boolean(name: str, description: str, *, required: bool = True) -> Field:
    return Field(name, Kind.BOOLEAN, description, required)


def choice(name: str, description: str, choices: tuple[str, ...], *,
           required: bool = True) -> Field:
    return Field(name, Kind.CHOICE, description, required, choices=choices)


def text(name: str, description: str, max_length: int, *, required: bool = True,
         personal: bool = True) -> Field:
    # Free text may say anything about the patient: personal unless declared otherwise.
    return Field(name, Kind.TEXT, description, required, max_length=max_length,
                 personal=personal)


def pattern(name: str, description: str, regex: str, *, required: bool = True,
            personal: bool = False) -> Field:
    return Field(name, Kind.PATTERN, description, required, pattern=regex, personal=personal)


def uuid_field(name: str, description: str, *, required: bool = True) -> Field:
    return Field(name, Kind.UUID, description, required)


def object_of(name: str, description: str, fields: tuple[Field, ...], *,
              checks: tuple[Check, ...] = (), required: bool = True) -> Field:
    return Field(name, Kind.OBJECT, description, required, fields=fields, checks=checks)


def corrected_data(name: str, description: str) -> Field:
    return Field(name, Kind.CORRECTED_DATA, description)


def nrs(name: str, description: str, *, required: bool = True) -> Field:
    """A score on a 0-10 numeric rating scale."""
    return integer(name, description, 0, 10, required=required)


# ---- the plan and rule 5 --------------------------------------------------

MODALITY = choice(
    "modality",
    "The kind of traction: a mechanical table in the clinic, a decompression mat at home, "
    "an inversion table, or stretching exercises.",
    MODALITIES,
)
FORCE = number(
    "force_percent_body_weight",
    "Traction force as a percentage of the patient's body weight (0-60); given exactly "
    "when the modality is mechanical_table.",
    0, 60, required=False,
)
PLAN = (
    MODALITY,
    integer("sessions_per_week", "Prescribed sessions per week (a mat used 3 times a day "
            "is 21).", 1, 35),
    integer("minutes_per_session", "Prescribed length of each session, in minutes.", 1, 180),
    FORCE,
)

#: The plan fields, in the order they are shown.
PLAN_FIELDS: tuple[str, ...] = tuple(f.name for f in PLAN)


def check_plan_force(plan: Mapping[str, Any]) -> None:
    """Rule 5: force is present exactly when the modality is mechanical_table."""
    has_force = plan.get("force_percent_body_weight") is not None
    if (plan.get("modality") == "mechanical_table") != has_force:
        raise errors.ForceNotAllowed(
            "force_percent_body_weight is required for mechanical_table "
            "and not allowed for any other modality"
        )


def check_some_plan_field_given(data: Mapping[str, Any]) -> None:
    """Rule 5: a plan adjustment gives at least one plan field to change."""
    if not any(name in data for name in PLAN_FIELDS):
        raise errors.PlanUnchanged("the adjustment gives no plan field to change")


# ---- the catalogue, in the order of docs/events.md ------------------------

PAIN_NRS = nrs("pain_nrs", "Pain on the 0-10 numeric rating scale (0 no pain, 10 the worst "
               "imaginable).")
ODI_PERCENT = integer("odi_percent", "Oswestry Disability Index, 0-100 % (higher is more "
                      "disabled).", 0, 100, required=False)

_CATALOGUE = (
    EventType(
        "ProgrammeStarted",
        "A patient's traction programme begins: who, for what, where, the plan and the "
        "baseline. A programme's first event, once.",
        (
            pattern("patient_ref", "The clinic's pseudonymous key for the patient; never a "
                    "name or other direct identifier.", r"^[A-Za-z0-9._-]{1,64}$",
                    personal=True),
            choice("condition", "The diagnosis the traction treats.", CONDITIONS),
            choice("setting", "Where the sessions take place: in the clinic, at home, or "
                   "both.", SETTINGS),
            object_of("plan", "What is prescribed at the start.", PLAN,
                      checks=(check_plan_force,)),
            object_of("baseline", "The patient's state at the start, against which response "
                      "is measured.", (PAIN_NRS, ODI_PERCENT)),
        ),
    ),
    EventType(
        "SessionCompleted",
        "A traction session took place. Refused while the programme is paused.",
        (
            replace(MODALITY, description="The kind of traction used in this session."),
            integer("duration_minutes", "How long the session lasted, in minutes.", 1, 240),
            boolean("supervised", "Whether a clinician supervised the session."),
            FORCE,
            nrs("discomfort_nrs", "Discomfort during the session on the 0-10 numeric rating "
                "scale.", required=False),
            pattern("device", "The home device's make and model, for a session on a device "
                    "(e.g. a decompression mat): its model, never its serial number.",
                    r"^[A-Za-z0-9][A-Za-z0-9 ._()/+-]{0,79}$", required=False),
        ),
        correctable=True,
        checks=(check_plan_force,),
        changes=("0.2.0: the optional `device`; sessions recorded before have none, which "
                 "reads as not recorded (no new version: an optional field is read the same "
                 "by older releases, which ignore it, and newer ones, which see it absent).",),
    ),
    EventType(
        "SessionMissed",
        "A prescribed session did not take place. Refused while the programme is paused.",
        (choice("reason", "Why the session was missed.", MISSED_REASONS),),
    ),
    EventType(
        "PainReported",
        "The patient reported their pain, and optionally their disability and sleep.",
        (
            PAIN_NRS,
            ODI_PERCENT,
            nrs("sleep_quality_nrs", "Sleep quality on a 0-10 numeric rating scale.",
                required=False),
            choice("context", "When the report was taken: before or after a session, or at "
                   "a follow-up.", PAIN_CONTEXTS, required=False),
            choice("scale", "The scale the scores are on: nrs_11, the 0-10 numeric rating "
                   "scale (the default; the only one today).", PAIN_SCALES, required=False),
        ),
        correctable=True,
        version=2,
        changes=("0.2.0 (version 2): each report records its `scale`, nrs_11 when none is "
                 "posted; reports recorded before read as nrs_11, the scale they were on.",),
    ),
    EventType(
        "PlanAdjusted",
        "The prescription changed: give only the plan fields that change (at least one). "
        "Leaving mechanical_table drops the force; moving to it needs one.",
        (
            *(f.optional() for f in PLAN),
            text("reason", "Why the plan was changed (free text).", 500),
        ),
        checks=(check_some_plan_field_given,),
    ),
    EventType(
        "AdverseEventReported",
        "Something harmful happened to the patient; a severe one also pauses the programme.",
        (
            choice("severity", "How serious it was.", SEVERITIES),
            text("description", "What happened (free text).", 1000),
        ),
    ),
    EventType(
        "ProgrammePaused",
        "The programme is on hold: no sessions, completed or missed, until it is resumed.",
        (text("reason", "Why the programme is paused (free text).", 500),),
    ),
    EventType(
        "ProgrammeResumed",
        "A paused programme continues.",
        (),
    ),
    EventType(
        "ProgrammeDischarged",
        "The programme ended; afterwards only corrections are accepted.",
        (
            choice("outcome", "How the programme ended.", OUTCOMES),
            text("notes", "Closing remarks (free text).", 2000, required=False),
        ),
    ),
    EventType(
        "EntryCorrected",
        "An earlier SessionCompleted or PainReported was entered wrongly: every metric uses "
        "the corrected data; the original stays in the history.",
        (
            uuid_field("corrects", "The event_id of the SessionCompleted or PainReported of "
                       "this programme that is corrected."),
            corrected_data("data", "The full corrected data of the SessionCompleted or "
                           "PainReported named by `corrects`."),
            text("reason", "Why the entry was corrected (free text).", 500),
        ),
        version=2,
        changes=("0.2.0 (version 2): a correction of a pain report records the `scale` as a "
                 "pain report does; corrections recorded before read as nrs_11.",),
    ),
)

#: Every event type, by name, in the order of docs/events.md.
EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _CATALOGUE}

#: The types whose data a later EntryCorrected may replace.
CORRECTABLE_TYPES: dict[str, EventType] = {
    name: t for name, t in EVENT_TYPES.items() if t.correctable
}


def check_correction(corrected_type: str, data: Mapping[str, Any]) -> None:
    """A correction's data is the full data of the corrected event's type and obeys
    that type's rules (a correction replaces the whole data)."""
    event_type = CORRECTABLE_TYPES[corrected_type]
    given = set(data)
    if not event_type.required <= given or not given <= event_type.required | event_type.optional:
        raise errors.CorrectionDoesNotFit(
            f"the corrected event is a {corrected_type}; data must be its full data"
        )
    for check in event_type.checks:
        check(data)
