"""The documentation in the repository says what the service does: the event
catalogue is generated from the domain's own definitions, every metric the
API shows is defined, and the README links them instead of files users do
not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.http.app import create_app
from tests.docs import event_reference
from tests.stores import components_at, initialise

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: The read models' answers whose every field docs/metrics.md defines.
METRIC_SCHEMAS = ("ProgrammeSummaryDetail", "PainPoint", "ClinicDashboard",
                  "NetworkDashboard", "Week", "AdverseEventCounts")


def test_the_event_catalogue_page_is_generated_from_the_domain():
    written = event_reference.generated_part(event_reference.DOCUMENT.read_text())
    assert written == event_reference.render(), (
        "docs/events.md is out of date with domain/events.py: run "
        "`.venv/bin/python -m tests.docs.event_reference`")


def test_the_event_catalogue_page_names_every_type_field_and_rule():
    from domain import errors
    from domain.events import EVENT_TYPES

    text = event_reference.DOCUMENT.read_text()
    for event_type in EVENT_TYPES.values():
        assert f"### `{event_type.name}`" in text
        for field in event_type.fields:
            assert f"| `{field.name}` |" in text
    for rule in errors.DomainRuleViolation.__subclasses__():
        assert f"| `{rule.rule}` |" in text
    assert "replaced whole, not merged" in text


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('document')}/ledger.sqlite"
    initialise(url)
    components = components_at(url)
    try:
        yield create_app(components).test_client().get("/openapi.json").json
    finally:
        components.close()


def test_every_metric_the_api_shows_is_defined(document):
    text = (DOCS / "metrics.md").read_text()
    schemas = document["components"]["schemas"]
    undefined = [f"{schema}.{name}" for schema in METRIC_SCHEMAS
                 for name in schemas[schema]["properties"] if f"`{name}`" not in text]
    assert not undefined, f"docs/metrics.md does not define {undefined}"


def test_the_readme_links_the_docs_and_no_page_points_at_what_users_do_not_have():
    readme = (ROOT / "README.md").read_text()
    assert "docs/events.md" in readme and "docs/metrics.md" in readme
    for page in [*ROOT.glob("*.md"), *DOCS.glob("*.md")]:
        text = page.read_text()
        for missing in ("domain.md", "quality.md", "api.md", "style.md", "shared/"):
            assert missing not in text, f"{page.name} points at {missing}"
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name} links {target}"


def test_no_code_comment_points_at_the_product_spec():
    """Comments name the docs a reader of the repository has (docs/events.md,
    docs/metrics.md, BENCHMARKS.md), never the spec it was written from."""
    spec = re.compile(r"\b(domain|quality|api|style)\.md\b|\.\./shared")
    sources = [path for folder in ("domain", "projections", "service", "bench", "tests")
               for suffix in ("*.py", "*.js") for path in (ROOT / folder).rglob(suffix)
               if "vendor" not in path.parts and path != Path(__file__).resolve()]
    assert sources
    pointing = [str(path.relative_to(ROOT)) for path in sources
                if spec.search(path.read_text(encoding="utf-8", errors="replace"))]
    assert pointing == []
