"""Checking JSON against a schema of the OpenAPI document (its 3.0 dialect)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs


def as_json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: `nullable` becomes a null type."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(value) for key, value in schema.items()
                 if key not in ("nullable", "discriminator")}
    if schema.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def misfits(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    """Why `instance` does not fit `schema` (its `$ref`s into `document`); empty if it does."""
    root = {**as_json_schema(schema), "components": as_json_schema(document["components"])}
    return [error.message for error in jsonschema_rs.validator_for(root).iter_errors(instance)]
