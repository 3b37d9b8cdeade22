"""A fast path through our event schemas: the same fields, validators and hooks,
without marshmallow's general machinery.

Profiles showed marshmallow's generic load (error stores, missing and partial
handling, a call per field per layer) costing two fifths of a 100-event
batch post, and of every line of a bulk upload. For an input it can vouch
for, a schema compiled here loads exactly as `schema.load` would: each field's
own `_deserialize` and validators, the schema's own pre_load, validates_schema
and post_load hooks, unknown fields refused. For anything else (a missing
required field, a field that fails, an unknown one, a value a hook refuses)
it gives up, and `schema.load` decides, with its error messages. So
marshmallow stays the one source of validation: the fast path never accepts
what it would refuse, nor loads anything differently (tests/api/test_fast_load.py
holds the two to each other over generated inputs).

A schema opts in by mixing in `FastLoad`; a schema the compiler does not
understand (a hook that wants the original data or the whole collection, a
per-field @validates, a data_key) simply always takes marshmallow's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing

#: Off only in the tests that compare the fast path with marshmallow's own.
ENABLED = True

Loader = Callable[[Any], Any]


class Unsure(Exception):
    """The fast path cannot vouch for this input: marshmallow decides."""


class NotCompilable(Exception):
    """This schema uses something the fast path does not reproduce."""


class FastLoad(Schema):
    """Mix into a schema to load it through the fast path when it can."""

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None,
             unknown: str | None = None) -> Any:
        if ENABLED and many is None and partial is None and unknown in (None, RAISE):
            loader = compiled(self)
            if loader is not None:
                try:
                    return loader(data)
                except (Unsure, ValidationError):
                    pass  # marshmallow's own load says what is wrong
        return super().load(data, many=many, partial=partial, unknown=unknown)


def compiled(schema: Schema) -> Loader | None:
    """The schema's fast loader, made once per schema instance (None: not compilable)."""
    found = schema.__dict__.get("_fast_loader", _NOT_YET)
    if found is _NOT_YET:
        try:
            found = _compile_schema(schema)
        except NotCompilable:
            found = None
        schema.__dict__["_fast_loader"] = found
    return found  # type: ignore[no-any-return]


_NOT_YET = object()


def _hooks(schema: Schema, tag: str) -> list[Callable[..., Any]]:
    found = []
    for attr_name, pass_collection, options in schema._hooks[tag]:
        if pass_collection or options.get("pass_original"):
            raise NotCompilable(f"{tag} hook {attr_name} wants more than the data")
        found.append(getattr(schema, attr_name))
    return found


def _compile_schema(schema: Schema) -> Loader:
    if schema.many or schema.unknown != RAISE or schema._hooks[VALIDATES]:
        raise NotCompilable("many, unknown fields kept, or per-field validators")
    pre_load, validators = _hooks(schema, PRE_LOAD), _hooks(schema, VALIDATES_SCHEMA)
    post_load = _hooks(schema, POST_LOAD)
    plan = []
    for name, field in schema.load_fields.items():
        if field.data_key is not None or field.attribute is not None:
            raise NotCompilable(f"field {name} is renamed")
        plan.append((name, _compile_field(field), field.required, field.allow_none))
    known = frozenset(name for name, *_ in plan)
    hook_options = {"partial": schema.partial, "unknown": RAISE}

    def load(data: Any) -> Any:
        for hook in pre_load:
            data = hook(data, many=False, **hook_options)
        if not isinstance(data, dict) or not known.issuperset(data):
            raise Unsure
        result: dict[str, Any] = {}
        for name, load_field, required, allow_none in plan:
            if name not in data:
                if required:
                    raise Unsure
                continue
            value = data[name]
            if value is None:
                if not allow_none:
                    raise Unsure
                result[name] = None
            else:
                result[name] = load_field(value)
        for validator in validators:
            validator(result, many=False, **hook_options)
        for hook in post_load:
            result = hook(result, many=False, **hook_options)
        return result

    return load


def _compile_field(field: fields.Field) -> Loader:
    if field.load_default is not missing:
        raise NotCompilable("a load_default")
    checks = list(field.validators)
    if isinstance(field, fields.Nested):
        if field.many or field.only or field.exclude or not isinstance(field.schema, Schema):
            raise NotCompilable("a partial or many Nested")
        inner = _compile_schema(field.schema)
        return _validated(inner, checks)
    if isinstance(field, fields.List):
        one = _compile_field(field.inner)

        def load_list(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise Unsure
            return [one(item_value) for item_value in value]

        return _validated(load_list, checks)

    deserialize = field._deserialize

    def load_value(value: Any) -> Any:
        return deserialize(value, None, None)

    return _validated(load_value, checks)


def _validated(load: Loader, checks: list[Callable[[Any], Any]]) -> Loader:
    if not checks:
        return load

    def checked(value: Any) -> Any:
        loaded = load(value)
        for check in checks:
            if check(loaded) is False:  # marshmallow 4 ignores False; be stricter
                raise Unsure
        return loaded

    return checked
