"""Strict scalar fields: JSON from clinic systems is taken as it is sent.

marshmallow's own Integer, Float and Boolean accept strings ("5", "true") and
booleans as numbers; an integrator who sends those has a bug we should show
them, not hide.
"""

from __future__ import annotations

import math
from typing import Any

from marshmallow import ValidationError, fields


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


class StrictString(fields.String):
    """A JSON string without control characters."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
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
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError:
            raise ValidationError(
                "Not an RFC 3339 date-time with an offset (e.g. 2026-03-01T09:30:00Z)."
            ) from None
