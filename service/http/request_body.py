"""Reading JSON request bodies strictly, before any schema sees them.

Clinic systems must learn about a broken body at once: not JSON (415),
too large (413, streamed bodies included), not well-formed JSON (400):
invalid UTF-8, NaN or Infinity, duplicate keys, nesting too deep, unpaired
surrogate escapes; a body that cannot be read (400) or stops arriving (408).
webargs (through flask-smorest) then loads the parsed body with our schemas.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import orjson
from flask import g, request
from marshmallow import Schema, ValidationError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import ClientDisconnected, HTTPException

from service.http.problems import Problem, body_too_large, validation_problem

#: Deeper than any valid event (the deepest is 4 levels); refused before parsing.
MAX_NESTING = 32
#: A body that stops arriving for this long is refused (408): otherwise a few
#: stalled uploads hold every worker thread and the service stops answering.
BODY_IDLE_SECONDS = 10.0
#: A \uD800-\uDFFF escape: only valid as half of a surrogate pair.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; a key given twice makes it shorter than the pairs
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


#: One decoder for every body: json.loads with options builds a new one per call,
#: a third of the time it takes to parse an event.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys,
                            parse_constant=_reject_constant)


#: A complete JSON string (escapes included), and the brackets outside strings.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _too_deep(text: str) -> bool:
    if text.count("{") + text.count("[") <= MAX_NESTING:
        return False  # not that many openings in all, strings included
    # Strings removed and brackets found by the regex engine: a Python loop
    # over every character cost a tenth of a 100-event batch post.
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return True
        else:
            depth -= 1
    return False


# ---- orjson first, where it is known to agree ------------------------------
#
# The standard library's decoder, with a Python hook per object to refuse
# duplicate keys, took a quarter of a bulk upload line's validation. orjson
# parses in a fifth of the time, but keeps the last of duplicate keys, reads
# integers beyond 64 bits as floats and nests 1,024 levels deep. So its value
# is taken only when it must be the standard library's, and anything in doubt
# (every refusal included) is parsed again as before, which answers (value or
# refusal) exactly as it always did (tests/api/test_quick_json.py):
# - orjson refuses what the standard library refuses and more (NaN, Infinity,
#   numbers that overflow to infinity, unpaired surrogate escapes);
# - a float of 2**63 or more may be an integer orjson could not hold;
# - deeper than MAX_NESTING: the standard library's path words the refusal;
# - duplicate keys: every string of the text, keys included, starts and ends
#   with a '"' of its own, and a '"' inside one is escaped (\"). So the text
#   has at least twice as many '"' as strings, and as many strings as the
#   parsed value holds (keys included) unless a key was given twice (orjson
#   kept one of them). Exactly twice as many '"' as strings in the value: no
#   key was given twice.


def parse_json_strictly(raw: bytes) -> Any:
    """Parse a body, raising a 400 Problem that says exactly what is wrong."""
    try:
        value = orjson.loads(raw)
        if raw.count(b'"') == 2 * _strings_in(value, 1):
            return value
    except (orjson.JSONDecodeError, _Doubt):
        pass
    return _parse_with_the_standard_library(raw)


#: The smallest float that may be an integer orjson read as a float.
_MAYBE_AN_INTEGER = float(2**63)


class _Doubt(Exception):
    """The parsed value may not be the standard library's: parse it again."""


def _strings_in(value: Any, depth: int) -> int:
    """The strings in a parsed value (keys included) at nesting `depth`; _Doubt
    if it may not be the standard library's value."""
    kind = type(value)
    if kind is dict:
        count, items = len(value), value.values()
    elif kind is list:
        count, items = 0, value
    else:
        items = (value,)
        count = depth = 0
    if depth > MAX_NESTING:
        raise _Doubt
    for item in items:
        kind = type(item)
        if kind is str:
            count += 1
        elif kind is dict or kind is list:
            count += _strings_in(item, depth + 1)
        elif kind is float and not -_MAYBE_AN_INTEGER < item < _MAYBE_AN_INTEGER:
            raise _Doubt
    return count


