"""schemathesis against /openapi.json, every operation, all checks (R3).

Each operation is fuzzed with schema-valid data (positive) and schema-breaking
data (negative), authenticated with a token of a role the operation's
`x-roles` allows. On top of schemathesis's own checks, `status_is_listed`
insists that each status is listed for its operation: flask-smorest adds a
`default` response to every operation, which would otherwise excuse any
status at all.

To reach past the 404 of an unknown clinic, path parameters are often
replaced by real ones (a registered clinic, a recorded programme, a token
that may be revoked), and event posts often carry a realistic body: the
document types each event type's data, but cannot say which events the
rules accept next (a session after the start, a resume while paused).

Used in-process through the WSGI loader in CI (pytest 9 breaks
schemathesis's `from_fixture`), and against a live gunicorn in the soak.
"""

from __future__ import annotations

import json
import random
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from tests import builders as b

EVENTS_PATH = "/v1/clinics/{clinic_id}/programmes/{programme_id}/events"
BULK_PATH = "/v1/clinics/{clinic_id}/events:bulk"
#: Schema-valid requests that may still be refused with 422, and why (the
#: document cannot say it): schemathesis's positive_data_acceptance allows
#: 2xx, 401, 403, 404 and 409 everywhere else.
REFUSED_THOUGH_SCHEMA_VALID = {
    ("POST", EVENTS_PATH): "the domain rules (the order of events, rule 5's force)",
    ("POST", "/v1/tokens"): "a writer token needs a clinic, auditor and admin tokens none",
    ("GET", "/v1/clinics/{clinic_id}/programmes"): "a cursor must be one the service gave out",
}

#: Statuses a FHIR route answers schema-valid requests with, and why.
FHIR_REFUSALS = {
    # The document types a Bundle as an object: FHIR's own schemas (fhir.resources'
    # R4B models, which the service applies) say what its entries must be.
    ("POST", "/v1/clinics/{clinic_id}/fhir"): ["400", "413", "422"],
    # One export per clinic at a time: a kick-off while one runs is told to wait.
    ("GET", "/v1/clinics/{clinic_id}/fhir/$export"): ["429"],
}


@schemathesis.serializer("application/x-ndjson")
def ndjson_lines(ctx: Any, value: Any) -> bytes:
    """A bulk upload: a generated list as its lines, anything else as one line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item, default=str).encode() + b"\n" for item in items)


def config(document: dict[str, Any]) -> SchemathesisConfig:
    """All checks; what each operation may answer follows from `document`.

    A 304 that an operation lists answers an If-None-Match (a `*` matches any
    body), a valid request that needs no body in reply.

    A 5xx that an operation lists (503: a projection still catching up, the
    store unreachable) is its documented way to say "retry", not a crash:
    `retry_after_on_503` checks that it says when.
    """
    accepted = ["2xx", "401", "403", "404", "409"]
    operations = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method == "parameters":
                continue
            listed_5xx = [s for s in operation.get("responses", {}) if s.startswith("5")]
            positive = [*accepted, *listed_5xx]
            if "304" in operation.get("responses", {}):
                positive.append("304")  # If-None-Match (even `*`) with what it holds
            if (method.upper(), path) in REFUSED_THOUGH_SCHEMA_VALID:
                positive.append("422")
            positive.extend(FHIR_REFUSALS.get((method.upper(), path), []))
            checks = {
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx",
                                                             *listed_5xx]},
                "positive_data_acceptance": {"expected-statuses": positive},
            }
            if path == BULK_PATH:
                # The upload is taken whole (200) and each line answered on its own:
                # a broken line is rejected in its result line, not by the status.
                checks["negative_data_rejection"] = {"expected-statuses": [
                    "200", "400", "401", "403", "404", "413", "415", "422"]}
            operations.append({
                "include-name": f"{method.upper()} {path}",  # one filter: path AND method
                "checks": checks,
            })
    return SchemathesisConfig.from_dict({
        "checks": {"positive_data_acceptance": {"expected-statuses": accepted}},
        "operations": operations,
    })


def status_is_listed(ctx: Any, response: Any, case: Any) -> bool | None:
    """The status is one the operation lists, not only covered by `default`."""
    listed = set(case.operation.definition.raw.get("responses", {}))
    status = str(response.status_code)
    if status not in listed and f"{status[0]}XX" not in listed:
        raise AssertionError(
            f"{case.operation.label} answered {status}, which its responses do not list "
            f"(it lists {sorted(listed)})"
        )
    return None


def retry_after_on_503(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 503 tells the client when to retry."""
    if response.status_code == 503 and "retry-after" not in response.headers:
        raise AssertionError(f"{case.operation.label} answered 503 without Retry-After")
    return None


CHECKS = [status_is_listed, retry_after_on_503]


def refused_by_gunicorn(response: Any) -> bool:
    """gunicorn's own refusal of a request line or header over its limits
    (4094 bytes: a negative case's 5 KB query string), an HTML page sent
    before the app sees the request: HTTP framing, not the API's contract."""
    return response.status_code in (400, 414, 431) and (
        b"Request Line is too large" in response.content
        or b"Request Header Fields Too Large" in response.content
        or b"Limit request headers fields" in response.content)


@dataclass
class Known:
    """Real values for path parameters, and the tokens to call with."""

    clinic_id: str
    programme_ids: list[str]
    #: Token ids that a fuzzed DELETE /v1/tokens/{token_id} may revoke.
    spare_token_ids: list[str]
    #: "Bearer ..." for each role.
    authorization: dict[str, str]

    def for_roles(self, roles: list[str]) -> str | None:
        # A writer token is for `clinic_id` only; prefer a role that sees all.
        for role in sorted(roles, key=lambda r: r == "writer"):
            if role in self.authorization:
                return self.authorization[role]
        return None


