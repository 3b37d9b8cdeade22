"""Conditional reads: every read answers with an ETag, and `If-None-Match` with it
answers 304 Not Modified, without the body.

The ETag is a digest of the body itself (projections/reading.py,
service/http/programme_reads.py): it changes exactly when the body does, so it
tells a client nothing it could not see by reading the body, and nothing about
other clinics' activity (a tag built from the global log position would change
whenever any clinic posts). Reads are private to the token that made them, so
`Cache-Control` keeps them out of shared caches and `Vary: Authorization` keeps
one token's answer from being reused for another's.

Patient-level data (a programme, its history, its summary, a clinic's list of
programmes) is never stored by a cache at all, not even the browser's on a
shared clinic workstation: `private, no-store`. Its ETag still lets a client
that keeps its own copy revalidate it. No read is declared `immutable`: even
a programme as it stood at an explicit version changes once, when it is
erased (its personal fields then read as erased). A dashboard's aggregates
may be kept and revalidated: `private, no-cache`.
"""

from __future__ import annotations

from flask import Response, request

JSON = "application/json"
#: A read that may change: keep it, but ask again each time (a 304 is cheap).
REVALIDATE = "private, no-cache"
#: Patient-level data: no cache keeps it (a client may keep its copy and its ETag).
PATIENT_DATA = "private, no-store"


def etag_of(digest: str) -> str:
    return f'"{digest}"'


def not_modified(etag: str) -> bool:
    """Whether the client already holds the representation with this ETag
    (If-None-Match compares weakly, RFC 9110 13.1.2)."""
    if "HTTP_IF_NONE_MATCH" not in request.environ:
        return False
    wanted = request.if_none_match
    return wanted.star_tag or wanted.contains_weak(etag.strip('"'))


def answer(body: str | bytes, digest: str, *, patient_data: bool = False,
           headers: dict[str, str] | None = None) -> Response:
    """200 with the body, or 304 when the client holds it already; either way with
    the ETag, the caching rules and `headers`."""
    etag = etag_of(digest)
    # Given as a list when the response is made: each header set on a made
    # response is a scan of the ones it has (a revalidation's cost is mostly such).
    listed = [("ETag", etag), ("Cache-Control", PATIENT_DATA if patient_data else REVALIDATE),
              ("Vary", "Authorization")]
    if headers:
        listed.extend(headers.items())
    if not_modified(etag):
        return Response(status=304, headers=listed)
    return Response(body, status=200, mimetype=JSON, headers=listed)
