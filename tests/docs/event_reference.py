"""The generated part of docs/events.md: every event type and field of the
catalogue (domain/events.py), and every rule the domain refuses events by
(domain/errors.py), as Markdown.

docs/events.md keeps its prose by hand; between the two markers below it holds
exactly what `render()` returns, and tests/docs/test_docs.py fails when the
two differ. After changing the catalogue, rewrite it with

    .venv/bin/python -m tests.docs.event_reference
"""

from __future__ import annotations

import inspect
from pathlib import Path

from domain import errors
from domain.events import EVENT_TYPES, Field, Kind

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "events.md"
BEGIN = "<!-- generated from domain/events.py and domain/errors.py: begin -->"
END = "<!-- generated: end (rewrite with `.venv/bin/python -m tests.docs.event_reference`) -->"


def values(spec: Field) -> str:
    """What a field takes, in words."""
    match spec.kind:
        case Kind.INTEGER:
            return f"integer, {spec.minimum} to {spec.maximum}"
        case Kind.NUMBER:
            return f"number (decimals allowed), {spec.minimum} to {spec.maximum}"
        case Kind.BOOLEAN:
            return "`true` or `false`"
        case Kind.CHOICE:
            return "one of " + ", ".join(f"`{c}`" for c in spec.choices)
        case Kind.TEXT:
            return f"text, 1 to {spec.max_length} characters (no control characters " \
                   "but tab and newline)"
        case Kind.PATTERN:
            return f"text matching `{spec.pattern}`"
        case Kind.UUID:
            return "a UUID"
        case Kind.OBJECT:
            return "an object: " + ", ".join(f"`{f.name}`" for f in spec.fields) + " (below)"
        case Kind.CORRECTED_DATA:
            return "an object: the whole `data` of the corrected event's type"
    raise ValueError(f"no words for {spec.kind} fields")


def table(declared: tuple[Field, ...], prefix: str = "") -> list[str]:
    rows = ["| field | required | takes | meaning |", "|---|---|---|---|"]
    nested: list[str] = []
    for spec in declared:
        personal = " Personal: it may identify the patient." if spec.personal else ""
        rows.append(f"| `{prefix}{spec.name}` | {'yes' if spec.required else 'no'} | "
                    f"{values(spec)} | {spec.description}{personal} |")
        if spec.kind is Kind.OBJECT:
            nested += ["", f"`{prefix}{spec.name}`:", "", *table(spec.fields, "")]
    return rows + nested


def rules() -> list[str]:
    """Every rule the domain refuses an event by: its `rule` slug and what it says."""
    rows = ["| `rule` | what it means |", "|---|---|"]
    for rule in errors.DomainRuleViolation.__subclasses__():
        doc = inspect.getdoc(rule) or ""
        rows.append(f"| `{rule.rule}` | {doc} |")
    return rows


def render() -> str:
    lines = [BEGIN, "", "## Event types", ""]
    for event_type in EVENT_TYPES.values():
        lines += [f"### `{event_type.name}`", "", event_type.description, "",
                  f"Schema version {event_type.version}."]
        lines += [f"- {change}" for change in event_type.changes]
        lines.append("")
        if event_type.correctable:
            lines += ["A later `EntryCorrected` may replace its data (see Corrections).", ""]
        if event_type.fields:
            lines += table(event_type.fields)
        else:
            lines.append("`data` is an empty object: `{}`.")
        lines.append("")
    lines += ["## Rules: the `rule` of a 422 `domain-rule` problem", "", *rules(), "", END]
    return "\n".join(lines) + "\n"


def generated_part(text: str) -> str:
    """The part of docs/events.md between the markers, markers included."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end] + "\n"


def main() -> None:
    text = DOCUMENT.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END) + 1
    DOCUMENT.write_text(text[:start] + render() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
