"""The security headers every response carries, whatever answered it.

- `X-Content-Type-Options: nosniff`: a browser never reads JSON (a patient's
  history, a problem document quoting input) as HTML or script.
- Framing forbidden (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`), and
  no referrer sent on.
- A Content-Security-Policy on every document: the API's answers allow nothing
  at all; `/docs` (Swagger UI, vendored under static/) only our own scripts,
  styles and API; the dashboard's pages set their own (service/http/web.py).
- `Cache-Control: no-store` on whatever does not say otherwise: receipts,
  problems, the audit and admin routes. The reads that answer `If-None-Match`
  set their own (service/http/conditional.py): `private, no-store` for
  patient-level data, `private, no-cache` for a dashboard's aggregates.
"""

from __future__ import annotations

from flask import Flask, Response, request

#: Answers of the API: documents that load nothing and may be framed by no one.
API_POLICY = "; ".join([
    "default-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
#: /docs: Swagger UI from our own static files (service/http/templates/swagger_ui.html
#: starts it from a file, not an inline script); it styles elements as it builds them.
DOCS_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"


#: Every response's headers unless it set its own: (name, its lower case, value);
#: /docs gets DOCS_POLICY as its Content-Security-Policy.
DEFAULTS = tuple((name, name.lower(), value) for name, value in (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", API_POLICY),
    ("Cache-Control", "no-store"),
))


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    # One look at the headers the response has (werkzeug looks up a name by
    # walking them all), then each missing one added.
    present = {name.lower() for name, _ in headers.items()}
    for name, lower, value in DEFAULTS:
        if lower not in present:
            if name == "Content-Security-Policy" and request.endpoint == DOCS_ENDPOINT:
                value = DOCS_POLICY
            headers.add(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
