"""Service configuration, read from the environment once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from service.storage.settings import database_url


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    """What the app factory needs; the store's pools, logging and gunicorn read
    their own variables (all listed in the README's configuration reference)."""

    database_url: str = field(default_factory=database_url)
    #: Largest request body accepted (413 beyond it).
    max_body_bytes: int = field(default_factory=lambda: _int("TRACTION_MAX_BODY_BYTES", 2_000_000))
