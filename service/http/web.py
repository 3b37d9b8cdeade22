"""The dashboard pages: public HTML shells that hold no data.

Each page is the same for everyone and carries nothing but the ids in its
own URL; the browser signs in by keeping a token in sessionStorage, and the
page's script reads everything from the JSON API with `Authorization:
Bearer`. So tenancy is enforced in one place (service/http/access.py): a viewer
of one clinic who opens another clinic's page gets the API's 404 and the
page says "not found".

The token never travels in a URL or a cookie, and these responses forbid
inline scripts and any origin but our own (no CDN: Chart.js is vendored in
service/http/static/vendor/chartjs/).
"""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, Response, redirect, render_template, url_for

from service.http.access import public

bp = Blueprint("pages", __name__)

#: Only our own scripts, styles and API; no framing, no referrer leaks.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/", methods=["GET"])
@public
def home() -> Response:
    """The service's front door: the dashboard's sign-in page."""
    return redirect(url_for("pages.sign_in"))


@bp.route("/dashboard/", methods=["GET"])
@public
def sign_in() -> str:
    """Paste a token; the page keeps it in this tab's sessionStorage only."""
    return render_template("sign_in.html", page="sign-in")


@bp.route("/dashboard/network", methods=["GET"])
@public
def network() -> str:
    """Every clinic side by side (tokens for all clinics)."""
    return render_template("network.html", page="network")


@bp.route("/dashboard/clinics/<clinic:clinic_id>", methods=["GET"])
@public
def clinic(clinic_id: str) -> str:
    """One clinic's programmes and metrics."""
    return render_template("clinic.html", page="clinic", clinic_id=clinic_id)


@bp.route("/dashboard/clinics/<clinic:clinic_id>/programmes/<uuid:programme_id>",
          methods=["GET"])
@public
def programme(clinic_id: str, programme_id: UUID) -> str:
    """One programme: pain trajectory, sessions, and its full event history."""
    return render_template("programme.html", page="programme", clinic_id=clinic_id,
                           programme_id=str(programme_id))
