"""Strict scalar fields: JSON from clinic systems is taken as it is sent.

marshmallow's own Integer, Float and Boolean accept strings ("5", "true") and
booleans as numbers; an integrator who sends those has a bug we should show
them, not hide.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields
from marshmallow.validate import OneOf, Regexp

#: The largest integer the stores keep (a signed 64-bit BIGINT). Numbers that
#: are compared with stored positions and versions are bounded by it: SQLite's
#: driver cannot even bind a larger one (it would be a 500, not a 422).
MAX_STORED_INTEGER = 2**63 - 1
#: RFC 3339's date-time (section 5.6): seconds required, an offset required.
#: Python's own parser accepts much more of ISO 8601 (week dates, "T09Z").
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


class StrictInteger(fields.Integer):
    """A JSON integer (not a string, not a boolean, not 5.0)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictNumber(fields.Float):
    """A finite JSON number (integer or decimal), returned as float."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("Not a finite number.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false, nothing else."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean (true or false).")
        return value


#: A C0 control character other than tab and newline.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f]")


class StrictString(fields.String):
    """A JSON string without control characters (tab and newline allowed)."""

    #: The same rule in the OpenAPI document, for strings no other pattern or
    #: choice already constrains (a pattern of their own excludes them anyway).
    NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u0008\\u000b-\\u001f]*$"

    def __init__(self, **kwargs: Any) -> None:
        validators = kwargs.get("validate") or []
        if not isinstance(validators, list | tuple):
            validators = [validators]
        if not any(isinstance(v, Regexp | OneOf) for v in validators):
            kwargs["metadata"] = {"pattern": self.NO_CONTROL_CHARACTERS,
                                  **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        if CONTROL_CHARACTER.search(value):
            raise ValidationError("Control characters are not allowed.")
        return value


class Rfc3339DateTime(fields.AwareDateTime):
    """An RFC 3339 timestamp with an explicit offset (Z or ±hh:mm)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or "T" not in value.upper():
            raise ValidationError("Not an RFC 3339 date-time (e.g. 2026-03-01T09:30:00+01:00).")
        try:
            if not RFC3339.fullmatch(value):
                raise ValidationError("not RFC 3339")
            parsed: datetime = super()._deserialize(value, attr, data, **kwargs)
        except ValidationError:
            raise ValidationError(
                "Not an RFC 3339 date-time with an offset (e.g. 2026-03-01T09:30:00Z)."
            ) from None
        try:
            # Stored and compared in UTC: 0001-01-01T00:00:00+01:00 has no UTC form.
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError(
                "Out of range: in UTC it falls outside the years 1-9999."
            ) from None
        return parsed
