"""Marshmallow schemas: the single source of request validation and of the
OpenAPI document (flask-smorest generates /openapi.json from them)."""
