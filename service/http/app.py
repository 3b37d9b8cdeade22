"""The Flask application factory.

`create_app` is given the service's parts, already built by the composition
root (service/bootstrap.py), and adds the HTTP around them: blueprints,
schemas and the OpenAPI document, access control, problem documents, the
request log and metrics. It opens nothing itself.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from projections.reading import Reader
from service.bootstrap import Components
from service.http import access, availability, metrics, request_log
from service.http.api.context import COMPONENTS, READER, ClinicIdConverter
from service.http.openapi import LedgerApi, document_access, openapi_config
from service.http.problems import register_problem_handlers


def create_app(components: Components, **overrides: Any) -> Flask:
    """The app over `components` (call it in each worker after fork: they hold
    the worker's own connections to the store)."""
    settings = components.settings
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        **openapi_config(swagger_ui_url="/static/vendor/swagger-ui/"),
        **overrides,
    )
    app.extensions[COMPONENTS] = components
    # The reads share the application's connections to the store (and, with a
    # read replica, are asked of it first: service/storage/replica.py).
    app.extensions[READER] = Reader(components.read_models,
                                    min_position_wait=settings.min_position_wait,
                                    replica=components.replica,
                                    replica_read_models=components.replica_read_models)
    # Before access control: while the store is down, answer 503 at once.
    availability.init_app(app)
    access.init_app(app, components.directory)
    request_log.init_app(app)
    metrics.init_app(app, components)

    app.url_map.converters["clinic"] = ClinicIdConverter
    api = LedgerApi(app)
    api.register_converter(
        ClinicIdConverter, lambda _: {"type": "string", "pattern": f"^{ClinicIdConverter.regex}$"}
    )
    # Our problem handlers replace flask-smorest's JSON error handler.
    register_problem_handlers(app, on_store_error=availability.report_store_failure)

    from service.http.api import admin, audit, dashboards, events, ops, programmes
    from service.http.api import metrics as metrics_api

    for blueprint in (events.blp, programmes.blp, dashboards.blp, admin.blp, audit.blp, ops.blp):
        api.register_blueprint(blueprint)
    api.register_blueprint(metrics_api.blp)
    from service.http.web import bp as pages  # the dashboard's HTML shells (no data)
    app.register_blueprint(pages)
    document_access(api, app)
    return app
