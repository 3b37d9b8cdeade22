"""Hostile request bodies, sent byte for byte through a real gunicorn (R8).

Each case is what a broken or malicious client might send to
`POST .../events`, with the answer it must get: the status, the problem
document's `type`, and words its `detail` (or first error) must contain.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests import builders as b
from tests.reliability.live import Answer, raw_exchange, request, request_head

TEN_MB = 10 * 1024 * 1024
PROBLEM = "urn:traction-ledger:problem:"


@dataclass(frozen=True)
class HostileCase:
    name: str
    body: bytes
    status: int
    problem: str  # the problem type's last part
    says: str  # in the detail, or in the first error's pointer
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _chunked(body: bytes, size: int = 65536) -> bytes:
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _with(change: dict[str, Any], base: dict[str, Any] | None = None) -> bytes:
    return _json({**(base or b.pain(4, 2)), **change})


def hostile_cases() -> list[HostileCase]:
    pain = b.pain(4, 2)
    text = json.dumps(pain)
    huge = b"{" + b" " * TEN_MB + b"}"
    return [
        HostileCase("invalid UTF-8", b'{"events": [\xff\xfe]}', 400, "malformed-json", "UTF-8"),
        HostileCase("overlong UTF-8", b'{"a": "\xc0\xaf"}', 400, "malformed-json", "UTF-8"),
        HostileCase("deep nesting", b"[" * 100_000 + b"]" * 100_000, 400, "malformed-json",
                    "deeper than 32"),
        HostileCase("deep nesting inside a valid envelope",
                    _with({"data": {"pain_nrs": 4, "x": json.loads("[" * 40 + "]" * 40)}}),
                    400, "malformed-json", "deeper than 32"),
        HostileCase("10 MB with Content-Length", huge, 413, "request-entity-too-large", ""),
        HostileCase("10 MB chunked, no Content-Length", huge, 413, "request-entity-too-large",
                    "larger than", chunked=True),
        HostileCase("NaN", text.replace('"pain_nrs": 4', '"pain_nrs": NaN').encode(), 400,
                    "malformed-json", "NaN"),
        HostileCase("Infinity", text.replace('"pain_nrs": 4', '"pain_nrs": Infinity').encode(),
                    400, "malformed-json", "Infinity"),
        HostileCase("-Infinity", text.replace('"pain_nrs": 4', '"pain_nrs": -Infinity').encode(),
                    400, "malformed-json", "Infinity"),
        HostileCase("duplicate keys",
                    text.replace('"pain_nrs": 4', '"pain_nrs": 4, "pain_nrs": 9').encode(),
                    400, "malformed-json", "duplicate key 'pain_nrs'"),
        HostileCase("duplicate top-level keys",
                    text.replace('"type":', '"type": "SessionMissed", "type":', 1).encode(),
                    400, "malformed-json", "duplicate key 'type'"),
        HostileCase("unpaired surrogate escape",
                    text.replace('"recorded_by": "physio.anna"',
                                 '"recorded_by": "physio.anna", "note": "\\udc00"').encode(),
                    400, "malformed-json", "surrogate"),
        HostileCase("timestamp without offset", _with({"occurred_at": "2026-03-03T09:00:00"}),
                    422, "validation-failed", "/occurred_at"),
        HostileCase("date without time", _with({"occurred_at": "2026-03-03"}),
                    422, "validation-failed", "/occurred_at"),
        HostileCase("ISO week date", _with({"occurred_at": "2026-W10-3T09:00:00Z"}),
                    422, "validation-failed", "/occurred_at"),
        HostileCase("timestamp far in the future", _with({"occurred_at": "2999-01-01T00:00:00Z"}),
                    422, "domain-rule", "more than 5 minutes"),
        HostileCase("timestamp with no UTC form",
                    _with({"occurred_at": "0001-01-01T00:00:00+01:00"}),
                    422, "validation-failed", "/occurred_at"),
        HostileCase("unknown envelope field", _with({"priority": "high"}),
                    422, "validation-failed", "/priority"),
        HostileCase("unknown data field", _with({"data": {"pain_nrs": 4, "mood": "ok"}}),
                    422, "validation-failed", "/data/mood"),
        HostileCase("number with 5000 digits",
                    text.replace('"pain_nrs": 4', '"pain_nrs": 1' + "0" * 5000).encode(),
                    400, "malformed-json", "digits"),
        HostileCase("text/plain", _json(pain), 415, "unsupported-media-type", "application/json",
                    headers={"Content-Type": "text/plain"}),
        HostileCase("form encoded", b"event_id=1&type=PainReported", 415,
                    "unsupported-media-type", "application/json",
                    headers={"Content-Type": "application/x-www-form-urlencoded"}),
        HostileCase("no content type", _json(pain), 415, "unsupported-media-type",
                    "application/json", headers={"Content-Type": ""}),
        HostileCase("malformed chunk", b"zz\r\n{}\r\n0\r\n\r\n", 400, "malformed-body",
                    "chunk", chunked=True),
        HostileCase("empty body", b"", 400, "malformed-json", "Expecting value"),
    ]


def send_case(port: int, path: str, token: str, case: HostileCase) -> Answer:
    headers = {"Content-Type": "application/json", **case.headers}
    if not headers["Content-Type"]:
        del headers["Content-Type"]
    if case.chunked:
        headers["Transfer-Encoding"] = "chunked"
        body = case.body if case.name == "malformed chunk" else _chunked(case.body)
    else:
        headers["Content-Length"] = str(len(case.body))
        body = case.body
    return raw_exchange(port, request_head("POST", path, token, headers), body)


def problem_mismatch(case: HostileCase, answer: Answer) -> str | None:
    """Why the answer is not the precise problem the case calls for, or None."""
    if answer.status != case.status:
        return f"status {answer.status}, not {case.status}: {answer.raw[:300]!r}"
    if answer.content_type != "application/problem+json":
        return f"content type {answer.content_type!r}"
    problem = answer.body
    if problem.get("type") != PROBLEM + case.problem or problem.get("status") != case.status:
        return f"problem {problem}"
    if not problem.get("title") or not problem.get("detail"):
        return f"problem without title or detail: {problem}"
    said = problem["detail"] + " ".join(e["pointer"] for e in problem.get("errors", []))
    if case.says not in said:
        return f"{case.says!r} not in {said!r}"
    return None


def valid_post_path(clinic_id: str = "clinic-a") -> tuple[str, dict[str, Any]]:
    """A new programme's events path and its ProgrammeStarted."""
    return f"/v1/clinics/{clinic_id}/programmes/{uuid.uuid4()}/events", b.started()


def stalled_uploads(port: int, token: str, stalls: int) -> tuple[list[Answer | Exception],
                                                                  Answer, float]:
    """Open `stalls` posts whose bodies stop after 20 bytes; half a second later,
    post normally. Returns the stalled posts' answers, the normal one, and how
    long the normal one took to be answered."""
    stalled: list[Answer | Exception] = []

    def stall() -> None:
        path, start = valid_post_path()
        body = json.dumps(start).encode()
        head = request_head("POST", path, token, {"Content-Type": "application/json",
                                                  "Content-Length": str(len(body))})
        try:
            stalled.append(raw_exchange(port, head, body, stall_after=20, timeout=60))
        except Exception as error:  # reported to the caller
            stalled.append(error)

    threads = [threading.Thread(target=stall) for _ in range(stalls)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    began = time.monotonic()
    path, start = valid_post_path()
    normal = request(port, "POST", path, start, token, timeout=60)
    answered_after = time.monotonic() - began
    for thread in threads:
        thread.join(60)
    return stalled, normal, answered_after
