"""Clinics, API tokens and the access log: who may do what, and who did.

Tokens look like `tl_<token_id>_<secret>`: the id finds the row, and only a
SHA-256 of the 256-bit random secret is stored and compared (in constant
time). A slow password hash buys nothing for a secret this long.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.storage import access_chain
from service.storage.database import Cursor, Database
from service.storage.names import why_not_shown_text

ROLES = ("writer", "viewer", "auditor", "admin")
#: Roles whose scope is always every clinic.
ALL_CLINIC_ROLES = ("auditor", "admin")
CLINIC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
TOKEN = re.compile(r"^tl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
#: A token's id alone: the part of the token between `tl_` and the secret.
TOKEN_ID = re.compile(r"[0-9a-f]{16}")

class DirectoryError(ValueError):
    """A clinic or token request that cannot be honoured."""


class ClinicExists(DirectoryError):
    pass


class UnknownClinic(DirectoryError):
    pass


class UnknownToken(DirectoryError):
    pass


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    secret_sha256: str
    role: str
    clinic_id: str | None
    label: str
    revoked: bool
    issued_at: str | None = None
    #: When it stops working (RFC 3339, UTC); None: it never does.
    expires_at: str | None = None
    revoked_at: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now

    @property
    def all_clinics(self) -> bool:
        return self.clinic_id is None

    def matches(self, secret: str) -> bool:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(digest, self.secret_sha256)

    def public(self) -> dict[str, Any]:
        """What may be shown of a token: everything but its secret's digest."""
        return {"token_id": self.token_id, "role": self.role, "clinic_id": self.clinic_id,
                "label": self.label, "revoked": self.revoked, "issued_at": self.issued_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_token(token: str) -> tuple[str, str] | None:
    """(token_id, secret) of a well-formed token, else None."""
    match = TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


class Directory:
    """Reads and changes clinics and tokens; appends to the access log."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # ---- clinics --------------------------------------------------------

    def add_clinic(self, clinic_id: str, name: str, actor: dict[str, Any] | None = None) -> dict:
        if not CLINIC_ID.match(clinic_id):
            raise DirectoryError("clinic_id must match ^[a-z0-9][a-z0-9-]{1,62}$")
        if not 1 <= len(name) <= 200:
            raise DirectoryError("name must be 1-200 characters")
        if (unsafe := why_not_shown_text(name)) is not None:
            raise DirectoryError(f"name {unsafe}")
        with self.db.transaction() as cursor:
            if cursor.execute("SELECT 1 FROM clinics WHERE clinic_id = %s",
                              [clinic_id]).fetchone():
                raise ClinicExists(f"clinic {clinic_id} is already registered")
            registered_at = now_iso()
            cursor.execute("INSERT INTO clinics (clinic_id, name, registered_at) "
                           "VALUES (%s, %s, %s)", [clinic_id, name, registered_at])
            self._bump(cursor)
            self._log(cursor, "clinic_registered", actor, clinic_id=clinic_id)
        return {"clinic_id": clinic_id, "name": name, "registered_at": registered_at,
                "deactivated_at": None}

    def clinics(self) -> list[dict[str, Any]]:
        with self.db.transaction(write=False) as cursor:
            return cursor.execute(
                "SELECT clinic_id, name, registered_at, deactivated_at FROM clinics "
                "ORDER BY clinic_id"
            ).fetchall()

    def clinic_name(self, clinic_id: str) -> str | None:
        with self.db.transaction(write=False) as cursor:
            row = cursor.execute("SELECT name FROM clinics WHERE clinic_id = %s",
                                 [clinic_id]).fetchone()
        return row["name"] if row else None

    def deactivate_clinic(self, clinic_id: str, actor: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
        """Deactivate a clinic: its tokens stop working (every worker within a second)
        and no new ones are issued for it; its records stay, readable by auditors and
        all-clinic tokens. Deactivating it again changes nothing."""
        return self._set_deactivated(clinic_id, now_iso(), "clinic_deactivated", actor)

    def reactivate_clinic(self, clinic_id: str, actor: dict[str, Any] | None = None
                          ) -> tuple[dict[str, Any], int]:
        """Undo a deactivation: the clinic's tokens that are neither revoked nor
        expired work again (every worker within a second) and new ones can be
        issued. Returns the clinic and how many of its tokens work again, so the
        caller can say so (a clinic deactivated because a token leaked should
        have that token revoked first). Reactivating an active clinic changes
        nothing."""
        clinic = self._set_deactivated(clinic_id, None, "clinic_reactivated", actor)
        now = datetime.now(UTC)
        working = sum(1 for token in self.tokens(clinic_id)
                      if not token.revoked and not token.expired(now))
        return clinic, working

    def _set_deactivated(self, clinic_id: str, deactivated_at: str | None, action: str,
                         actor: dict[str, Any] | None) -> dict[str, Any]:
        """Mark the clinic deactivated (a time) or active (None), logged as `action`;
        a clinic already in that state is left as it is (and nothing is logged)."""
        with self.db.transaction() as cursor:
            row = cursor.execute("SELECT clinic_id, name, registered_at, deactivated_at "
                                 "FROM clinics WHERE clinic_id = %s", [clinic_id]).fetchone()
            if row is None:
                raise UnknownClinic(f"clinic {clinic_id} is not registered")
            if (row["deactivated_at"] is None) != (deactivated_at is None):
                row["deactivated_at"] = deactivated_at
                cursor.execute("UPDATE clinics SET deactivated_at = %s WHERE clinic_id = %s",
                               [deactivated_at, clinic_id])
                self._bump(cursor)
                self._log(cursor, action, actor, clinic_id=clinic_id)
        return dict(row)

    # ---- tokens ---------------------------------------------------------

    def issue_token(self, role: str, clinic_id: str | None, label: str,
                    actor: dict[str, Any] | None = None, *,
                    expires_at: datetime | None = None) -> tuple[TokenRecord, str]:
        """A new token and its secret form, which is never stored or shown again;
        with `expires_at`, it stops working then."""
        if role not in ROLES:
            raise DirectoryError(f"role must be one of {', '.join(ROLES)}")
        if role in ALL_CLINIC_ROLES and clinic_id is not None:
            raise DirectoryError(f"a {role} token covers all clinics; give no clinic")
        if role == "writer" and clinic_id is None:
            raise DirectoryError("a writer token belongs to one clinic; give its clinic")
        if not 0 <= len(label) <= 200:
            raise DirectoryError("label must be at most 200 characters")
        if label and (unsafe := why_not_shown_text(label)) is not None:
            raise DirectoryError(f"label {unsafe}")
        issued_at = now_iso()
        expires = None
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise DirectoryError("expires_at needs a time zone (e.g. Z or +00:00)")
            if expires_at <= datetime.now(UTC):
                raise DirectoryError("expires_at must be in the future")
            expires = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)  # 256 bits
        record = TokenRecord(token_id, hashlib.sha256(secret.encode()).hexdigest(), role,
                             clinic_id, label, revoked=False, issued_at=issued_at,
                             expires_at=expires)
        with self.db.transaction() as cursor:
            if clinic_id is not None:
                clinic = cursor.execute("SELECT deactivated_at FROM clinics WHERE clinic_id = %s",
                                        [clinic_id]).fetchone()
                if clinic is None:
                    raise UnknownClinic(f"clinic {clinic_id} is not registered")
                if clinic["deactivated_at"] is not None:
                    raise DirectoryError(f"clinic {clinic_id} is deactivated")
            cursor.execute(
                "INSERT INTO api_tokens (token_id, secret_sha256, role, clinic_id, label,"
                " issued_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [token_id, record.secret_sha256, role, clinic_id, label, issued_at, expires],
            )
            self._bump(cursor)
            self._log(cursor, "token_issued", actor, clinic_id=clinic_id,
                      detail=f"token {token_id} role {role} label {label!r}")
        return record, f"tl_{token_id}_{secret}"

    def revoke_token(self, token_id: str, actor: dict[str, Any] | None = None) -> TokenRecord:
        with self.db.transaction() as cursor:
            row = cursor.execute("SELECT * FROM api_tokens WHERE token_id = %s",
                                 [token_id]).fetchone()
            if row is None:
                raise UnknownToken(f"no token {token_id}")
            if row["revoked_at"] is None:
                cursor.execute("UPDATE api_tokens SET revoked_at = %s WHERE token_id = %s",
                               [now_iso(), token_id])
                self._bump(cursor)
                self._log(cursor, "token_revoked", actor, clinic_id=row["clinic_id"],
                          detail=f"token {token_id}")
            row["revoked_at"] = row["revoked_at"] or now_iso()
        return _token(row)

    def tokens(self, clinic_id: str | None = None) -> list[TokenRecord]:
        """Every token (or a clinic's), in the order issued: shown without secrets."""
        with self.db.transaction(write=False) as cursor:
            rows = cursor.execute(
                "SELECT * FROM api_tokens" + (" WHERE clinic_id = %s" if clinic_id else "")
                + " ORDER BY issued_at, token_id", [clinic_id] if clinic_id else []).fetchall()
        return [_token(row) for row in rows]

    def load(self) -> tuple[int, dict[str, TokenRecord], set[str], set[str]]:
        """Everything a worker caches: (version, tokens by id, registered clinic ids,
        the deactivated ones among them)."""
        with self.db.transaction(write=False) as cursor:
            version = self._version(cursor)
            tokens = {row["token_id"]: _token(row)
                      for row in cursor.execute("SELECT * FROM api_tokens").fetchall()}
            clinics = cursor.execute("SELECT clinic_id, deactivated_at FROM clinics").fetchall()
        return (version, tokens, {row["clinic_id"] for row in clinics},
                {row["clinic_id"] for row in clinics if row["deactivated_at"] is not None})

    def token(self, token_id: str) -> TokenRecord | None:
        with self.db.transaction(write=False) as cursor:
            row = cursor.execute("SELECT * FROM api_tokens WHERE token_id = %s",
                                 [token_id]).fetchone()
        return _token(row) if row else None

    def clinic_active(self, clinic_id: str) -> bool:
        with self.db.transaction(write=False) as cursor:
            row = cursor.execute("SELECT deactivated_at FROM clinics WHERE clinic_id = %s",
                                 [clinic_id]).fetchone()
            return row is not None and row["deactivated_at"] is None

    def clinic_exists(self, clinic_id: str) -> bool:
        with self.db.transaction(write=False) as cursor:
            return cursor.execute("SELECT 1 FROM clinics WHERE clinic_id = %s",
                                  [clinic_id]).fetchone() is not None

    def version(self) -> int:
        with self.db.transaction(write=False) as cursor:
            return self._version(cursor)

    # ---- the access log -------------------------------------------------

    def record_access(self, action: str, actor: dict[str, Any], **where: Any) -> None:
        with self.db.transaction() as cursor:
            self._log(cursor, action, actor, **where)

    def access_log(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.transaction(write=False) as cursor:
            return cursor.execute(
                "SELECT * FROM access_log WHERE entry_id > %s ORDER BY entry_id LIMIT %s",
                [after, limit],
            ).fetchall()

    @staticmethod
    def _log(cursor: Cursor, action: str, actor: dict[str, Any] | None, **where: Any) -> None:
        actor = actor or {"token_id": None, "token_label": "command line", "role": None}
        access_chain.link(cursor, [
            now_iso(), action, actor.get("token_id"), actor.get("token_label"),
            actor.get("role"), where.get("method"), where.get("route"),
            where.get("clinic_id"), where.get("programme_id"),
            where.get("remote_addr") or actor.get("remote_addr"), where.get("detail")])

    @staticmethod
    def _bump(cursor: Cursor) -> None:
        cursor.execute("UPDATE directory_version SET version = version + 1 WHERE id = 1")

    @staticmethod
    def _version(cursor: Cursor) -> int:
        row = cursor.execute("SELECT version FROM directory_version WHERE id = 1").fetchone()
        return int(row["version"]) if row else 0


def _token(row: dict[str, Any]) -> TokenRecord:
    return TokenRecord(row["token_id"], row["secret_sha256"], row["role"], row["clinic_id"],
                       row["label"], revoked=row["revoked_at"] is not None,
                       issued_at=row["issued_at"], expires_at=row.get("expires_at"),
                       revoked_at=row["revoked_at"])
