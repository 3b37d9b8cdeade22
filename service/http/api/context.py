"""What views need from the app: the application object, path converters."""

from __future__ import annotations

from flask import current_app
from werkzeug.routing import BaseConverter

from domain.application import Programmes


def programmes() -> Programmes:
    return current_app.extensions["traction.programmes"]


class ClinicIdConverter(BaseConverter):
    """A clinic slug (domain.md); anything else in its place is a 404."""

    regex = r"[a-z0-9][a-z0-9-]{1,62}"
