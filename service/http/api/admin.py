"""Administration: registering clinics, issuing and revoking tokens."""

from __future__ import annotations

from typing import Any

from flask import current_app

from service.http import examples
from service.http.access import TOKENS, actor, allow
from service.http.api.context import directory
from service.http.openapi import LedgerBlueprint, problems
from service.http.problems import Problem, not_found, validation_problem
from service.http.schemas.admin import (
    ClinicCreateSchema,
    ClinicListSchema,
    ClinicSchema,
    IssuedTokenSchema,
    TokenCreateSchema,
    TokenListQuerySchema,
    TokenListSchema,
    TokenSchema,
)
from service.storage.directory import ClinicExists, DirectoryError, UnknownClinic, UnknownToken

blp = LedgerBlueprint("admin", __name__, url_prefix="/v1", description="Clinics and tokens")


@blp.route("/clinics", methods=["POST"])
@blp.arguments(ClinicCreateSchema(), example=examples.CLINIC_CREATE)
@blp.response(201, ClinicSchema, example=examples.CLINIC_RECORD)
@problems(blp, 400, 401, 403, 408, 409, 413, 415)
@allow("admin")
def register_clinic(body: dict[str, Any]) -> Any:
    """Register a clinic (a tenant); its systems then get tokens for it."""
    try:
        return directory().add_clinic(body["clinic_id"], body["name"], actor())
    except ClinicExists as error:
        raise Problem(409, "clinic-exists", "Clinic already registered", str(error)) from None
    except DirectoryError as error:
        raise validation_problem({"name": [str(error)]}) from None


@blp.route("/clinics/<clinic:clinic_id>:deactivate", methods=["POST"])
@blp.response(200, ClinicSchema, example=examples.CLINIC_DEACTIVATED)
@problems(blp, 401, 403, 404)
@allow("admin")
def deactivate_clinic(clinic_id: str) -> Any:
    """Deactivate a clinic: its tokens stop working (every worker within a second) and
    none are issued for it; its records stay, readable by auditors and all-clinic tokens.

    Deactivating it again changes nothing.
    """
    try:
        clinic = directory().deactivate_clinic(clinic_id, actor())
    except UnknownClinic:
        raise not_found() from None
    current_app.extensions[TOKENS].expire()
    return clinic


@blp.route("/clinics/<clinic:clinic_id>:reactivate", methods=["POST"])
@blp.response(200, ClinicSchema, example=examples.CLINIC_RECORD)
@problems(blp, 401, 403, 404)
@allow("admin")
def reactivate_clinic(clinic_id: str) -> Any:
    """Reactivate a deactivated clinic: its tokens that are neither revoked nor
    expired work again (every worker within a second), and new ones can be issued.

    Revoke any token you do not trust before reactivating (`GET /v1/tokens?clinic_id=`
    lists them). Reactivating an active clinic changes nothing.
    """
    try:
        clinic, _ = directory().reactivate_clinic(clinic_id, actor())
    except UnknownClinic:
        raise not_found() from None
    current_app.extensions[TOKENS].expire()
    return clinic


@blp.route("/clinics", methods=["GET"])
@blp.response(200, ClinicListSchema, example=examples.CLINIC_LIST)
@problems(blp, 401, 403)
@allow("admin", "auditor")
def list_clinics() -> Any:
    """Every registered clinic."""
    return {"clinics": directory().clinics()}


@blp.route("/tokens", methods=["POST"])
@blp.arguments(TokenCreateSchema(), example=examples.TOKEN_CREATE)
@blp.response(201, IssuedTokenSchema, example=examples.ISSUED_TOKEN)
@problems(blp, 400, 401, 403, 408, 413, 415)
@allow("admin")
def issue_token(body: dict[str, Any]) -> Any:
    """Issue a token: its secret is in this answer only, never shown again.

    A writer token is for one clinic; a viewer token for one clinic or (no
    clinic_id) all; auditor and admin tokens are for all clinics.
    """
    try:
        record, token = directory().issue_token(
            body["role"], body["clinic_id"], body["label"], actor(),
            expires_at=body["expires_at"])
    except DirectoryError as error:
        raise Problem(422, "token-refused", "Token cannot be issued", str(error)) from None
    return {**record.public(), "token": token}


@blp.route("/tokens", methods=["GET"])
@blp.arguments(TokenListQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, TokenListSchema, example=examples.TOKEN_LIST)
@problems(blp, 401, 403, 422)
@allow("admin")
def list_tokens(clinic_id: str | None = None) -> Any:
    """Every token (or one clinic's): role, scope, label, when issued, when it expires,
    whether revoked. Never a secret: only a digest of each is stored."""
    return {"tokens": [record.public() for record in directory().tokens(clinic_id)]}


@blp.route("/tokens/<token_id>", methods=["DELETE"])
@blp.response(200, TokenSchema, example=examples.REVOKED_TOKEN)
@problems(blp, 401, 403, 404)
@allow("admin")
def revoke_token(token_id: str) -> Any:
    """Revoke a token by its id (the 16 hexadecimal characters after `tl_`).

    Every worker refuses it within a second; revoking it again is harmless.
    """
    try:
        record = directory().revoke_token(token_id, actor())
    except UnknownToken:
        raise not_found() from None
    # This worker refuses it from the next request; the others within a second.
    current_app.extensions[TOKENS].expire()
    return record.public()
