"""What every FHIR document we emit must pass: each resource parsed by the
fhir.resources R4B model of its type, and every reference in a Bundle resolved
to one of its entries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B import get_fhir_model_class


def parse(resource: dict[str, Any]) -> Any:
    """The resource as its R4B model (raises if it is not valid FHIR)."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def references(value: Any) -> Iterator[str]:
    """Every literal reference (`"reference": "Type/id"`) anywhere in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def check_bundle(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Parse the Bundle and each resource in it; every reference resolves to an
    entry (relative ones against the entry's base, as FHIR resolves them).
    Answers the resources."""
    parse(bundle)
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    resources = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        parse(resource)
        assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")
        base = entry["fullUrl"][: -len(f"/{resource['resourceType']}/{resource['id']}")]
        for ref in references(resource):
            assert f"{base}/{ref}" in urls or ref in urls, f"{ref} does not resolve"
        resources.append(resource)
    ids = [(r["resourceType"], r["id"]) for r in resources]
    assert len(ids) == len(set(ids)), "two entries share a type and id"
    return resources
