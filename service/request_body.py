"""Reading JSON request bodies strictly, before any schema sees them.

Clinic systems must learn about a broken body at once: not JSON (415),
too large (413), or not well-formed JSON (400): invalid UTF-8, NaN or
Infinity, duplicate keys, nesting too deep. webargs (through flask-smorest)
then loads the parsed body with our schemas.
"""

from __future__ import annotations

import json
from typing import Any

from flask import g, request
from webargs.flaskparser import FlaskParser

from service.problems import Problem, validation_problem

#: Deeper than any valid event (the deepest is 4 levels); refused before parsing.
MAX_NESTING = 32


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _too_deep(text: str) -> bool:
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_json_strictly(raw: bytes) -> Any:
    """Parse a body, raising a 400 Problem that says exactly what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"The body is not valid UTF-8 (byte {error.start}).") from None
    if _too_deep(text):
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"The body nests deeper than {MAX_NESTING} levels.")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"{error.msg} at line {error.lineno} column {error.colno}.") from None
    except ValueError as error:
        raise Problem(400, "malformed-json", "Malformed JSON", f"{error}.") from None


def json_body() -> Any:
    """The request's JSON body, parsed once per request."""
    if "json_body" not in g:
        if not request.mimetype or not (
            request.mimetype == "application/json" or request.mimetype.endswith("+json")
        ):
            raise Problem(415, "unsupported-media-type", "Unsupported media type",
                          "Send the body as application/json.")
        g.json_body = parse_json_strictly(request.get_data(cache=True))
    return g.json_body


class StrictJSONParser(FlaskParser):
    """flask-smorest's parser, reading bodies with `json_body()` and failing
    with our problem documents."""

    def _raw_load_json(self, req: Any) -> Any:
        return json_body()

    def load_json(self, req: Any, schema: Any) -> Any:
        return self._raw_load_json(req)

    def handle_error(self, error: Any, req: Any, schema: Any, *,
                     error_status_code: Any, error_headers: Any) -> Any:
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1 and next(iter(messages)) in (
            "json", "query", "path", "view_args"
        ):
            messages = next(iter(messages.values()))
        body = g.get("json_body")
        # A single envelope was validated as a batch of one: point at its own fields.
        single = isinstance(body, dict) and "events" not in body
        raise validation_problem(messages, strip_prefix="/events/0" if single else "")