@dataclass
class FuzzReport:
    cases: Counter = field(default_factory=Counter)  # by operation label and status
    failures: dict[str, str] = field(default_factory=dict)  # "operation mode" -> report
    #: Requests gunicorn refused before the app saw them (see refused_by_gunicorn).
    refused_by_gunicorn: int = 0

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def realistic_events() -> st.SearchStrategy[dict[str, Any]]:
    """Envelopes a clinic system would post (some refused by the rules, which is fine)."""
    day = st.floats(0, 60, allow_nan=False)
    one = st.one_of(
        day.map(lambda d: b.session(d)),
        st.tuples(st.integers(0, 10), day).map(lambda a: b.pain(*a)),
        day.map(lambda d: b.missed(d)),
        day.map(lambda d: b.paused(d)),
        day.map(lambda d: b.resumed(d)),
        st.tuples(st.sampled_from(["mild", "moderate", "severe"]), day)
        .map(lambda a: b.adverse(*a)),
        st.tuples(day, st.integers(1, 35))
        .map(lambda a: b.adjusted(a[0], sessions_per_week=a[1])),
        day.map(lambda d: b.discharged(d)),
        st.just(None).map(lambda _: b.started()),
    )
    return st.one_of(
        one,
        st.tuples(st.lists(one, min_size=1, max_size=4), st.none() | st.integers(0, 30)).map(
            lambda a: {"events": a[0], **({} if a[1] is None else {"expected_version": a[1]})}
        ),
    )


def fuzz(schema: Any, known: Known, *, max_examples: int, seed: int | None = None,
         on_case: Callable[[str, int], None] | None = None) -> FuzzReport:
    """Fuzz every operation of `schema` (a loaded schemathesis schema)."""
    report = FuzzReport()

    @schema.auth(refresh_interval=None)
    class ByRole:
        def get(self, case: Any, context: Any) -> str | None:
            return known.for_roles(context.operation.definition.raw.get("x-roles", []))

        def set(self, case: Any, data: str | None, context: Any) -> None:
            if data:
                case.headers = {**(case.headers or {}), "Authorization": data}

    rng = random.Random(seed)
    for result in schema.get_all_operations():
        operation = result.ok()
        has_inputs = bool(operation.path_parameters or operation.query or operation.body
                          or operation.headers)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not has_inputs:
                continue  # nothing to break: hypothesis could not generate a case
            strategy = st.tuples(operation.as_strategy(generation_mode=mode),
                                 st.integers(0, 4), realistic_events())
            label = f"{operation.label} {mode.value}"

            try:
                _fuzz_operation(operation.label, strategy, known, report, rng, max_examples,
                                seed is not None, on_case)
            except Unsatisfiable:
                continue
            except (AssertionError, BaseExceptionGroup) as failure:
                detail = str(failure)
                if isinstance(failure, BaseExceptionGroup):
                    # A flaky case's summary alone does not say what failed the first time.
                    detail += "".join(f"\n- {type(inner).__name__}: {inner}"
                                      for inner in failure.exceptions)
                report.failures[label] = detail[:3000]
    return report


def _fuzz_operation(label: str, strategy: st.SearchStrategy[Any], known: Known,
                    report: FuzzReport, rng: random.Random, max_examples: int,
                    derandomize: bool, on_case: Callable[[str, int], None] | None) -> None:
    @settings(max_examples=max_examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck), derandomize=derandomize)
    @given(drawn=strategy)
    def run(drawn: tuple[Any, int, dict[str, Any]]) -> None:
        case, pick, body = drawn
        _use_known_values(case, known, pick, body, rng)
        response = case.call()
        if refused_by_gunicorn(response):
            report.refused_by_gunicorn += 1
            return
        case.validate_response(response, additional_checks=CHECKS, transport_kwargs={})
        report.cases[(label, response.status_code)] += 1
        if on_case:
            on_case(label, response.status_code)

    with warnings.catch_warnings():
        # Hypothesis warns when the global `random` changed while it drew a case.
        # Our strategies never use it (rng above is our own), but the app's
        # PostgreSQL pool does, in its own threads (psycopg_pool's jitter of a new
        # connection's lifetime): when that fell in a draw, the warning (an error
        # under the suite's filters) failed the first call of a case and not its
        # replay, and hypothesis called the case flaky.
        warnings.filterwarnings("ignore", message=RANDOM_IN_STRATEGY,
                                category=HypothesisDeprecationWarning)
        run()


#: The start of Hypothesis's warning about the global `random` in a strategy.
RANDOM_IN_STRATEGY = "Do not use the `random` module inside strategies"


def _use_known_values(case: Any, known: Known, pick: int, body: dict[str, Any],
                      rng: random.Random) -> None:
    """Most of the time, aim the case at things that exist (unless it tests a bad path)."""
    path_mode = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    if pick == 0 or not case.path_parameters or (path_mode and not path_mode.mode.is_positive):
        return
    parameters = dict(case.path_parameters)
    if "clinic_id" in parameters:
        parameters["clinic_id"] = known.clinic_id
    if "programme_id" in parameters:
        parameters["programme_id"] = (rng.choice(known.programme_ids) if pick > 1
                                      else str(uuid.uuid4()))
    if "token_id" in parameters and known.spare_token_ids:
        parameters["token_id"] = rng.choice(known.spare_token_ids)
    case.path_parameters = parameters
    body_mode = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
    if (case.operation.path == EVENTS_PATH and pick >= 3
            and (body_mode is None or body_mode.mode.is_positive)):
        case.body = body


def load_wsgi(app: Any) -> Any:
    document = app.test_client().get("/openapi.json").json
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config(document))


def load_url(base_url: str) -> Any:
    with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=30) as response:
        document = json.load(response)
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config(document))
