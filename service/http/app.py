"""The Flask application factory.

`create_app` is given the service's parts, already built by the composition
root (service/bootstrap.py), and adds the HTTP around them: blueprints,
schemas and the OpenAPI document, access control, problem documents, the
request log and metrics. It opens nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from projections.reading import Reader, WaitSlots
from service.bootstrap import Components
from service.http import (
    access,
    availability,
    metrics,
    request_log,
    revalidations,
    security_headers,
)
from service.http.api.context import (
    COMPONENTS,
    POSITIONS,
    PROGRAMME_READS,
    READER,
    ClinicIdConverter,
)
from service.http.forwarded import TrustedProxies
from service.http.openapi import LedgerApi, document_access, openapi_config
from service.http.problems import register_problem_handlers
from service.http.programme_reads import ProgrammeReads
from service.storage.clinic_positions import ClinicPositions


class LedgerFlask(Flask):
    """Flask, minus a check per hook per request: every view and hook here is a
    plain function, and Flask asked `inspect` whether each was a coroutine
    every time it called it (eight times a request)."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self.__dict__.setdefault("_synchronous", {})
        found = known.get(func)
        if found is None:
            found = known[func] = super().ensure_sync(func)
        return found  # type: ignore[no-any-return]


def create_app(components: Components, **overrides: Any) -> Flask:
    """The app over `components` (call it in each worker after fork: they hold
    the worker's own connections to the store)."""
    settings = components.settings
    app = LedgerFlask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        **openapi_config(swagger_ui_url="/static/vendor/swagger-ui/"),
        **overrides,
    )
    app.extensions[COMPONENTS] = components
    # The reads share the application's connections to the store (and, with a
    # read replica, are asked of it first: service/storage/replica.py).
    positions = ClinicPositions(components.programmes.recorder)  # type: ignore[arg-type]
    app.extensions[READER] = Reader(components.read_models,
                                    min_position_wait=settings.min_position_wait,
                                    staleness=settings.read_staleness,
                                    replica=components.replica,
                                    replica_read_models=components.replica_read_models,
                                    opener=components.open_patient_ref,
                                    slots=WaitSlots(settings.min_position_waiters,
                                                    settings.min_position_waiters_per_token),
                                    clinic_positions=positions,
                                    clinic_programme_ids=(
                                        components.programmes.clinic_programme_ids))
    app.extensions[POSITIONS] = positions
    app.extensions[PROGRAMME_READS] = ProgrammeReads(components.programmes,
                                                     replica=components.replica)
    # Before access control: while the store is down, answer 503 at once.
    availability.init_app(app)
    access.init_app(app, components.directory, settings.metrics_token)
    # Inside the request log: a remembered 304 still has its request id, access
    # line and metrics.
    app.wsgi_app = app.extensions[revalidations.REVALIDATIONS] = (  # type: ignore[method-assign]
        revalidations.Revalidations(app.wsgi_app, app, app.extensions[READER].primary.marker))
    request_log.init_app(app)
    security_headers.init_app(app)
    metrics.init_app(app, components)

    app.url_map.converters["clinic"] = ClinicIdConverter
    api = LedgerApi(app)
    api.register_converter(
        ClinicIdConverter, lambda _: {"type": "string", "pattern": f"^{ClinicIdConverter.regex}$"}
    )
    # Our problem handlers replace flask-smorest's JSON error handler.
    register_problem_handlers(app, on_store_error=availability.report_store_failure)

    from service.http.api import (
        admin,
        audit,
        bulk,
        dashboards,
        erasure,
        events,
        fhir,
        ops,
        programmes,
    )
    from service.http.api import metrics as metrics_api

    for blueprint in (events.blp, bulk.blp, programmes.blp, dashboards.blp, admin.blp,
                      erasure.blp, audit.blp, ops.blp, fhir.blp):
        api.register_blueprint(blueprint)
    api.register_blueprint(metrics_api.blp)
    from service.http.web import bp as pages  # the dashboard's HTML shells (no data)
    app.register_blueprint(pages)
    document_access(api, app)
    # Outermost: the request log and the access log see the client behind the proxy.
    app.wsgi_app = TrustedProxies(app.wsgi_app,  # type: ignore[method-assign]
                                  settings.trusted_proxies)
    return app
