"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from domain.application import Programmes
from service.config import Settings
from service.http import access, availability, metrics, request_log
from service.http.api.context import ClinicIdConverter
from service.http.openapi import LedgerApi, document_access, openapi_config
from service.http.problems import register_problem_handlers
from service.storage.database import Database
from service.storage.directory import Directory
from service.storage.settings import eventsourcing_env, parse_database_url


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the app; the store is opened here, so call it in each worker after fork."""
    settings = settings or Settings()
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        **openapi_config(swagger_ui_url="/static/vendor/swagger-ui/"),
        **overrides,
    )
    store = parse_database_url(settings.database_url)
    app.extensions["traction.settings"] = settings
    app.extensions["traction.store"] = store
    app.extensions["traction.programmes"] = Programmes(env=eventsourcing_env(store))
    # Before access control: while the store is down, answer 503 at once.
    availability.init_app(app)
    access.init_app(app, Directory(Database(store)))
    request_log.init_app(app)
    metrics.init_app(app)

    app.url_map.converters["clinic"] = ClinicIdConverter
    api = LedgerApi(app)
    api.register_converter(
        ClinicIdConverter, lambda _: {"type": "string", "pattern": f"^{ClinicIdConverter.regex}$"}
    )
    # Our problem handlers replace flask-smorest's JSON error handler.
    register_problem_handlers(app)

    from service.http.api import admin, audit, dashboards, events, ops, programmes
    from service.http.api import metrics as metrics_api

    for blueprint in (events.blp, programmes.blp, dashboards.blp, admin.blp, audit.blp, ops.blp):
        api.register_blueprint(blueprint)
    api.register_blueprint(metrics_api.blp)
    from service.http.web import bp as pages  # the dashboard's HTML shells (no data)
    app.register_blueprint(pages)
    document_access(api, app)
    return app
