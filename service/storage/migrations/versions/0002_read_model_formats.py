"""Read models record the format they were built in.

A release that changes what a read model holds (its state format) must not
write into read models an older release built: it rebuilds them beside the
live ones and swaps (the runner does it at start, `traction migrate` does it
at once). Read models with no row here were built by 0.1.0: format 1.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS read_model_formats (projection TEXT NOT NULL,"
        " version INTEGER NOT NULL, state_format INTEGER NOT NULL,"
        " PRIMARY KEY (projection, version))"
    )
