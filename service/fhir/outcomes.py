"""Errors on FHIR routes as OperationOutcomes, FHIR's own convention.

Every error the service answers on a FHIR route (service/http/problems.py
decides which routes) is the same problem document it would answer anywhere,
worded as an OperationOutcome: one issue per field error, each naming where
(`expression`, a FHIRPath such as `Bundle.entry[2].resource.valueInteger`),
the problem's slug as the issue's `details` coding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.fhir import terms

FHIR_JSON = "application/fhir+json"

#: An HTTP status as an issue type (http://hl7.org/fhir/issue-type).
ISSUE_TYPE = {
    400: "structure", 401: "login", 403: "forbidden", 404: "not-found",
    405: "not-supported", 406: "not-supported", 408: "timeout", 409: "conflict",
    410: "deleted", 412: "conflict", 413: "too-long", 415: "not-supported",
    422: "invalid", 429: "throttled", 500: "exception", 503: "transient",
}
PROBLEMS = terms.code_system("problem")


def issue(status: int, slug: str, diagnostics: str,
          expression: Sequence[str] = (), severity: str = "error") -> dict[str, Any]:
    found: dict[str, Any] = {
        "severity": severity,
        "code": "business-rule" if slug == "domain-rule" else ISSUE_TYPE.get(status, "processing"),
        "details": {"coding": [{"system": PROBLEMS, "code": slug}]},
        "diagnostics": diagnostics,
    }
    if expression:
        found["expression"] = list(expression)
    return found


def outcome(issues: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [dict(i) for i in issues]}


def information(text: str) -> dict[str, Any]:
    """An outcome that says all went well (an entry of a batch-response)."""
    return outcome([{"severity": "information", "code": "informational", "diagnostics": text}])


def pointer_to_expression(pointer: str) -> str:
    """A JSON pointer into a request (`/entry/2/resource/valueInteger`) as FHIRPath
    (`Bundle.entry[2].resource.valueInteger`); a query parameter stays its name."""
    parts = [p for p in pointer.split("/") if p]
    path = "Bundle" if parts and parts[0] == "entry" else ""
    for part in parts:
        if part.isdigit():
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "Bundle"


def from_problem(document: Mapping[str, Any]) -> dict[str, Any]:
    """The OperationOutcome of a problem document (service/http/problems.py)."""
    status, slug = document["status"], document["type"].rsplit(":", 1)[-1]
    if document.get("expression"):
        return outcome([issue(status, slug, document["detail"], document["expression"])])
    errors = document.get("errors") or []
    if errors:
        return outcome([issue(status, slug, e["detail"], [pointer_to_expression(e["pointer"])])
                        for e in errors])
    return outcome([issue(status, slug, document["detail"])])
