"""A fast path through our event schemas: the same fields, validators and hooks,
without marshmallow's general machinery.

Profiles showed marshmallow's generic load (error stores, missing and partial
handling, a call per field per layer) costing two fifths of a 100-event
batch post, and of every line of a bulk upload. For an input it can vouch
for, a schema compiled here loads exactly as `schema.load` would: each field's
own `_deserialize` and validators, the schema's own pre_load, validates_schema
and post_load hooks, unknown fields refused. Each schema becomes one generated
function; for our strict fields, marshmallow's UUID, Dict, List and Nested and
the common validators (OneOf, Length, Range, Regexp) it writes their checks out
inline, for the values JSON gives them (exact types), since a Python call per
field and per validator cost more than the checks. For anything else (a missing
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

import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing
from marshmallow.validate import Length, OneOf, Range, Regexp

from service.http.schemas.fields import (
    CONTROL_CHARACTER,
    RFC3339,
    Rfc3339DateTime,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
)

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


class _Source:
    """The text of one generated loader, and the values it names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"Unsure": Unsure, "MISSING": missing}

    def name(self, value: Any) -> str:
        """A name the generated code reaches `value` by."""
        key = f"_{len(self.names)}"
        self.names[key] = value
        return key

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def function(self, name: str) -> Loader:
        namespace = dict(self.names)
        exec("\n".join(self.lines), namespace)  # our own text, made from our schemas
        return namespace[name]  # type: ignore[no-any-return]


def _compile_schema(schema: Schema) -> Loader:
    """The schema's loader: one generated function, its fields' checks written out."""
    if schema.many or schema.unknown != RAISE or schema._hooks[VALIDATES]:
        raise NotCompilable("many, unknown fields kept, or per-field validators")
    source = _Source()
    hook_options = source.name({"partial": schema.partial, "unknown": RAISE})
    source.add(0, "def load(data):")
    for hook in _hooks(schema, PRE_LOAD):
        source.add(1, f"data = {source.name(hook)}(data, many=False, **{hook_options})")
    known = source.name(frozenset(schema.load_fields))
    source.add(1, f"if type(data) is not dict or not {known}.issuperset(data):")
    source.add(2, "raise Unsure")
    source.add(1, "result = {}")
    for name, field in schema.load_fields.items():
        if field.data_key is not None or field.attribute is not None:
            raise NotCompilable(f"field {name} is renamed")
        # As marshmallow reads it: data.get(name, missing).
        if field.required and not field.allow_none:  # most fields: missing or None, Unsure
            source.add(1, f"value = data.get({name!r})")
            source.add(1, "if value is None:")
            source.add(2, "raise Unsure")
            _load_field(source, 1, field)
            source.add(1, f"result[{name!r}] = value")
            continue
        source.add(1, f"value = data.get({name!r}, MISSING)")
        source.add(1, "if value is MISSING:")
        source.add(2, "raise Unsure" if field.required else "pass")
        source.add(1, "elif value is None:")
        source.add(2, f"result[{name!r}] = None" if field.allow_none else "raise Unsure")
        source.add(1, "else:")
        _load_field(source, 2, field)
        source.add(2, f"result[{name!r}] = value")
    for validator in _hooks(schema, VALIDATES_SCHEMA):
        source.add(1, f"{source.name(validator)}(result, many=False, **{hook_options})")
    for hook in _hooks(schema, POST_LOAD):
        source.add(1, f"result = {source.name(hook)}(result, many=False, **{hook_options})")
    source.add(1, "return result")
    return source.function("load")


def _compile_value(field: fields.Field) -> Loader:
    """A function loading one (not missing) value of `field`: a list's items."""
    source = _Source()
    source.add(0, "def load(value):")
    source.add(1, "if value is None:")
    source.add(2, "return None" if field.allow_none else "raise Unsure")
    _load_field(source, 1, field)
    source.add(1, "return value")
    return source.function("load")


