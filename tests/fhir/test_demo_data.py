"""The demo's whole history as FHIR: every programme's Bundle, resource by
resource, parsed by fhir.resources R4B, every reference resolved, on both stores."""

from __future__ import annotations

from collections import Counter

import pytest

from service.demo.seeding import seed_demo
from service.demo.simulation import demo_clinics, simulate
from service.fhir.reads import programme_bundle
from tests.fhir.checks import check_bundle, parse
from tests.stores import components_at

CLINICS, PROGRAMMES = 2, 15


@pytest.fixture
def store(store_url):
    components = components_at(store_url)
    yield components
    components.close()


def test_every_demo_programme_is_valid_fhir(store):
    seed_demo(store, clinics=CLINICS, programmes=PROGRAMMES, issue_tokens=False)
    names = {c["clinic_id"]: c["name"] for c in store.directory.clinics()}
    emitted: Counter[str] = Counter()
    recorded: Counter[str] = Counter()
    for simulated in simulate(1, demo_clinics(CLINICS), PROGRAMMES):
        clinic, pid = simulated.clinic_id, simulated.programme_id
        bundle = programme_bundle(store.programmes, clinic, names[clinic], pid,
                                  f"https://ledger.test/v1/clinics/{clinic}/fhir")
        emitted.update(r["resourceType"] for r in check_bundle(bundle))
        recorded.update(e["type"] for e in store.programmes.history(clinic, pid))
    programmes = CLINICS * PROGRAMMES
    assert emitted["EpisodeOfCare"] == emitted["Organization"] == programmes
    assert emitted["Procedure"] == recorded["SessionCompleted"] + recorded["SessionMissed"]
    assert emitted["Observation"] == recorded["PainReported"] + programmes  # + baselines
    assert emitted["CarePlan"] == recorded["PlanAdjusted"] + programmes
    assert emitted["AdverseEvent"] == recorded["AdverseEventReported"]
    assert emitted["Provenance"] == recorded["EntryCorrected"]
    # The demo has every kind of event, so every mapping was checked here.
    assert all(recorded[kind] for kind in ("SessionMissed", "PlanAdjusted",
                                           "AdverseEventReported", "EntryCorrected",
                                           "ProgrammePaused", "ProgrammeDischarged"))


def test_the_demo_s_whole_bulk_export_validates_resource_by_resource(store, tmp_path):
    import json

    seed_demo(store, clinics=CLINICS, programmes=PROGRAMMES, issue_tokens=False)
    exports = store.fhir_exports
    exports.root = tmp_path
    types: set[str] = set()
    for clinic in store.directory.clinics():
        job = exports.jobs.create(clinic["clinic_id"], "http://localhost/x",
                                  ("Organization", "EpisodeOfCare", "Condition", "CarePlan",
                                   "Procedure", "Observation", "AdverseEvent", "Provenance"),
                                  None)
        assert exports.start(job)
        exports.wait(job.job_id, timeout=120)
        done = exports.jobs.get(clinic["clinic_id"], job.job_id)
        assert done.status == "completed", done.error
        counted = 0
        for item in done.output:
            lines = (exports.directory(job.job_id) / f"{item['type']}.ndjson").read_text()
            for line in lines.splitlines():
                resource = json.loads(line)
                assert resource["resourceType"] == item["type"]
                parse(resource)
                counted += 1
        assert counted == sum(item["count"] for item in done.output) > PROGRAMMES * 5
        types |= {item["type"] for item in done.output}
    assert types == {"Organization", "EpisodeOfCare", "Condition", "CarePlan", "Procedure",
                     "Observation", "AdverseEvent", "Provenance"}
