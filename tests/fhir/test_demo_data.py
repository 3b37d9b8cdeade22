"""The demo's whole history as FHIR: every programme's Bundle, resource by
resource, parsed by fhir.resources R4B, every reference resolved, on both stores."""

from __future__ import annotations

from collections import Counter

import pytest

from service.demo.seeding import seed_demo
from service.demo.simulation import demo_clinics, simulate
from service.fhir.reads import programme_bundle
from tests.fhir.checks import check_bundle
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