def _load_field(source: _Source, indent: int, field: fields.Field) -> None:
    """Lines that load `value` (not None) into `value`, or raise Unsure."""
    if field.load_default is not missing:
        raise NotCompilable("a load_default")
    if field.pre_load or field.post_load:
        raise NotCompilable("a field's own pre_load or post_load functions")
    kind = _KINDS.get(type(field))
    if kind is not None:
        kind(source, indent, field)
        _validate_inline(source, indent, field, "str" if kind is _string else
                         "number" if kind in (_integer, _number) else "")
        return
    sized = False
    if isinstance(field, fields.Nested):
        if (field.many or field.only or field.exclude or field.unknown not in (None, RAISE)
                or not isinstance(field.schema, Schema)):
            raise NotCompilable("a partial or many Nested")
        source.add(indent, f"value = {source.name(_compile_schema(field.schema))}(value)")
    elif isinstance(field, fields.List):
        item = source.name(_compile_value(field.inner))
        source.add(indent, "if type(value) is not list:")
        source.add(indent + 1, "raise Unsure")
        source.add(indent, f"value = [{item}(item) for item in value]")
        sized = True
    elif (isinstance(field, fields.Mapping) and field.mapping_type is dict
          and type(field)._deserialize is fields.Mapping._deserialize
          and field.key_field is None and field.value_field is None):
        source.add(indent, "if type(value) is not dict:")
        source.add(indent + 1, "raise Unsure")
        source.add(indent, "value = dict(value)")
    else:
        source.add(indent, f"value = {source.name(field._deserialize)}(value, None, None)")
    _validate_inline(source, indent, field, "sized" if sized else "")


def _validate_inline(source: _Source, indent: int, field: fields.Field, kind: str) -> None:
    """Lines that run the field's validators on the loaded `value`; `kind` says
    what it is known to be by now ("str", "number", "sized" (a list) or "" for anything)."""
    for check in field.validators:
        if kind == "str" and type(check) is OneOf and _plain_strings(check.choices):
            source.add(indent, f"if value not in {source.name(frozenset(check.choices))}:")
        elif (kind == "str" and type(check) is Regexp
              and isinstance(check.regex.pattern, str)):
            source.add(indent, f"if {source.name(check.regex.match)}(value) is None:")
        elif (kind in ("str", "sized") and type(check) is Length
              and _numbers(check.min, check.max, check.equal)):
            source.add(indent, f"if not ({_length_test(source, check)}):")
        elif kind == "number" and type(check) is Range and _numbers(check.min, check.max):
            source.add(indent, f"if not ({_range_test(source, check)}):")
        else:  # anything else as marshmallow runs it (False refused: stricter than it)
            source.add(indent, f"if {source.name(check)}(value) is False:")
        source.add(indent + 1, "raise Unsure")


def _plain_strings(choices: Any) -> bool:
    # Membership in a set of plain strings is membership in the original choices.
    return isinstance(choices, list | tuple | set | frozenset) and all(
        type(choice) is str for choice in choices)


def _numbers(*bounds: Any) -> bool:
    return all(bound is None or type(bound) in (int, float) for bound in bounds)


def _length_test(source: _Source, check: Length) -> str:
    if check.equal is not None:
        return f"len(value) == {source.name(check.equal)}"
    tests = ["True"]
    if check.min is not None:
        tests.append(f"len(value) >= {source.name(check.min)}")
    if check.max is not None:
        tests.append(f"len(value) <= {source.name(check.max)}")
    return " and ".join(tests)


def _range_test(source: _Source, check: Range) -> str:
    tests = ["True"]
    if check.min is not None:
        tests.append(f"value {'>=' if check.min_inclusive else '>'} {source.name(check.min)}")
    if check.max is not None:
        tests.append(f"value {'<=' if check.max_inclusive else '<'} {source.name(check.max)}")
    return " and ".join(tests)