# ---- the standard library's path: every refusal worded -------------------

def _parse_with_the_standard_library(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"The body is not valid UTF-8 (byte {error.start}).") from None
    if _too_deep(text):
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"The body nests deeper than {MAX_NESTING} levels.")
    try:
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise Problem(400, "malformed-json", "Malformed JSON",
                      f"{error.msg} at line {error.lineno} column {error.colno}.") from None
    except ValueError as error:
        raise Problem(400, "malformed-json", "Malformed JSON", f"{error}.") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        # json.loads accepts "\ud800" alone; it is no character, and every
        # later step that encodes the text (the store, the driver) fails on it.
        raise Problem(400, "malformed-json", "Malformed JSON",
                      "The body has a \\u escape of an unpaired surrogate (U+D800-U+DFFF), "
                      "which is not a Unicode character.")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def read_body() -> bytes:
    """The raw body, read within the size limit, refused if it stops arriving."""
    # gunicorn hands us its socket, blocking with no timeout: a client whose
    # body stalls would hold this thread for ever. A timeout while we read it.
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    sock = current.environ.get("gunicorn.socket")
    previous_timeout = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(BODY_IDLE_SECONDS)
    try:
        raw = current.get_data(cache=True)
        limit = current.max_content_length
        if current.content_length is None and limit is not None and len(raw) >= limit:
            # A streamed (chunked) body: werkzeug stops reading at the limit
            # without a word, so look for one byte more ourselves.
            if current.environ["wsgi.input"].read(1):
                raise body_too_large(limit)
        return raw
    except Exception as error:
        # (What is left of a body we refuse is gunicorn's: it drains at most
        # 64 KiB for at most 5 s before it reuses or closes the connection.)
        if isinstance(error, ClientDisconnected) and isinstance(error.__context__, TimeoutError):
            raise Problem(408, "request-timeout", "Request Timeout",
                          f"The body stopped arriving for {BODY_IDLE_SECONDS:g} seconds; "
                          "send it again.") from None
        if isinstance(error, HTTPException | Problem):
            raise
        # The WSGI server's own parser failed: a malformed chunk, say.
        raise Problem(400, "malformed-body", "Malformed request body",
                      f"The body cannot be read: {error}.") from None
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous_timeout)


def json_body() -> Any:
    """The request's JSON body, parsed once per request."""
    found = g.get("json_body", _UNREAD)
    if found is _UNREAD:
        mimetype = request.mimetype
        if not mimetype or not (mimetype == "application/json" or mimetype.endswith("+json")):
            raise Problem(415, "unsupported-media-type", "Unsupported media type",
                          "Send the body as application/json.")
        found = g.json_body = parse_json_strictly(read_body())
    return found


#: json_body's mark for a body not read yet (None is a body: `null`).
_UNREAD = object()


_UNLOADED = object()


class StrictJSONParser(FlaskParser):
    """flask-smorest's parser, reading bodies with `json_body()` and failing
    with our problem documents."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._query_defaults: dict[int, Any] = {}

    def parse(self, argmap: Any, req: Any = None, **kwargs: Any) -> Any:
        # Most reads (dashboards polling, summaries) send no query string: they
        # get what the schema loads from nothing, loaded once, instead of a
        # marshmallow load per request (a fifth of a dashboard read's CPU).
        if (kwargs.get("location") == "query" and not kwargs.get("validate")
                and isinstance(argmap, Schema) and not request.query_string):
            defaults = self._query_defaults.get(id(argmap), _UNLOADED)
            if defaults is _UNLOADED:
                try:
                    defaults = argmap.load({})
                except ValidationError:
                    defaults = None  # something is required: load every request
                self._query_defaults[id(argmap)] = defaults
            if defaults is not None:
                return dict(defaults)
        return super().parse(argmap, req, **kwargs)

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

