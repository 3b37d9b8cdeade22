"""A posted FHIR transaction or batch Bundle, recorded as events by the normal path.

Each entry becomes an event envelope (service/fhir/intake.py), is validated by
the same schema as a post to the programme (service/http/schemas/events.py),
and is recorded by `Programmes.record_events`, so every rule and idempotency
holds as for any post.

- `transaction`: every entry is read and validated, and every programme it
  names found, before anything is recorded; any refusal answers one
  OperationOutcome and records nothing. Then each programme's entries are
  recorded together, atomically, as one batch post (all-or-nothing per
  programme). Should a rule refuse one programme's entries after another's
  were recorded, the answer is that refusal; the recorded ones stay, and a
  corrected re-send records only what is missing (each resource's
  identifier is its event's id).
- `batch`: each entry alone; each has its own status and, if refused, its own
  OperationOutcome, in a `batch-response`.
"""

from __future__ import annotations

import http
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from marshmallow import ValidationError

from domain import errors
from domain.application import EventEnvelope, Programmes, Receipt
from service.fhir import outcomes
from service.fhir.intake import EntryRefused, Intake, read_bundle, read_entry
from service.http.problems import Problem, field_errors, problem_for
from service.http.schemas.events import MAX_EVENTS_PER_POST, EventPostSchema

#: The most entries a Bundle may hold: as many as a batch post's events.
MAX_ENTRIES = MAX_EVENTS_PER_POST

_SCHEMA = EventPostSchema()


def status_line(status: int) -> str:
    return f"{status} {http.HTTPStatus(status).phrase}"


def refused(error: EntryRefused) -> Problem:
    return Problem(error.status, error.slug, http.HTTPStatus(error.status).phrase,
                   error.detail, expression=error.expression)


def envelope_of(intake: Intake) -> EventEnvelope:
    """The intake's envelope, validated as a post of it would be."""
    try:
        loaded = _SCHEMA.load({"events": [intake.envelope]})
    except ValidationError as error:
        found = field_errors(error.messages)
        detail = "; ".join(f"{e['pointer'].removeprefix('/events/0')}: {e['detail']}"
                           for e in found)
        raise EntryRefused(422, "validation-failed",
                           f"The {intake.resource_type} does not make a valid "
                           f"{intake.envelope['type']}: {detail}",
                           [f"Bundle.entry[{intake.index}].resource"]) from None
    return EventEnvelope(**loaded["events"][0])


def entry_answer(intake: Intake, receipt: Receipt) -> dict[str, Any]:
    return {"response": {
        "status": status_line(200 if receipt.replayed else 201),
        "location": f"{intake.resource_type}/{intake.event_id}",
        "etag": f'W/"{receipt.version}"',
    }}


def refusal_answer(problem: Problem) -> dict[str, Any]:
    return {"response": {"status": status_line(problem.status),
                         "outcome": outcomes.from_problem(problem.document())}}


def take_bundle(programmes: Programmes, clinic_id: str, body: Any) -> dict[str, Any]:
    """Record the Bundle's entries; its transaction-response or batch-response."""
    try:
        kind, entries = read_bundle(body, MAX_ENTRIES)
    except EntryRefused as error:
        raise refused(error) from None
    if kind == "transaction":
        return _transaction(programmes, clinic_id, entries)
    return _batch(programmes, clinic_id, entries)


def _transaction(programmes: Programmes, clinic_id: str, entries: Sequence[Any]
                 ) -> dict[str, Any]:
    intakes: list[Intake] = []
    envelopes: dict[UUID, list[tuple[Intake, EventEnvelope]]] = {}
    seen: set[str] = set()
    try:
        for index, entry in enumerate(entries):
            intake = read_entry(clinic_id, index, entry)
            if intake.event_id in seen:
                raise EntryRefused(422, "identifier-repeated",
                                   "Two entries of this Bundle have the same identifier: "
                                   "each resource is sent once.",
                                   [f"Bundle.entry[{index}].resource.identifier"])
            seen.add(intake.event_id)
            intakes.append(intake)
            envelopes.setdefault(intake.programme_id, []).append((intake, envelope_of(intake)))
    except EntryRefused as error:
        raise refused(error) from None
    for programme_id, taken in envelopes.items():
        # Found first, so that a programme of another clinic (not found, as a
        # missing one) refuses the whole transaction before anything is recorded.
        _found(programmes, clinic_id, programme_id, taken[0][0])
    answers: dict[int, dict[str, Any]] = {}
    for programme_id, taken in envelopes.items():
        try:
            receipt = programmes.record_events(clinic_id, programme_id,
                                               [envelope for _, envelope in taken])
        except (errors.DomainRuleViolation, errors.ApplicationError) as error:
            raise _located(error, taken) from None
        for intake, _ in taken:
            answers[intake.index] = entry_answer(intake, receipt)
    return {"resourceType": "Bundle", "type": "transaction-response",
            "entry": [answers[intake.index] for intake in intakes]}


def _found(programmes: Programmes, clinic_id: str, programme_id: UUID, intake: Intake) -> None:
    try:
        programmes.with_current(clinic_id, programme_id, lambda programme: programme.version)
    except errors.ProgrammeNotFound:
        raise Problem(404, "not-found", "Not found", "No such programme in this clinic.",
                      expression=[f"Bundle.entry[{intake.index}].resource.extension"]) from None


def _located(error: Exception, taken: Sequence[tuple[Intake, EventEnvelope]]) -> Problem:
    """The problem of a refused save, naming the entry whose event was refused."""
    problem = problem_for(error)
    index = getattr(error, "event_index", None)
    intake = taken[index][0] if index is not None and index < len(taken) else taken[0][0]
    problem.members.pop("event_index", None)
    problem.members.pop("event_id", None)
    problem.members["expression"] = [f"Bundle.entry[{intake.index}].resource"]
    return problem


def _batch(programmes: Programmes, clinic_id: str, entries: Sequence[Any]) -> dict[str, Any]:
    answers = []
    for index, entry in enumerate(entries):
        try:
            intake = read_entry(clinic_id, index, entry if isinstance(entry, dict) else {})
            envelope = envelope_of(intake)
            receipt = programmes.record_events(clinic_id, intake.programme_id, [envelope])
        except EntryRefused as error:
            answers.append(refusal_answer(refused(error)))
            continue
        except (errors.DomainRuleViolation, errors.ApplicationError) as error:
            problem = problem_for(error)
            problem.members.pop("event_index", None)
            problem.members.pop("event_id", None)
            problem.members["expression"] = [f"Bundle.entry[{index}].resource"]
            answers.append(refusal_answer(problem))
            continue
        answers.append(entry_answer(intake, receipt))
    return {"resourceType": "Bundle", "type": "batch-response", "entry": answers}