# ---- the field kinds written out: each exactly its class's _deserialize ----
# for the values JSON gives it (anything else: Unsure, and marshmallow decides).

def _string(source: _Source, indent: int, field: fields.Field) -> None:
    source.add(indent, "if type(value) is not str:")
    source.add(indent + 1, "raise Unsure")
    if not any(type(check) is OneOf and _plain_strings(check.choices)
               and not any(CONTROL_CHARACTER.search(choice) for choice in check.choices)
               for check in field.validators):  # (one of such choices has none)
        source.add(indent, f"if {source.name(CONTROL_CHARACTER.search)}(value):")
        source.add(indent + 1, "raise Unsure")


def _integer(source: _Source, indent: int, field: fields.Field) -> None:
    source.add(indent, "if type(value) is not int:")  # int(value) is value itself
    source.add(indent + 1, "raise Unsure")


def _number(source: _Source, indent: int, field: fields.Field) -> None:
    # float(value): a float itself, or an int's float (too large: Unsure)
    source.add(indent, f"if type(value) is int and -{source.name(2**1023)} < value < "
                       f"{source.name(2**1023)}:")
    source.add(indent + 1, "value = float(value)")
    source.add(indent, f"if type(value) is not float or not {source.name(math.isfinite)}(value):")
    source.add(indent + 1, "raise Unsure")


def _boolean(source: _Source, indent: int, field: fields.Field) -> None:
    source.add(indent, "if type(value) is not bool:")
    source.add(indent + 1, "raise Unsure")


def _uuid(source: _Source, indent: int, field: fields.Field) -> None:
    source.add(indent, "if type(value) is not str:")
    source.add(indent + 1, "raise Unsure")
    source.add(indent, f"value = {source.name(_load_uuid)}(value)")


def _rfc3339(source: _Source, indent: int, field: fields.Field) -> None:
    if field.format != "iso" or field.default_timezone is not None:
        raise NotCompilable("a date-time of another format or a default time zone")
    source.add(indent, f"if type(value) is not str or not {source.name(RFC3339.fullmatch)}(value):")
    source.add(indent + 1, "raise Unsure")
    source.add(indent, f"value = {source.name(_load_rfc3339)}(value)")


def _load_uuid(text: str) -> uuid.UUID:
    # uuid.UUID(text) strips "urn:", "uuid:", braces and dashes, wants 32 digits
    # left and reads them with int(hex, 16). When dashes alone leave 32 characters
    # that int reads, nothing else was there to strip: the same number, set as
    # UUID.__init__ sets it, without its general parsing (a third of its cost).
    hex_digits = text.replace("-", "")
    if len(hex_digits) == 32:
        try:
            number = int(hex_digits, 16)
        except ValueError:
            pass
        else:
            loaded = _new_object(uuid.UUID)
            _set_attribute(loaded, "int", number)
            _set_attribute(loaded, "is_safe", _SAFETY_UNKNOWN)
            return loaded  # type: ignore[no-any-return]
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        raise Unsure from None


_new_object, _set_attribute = object.__new__, object.__setattr__
#: UUID.__init__'s default; an enum member looked up once (a lookup per UUID
#: went through the enum's descriptor: a fifth of the time to make one).
_SAFETY_UNKNOWN = uuid.SafeUUID.unknown


def _load_rfc3339(text: str) -> datetime:
    # Rfc3339DateTime's steps after its pattern: fromisoformat (AwareDateTime's
    # "iso"), an offset required, a UTC form required.
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Unsure from None
    if parsed.utcoffset() is None:
        raise Unsure
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise Unsure from None
    return parsed


_KINDS: dict[type[fields.Field], Callable[[_Source, int, fields.Field], None]] = {
    StrictString: _string, StrictInteger: _integer, StrictNumber: _number,
    StrictBoolean: _boolean, fields.UUID: _uuid, Rfc3339DateTime: _rfc3339,
}
