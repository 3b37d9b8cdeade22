"""An erased programme leaves FHIR without its patient or its words: its Bundle
carries neither the patient_ref nor the free text, nor the erased marker in
their place, on both stores (the Bulk export maps resources with the same
functions, service/fhir/terms.py `personal`)."""

from __future__ import annotations

import json

from domain.personal import ERASED
from tests.fhir.checks import check_bundle
from tests.privacy.test_erasure import MARKER, A, World


def test_an_erased_programme_s_bundle_has_no_patient_and_no_text(app, client, tokens):
    world = World(app, client, tokens)
    url = f"/v1/clinics/{A}/programmes/{world.marked}/fhir"
    before = client.get(url, headers=tokens.viewer_a)
    assert before.status_code == 200
    assert MARKER in before.get_data(as_text=True)  # readable until erased

    assert world.erase(world.marked).status_code in (200, 201)
    after = client.get(url, headers=tokens.viewer_a)
    assert after.status_code == 200
    text = after.get_data(as_text=True)
    assert MARKER not in text and ERASED not in text
    bundle = after.json
    check_bundle(bundle)
    [episode] = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "EpisodeOfCare"]
    patient = episode["patient"]
    assert "identifier" not in patient
    assert json.dumps(patient).find("masked") >= 0  # data-absent-reason, as documented
    # The other patient's programme is untouched.
    other = client.get(f"/v1/clinics/{A}/programmes/{world.other}/fhir",
                       headers=tokens.viewer_a)
    assert other.status_code == 200 and "identifier" in json.dumps(other.json)
