"""Writing in bulk: nightly EHR syncs and migrations of historical data post NDJSON.

`POST /v1/clinics/{clinic_id}/events:bulk` (a custom method on the clinic's
events, in the `:verb` form of Google's API design guide: not a resource of
its own) takes `application/x-ndjson`, one event envelope per line with its
`programme_id`, and answers NDJSON, one result per line, in order, as the
lines are recorded (service/http/bulk_ingest.py).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context

from service.http import examples, request_log
from service.http.access import allow
from service.http.api.context import components, positions, programmes
from service.http.bulk_ingest import NDJSON, Limits, ingest, too_large
from service.http.openapi import LedgerBlueprint, problems
from service.http.problems import Problem
from service.http.schemas.bulk import BulkLineSchema, BulkResultSchema

blp = LedgerBlueprint("bulk", __name__, url_prefix="/v1",
                      description="Post many events, of many programmes, as NDJSON")


@blp.route("/clinics/<clinic:clinic_id>/events:bulk", methods=["POST"])
@blp.doc(requestBody={
    "required": True,
    "description": "One JSON object per line (NDJSON): an event envelope, as posted to a "
    "programme, with its `programme_id` and, optionally, the programme's `expected_version` "
    "before the line. Lines are independent: each is recorded, or refused, alone, in order. "
    "Blank lines are skipped. A line may be as large as a single post's body. One upload "
    "is recorded by one worker: a large sync goes faster split by programme into several "
    "uploads sent at once (each programme's lines in one of them, in order; no order holds "
    "between uploads).",
    "content": {NDJSON: {"schema": BulkLineSchema}},
})
@blp.response(200, BulkResultSchema, content_type=NDJSON, example=examples.BULK_RESULT,
              description=(
    "NDJSON, streamed as the lines are recorded: for each line of the upload, "
    "`{\"line\", \"status\", \"receipt\"}` (201 recorded, 200 recorded before with identical "
    "content) or `{\"line\", \"status\", \"problem\"}` (the problem a single post of it would "
    "get: 400, 404, 409, 413, 422). An upload over the size limit, or one that stops "
    "arriving, is cut: the lines already read are answered, then one result with the 413 "
    "(or 408, 400) problem; so is one whose chunk the store cannot take, at that chunk's "
    "first line (503; 500 for anything but the store). The last line is "
    "`{\"summary\": {...}}`; an answer without it was cut short: send the lines after the "
    "last one answered again."))
@problems(blp, 401, 403, 404, 413, 415)
@allow("writer")
def post_bulk(clinic_id: str) -> Any:
    """Record many events of the clinic's programmes, one per line; answered line by line."""
    if request.mimetype != NDJSON:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      f"Send the lines as {NDJSON}.")
    settings = components().settings
    limits = Limits(upload_bytes=settings.max_bulk_bytes, line_bytes=settings.max_body_bytes)
    if request.content_length is not None and request.content_length > limits.upload_bytes:
        raise too_large(limits.upload_bytes, "The upload")
    environ = request.environ
    request_log.measure_until_sent(environ)
    lines = ingest(programmes(), positions(), clinic_id, environ["wsgi.input"], limits,
                   environ.get("gunicorn.socket"))
    return Response(stream_with_context(lines), mimetype=NDJSON)
