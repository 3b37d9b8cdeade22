"""The dashboard pages in headless Chromium against `traction serve` on the demo store.

What a person would check: the pages render without console errors, every
chart holds the numbers the JSON API gives (read back from the Chart.js
objects), the token stays out of URLs and cookies, another clinic's page
says "not found" and shows nothing, and new events appear without a reload.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.browser.harness import (
    CLINIC,
    DOCS_SCREENSHOT,
    FOREIGN,
    LAPTOP,
    POLL_MS,
    TABLET,
    Demo,
    until,
    wilson,
)

pytestmark = pytest.mark.slow

SETTINGS = ["in_office", "at_home", "hybrid"]
MODALITIES = ["mechanical_table", "decompression_mat", "inversion", "stretching_exercises"]
MARKED = {"PlanAdjusted", "ProgrammePaused", "ProgrammeResumed", "AdverseEventReported",
          "ProgrammeDischarged"}


def pct(fraction: float) -> str:
    """As the pages print a percentage."""
    return f"{fraction * 100:.0f}%"


def week_range(weeks: list[str]) -> list[str]:
    mondays = sorted(date.fromisocalendar(int(w[:4]), int(w[6:]), 1) for w in weeks)
    labels, day = [], mondays[0]
    while day <= mondays[-1]:
        year, week, _ = day.isocalendar()
        labels.append(f"{year}-W{week:02d}")
        day += timedelta(days=7)
    return labels


def assert_close(actual: list[Any], expected: list[Any]) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for a, e in zip(actual, expected, strict=True):
        if e is None:
            assert a is None, (actual, expected)
        else:
            assert a == pytest.approx(e, abs=1e-9), (actual, expected)


def assert_accessible_charts(tab) -> None:
    """Every chart is an image with a name, a visible text summary and a data table."""
    charts = tab.page.evaluate("""() => [...document.querySelectorAll('canvas')].map(c => {
        const described = document.getElementById(c.getAttribute('aria-describedby') || '');
        const table = c.closest('figure').querySelector('details table');
        return {id: c.id, role: c.getAttribute('role'), label: c.getAttribute('aria-label'),
                summary: described ? described.textContent : '',
                rows: table ? table.querySelectorAll('tbody tr').length : 0};
    })""")
    assert charts
    for chart in charts:
        assert chart["role"] == "img" and chart["label"], chart
        assert len(chart["summary"]) > 20, chart
        assert chart["rows"] > 0, chart
    unlabelled = tab.page.evaluate("""() => [...document.querySelectorAll('input, select')]
        .filter(e => !e.labels || !e.labels.length).map(e => e.id)""")
    assert unlabelled == []


def check_curves(tab, canvas: str, table: str, comparison: dict[str, Any], kind: str) -> None:
    """A figure's step curves and bands are the API's, and its at-risk table too."""
    chart = tab.chart(canvas)
    datasets = {d["label"]: d["data"] for d in chart["datasets"]}
    labels = {"in_office": "In office", "at_home": "At home", "hybrid": "Hybrid",
              "mechanical_table": "Mechanical table", "decompression_mat": "Decompression mat",
              "inversion": "Inversion", "stretching_exercises": "Stretching exercises"}
    assert len(datasets) == 3 * len(comparison["groups"])
    for group in comparison["groups"]:
        curve = group["time_to_response"][kind]["curve"]
        name = labels[group["group"]]
        for label, values in ((name, curve["cumulative"]),
                              (f"{name} 95% CI low", curve["ci95_low"]),
                              (f"{name} 95% CI high", curve["ci95_high"])):
            assert [p["x"] for p in datasets[label]] == curve["day"]
            assert [p["y"] for p in datasets[label]] == pytest.approx(
                [100 * v for v in values], abs=1e-9)
    rows = tab.page.locator(f"#{table} tbody tr")
    assert rows.count() == len(comparison["groups"])
    for i, group in enumerate(comparison["groups"]):
        km = group["time_to_response"][kind]
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells == [str(km["programmes"])] + [str(r["at_risk"]) for r in km["at_days"]]


def test_pages_are_public_shells_with_no_data(demo: Demo):
    for path in ("/dashboard/", "/dashboard/network", f"/dashboard/clinics/{CLINIC}",
                 f"/dashboard/clinics/{CLINIC}/programmes/{uuid.uuid4()}"):
        with urllib.request.urlopen(demo.base + path, timeout=10) as response:
            status, html, headers = response.status, response.read().decode(), response.headers
        assert status == 200
        assert "HSC-" not in html and "patient_ref" not in html  # no patient data in the HTML
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and not [s for s in sources if "//" in s], "this origin only, no CDN"


def test_sign_in_keeps_the_token_in_the_tab_only(demo: Demo, new_tab):
    token = demo.token("viewer", CLINIC)
    tab = new_tab()
    tab.open("/dashboard/")
    # A writer token cannot read dashboards: the form says so and keeps nothing.
    tab.page.fill("#token", demo.token("writer", CLINIC))
    tab.page.fill("#clinic", CLINIC)
    tab.page.click("#sign-in-submit")
    until(lambda: "role cannot read" in tab.text("#sign-in-message"), 10, "the writer refusal")
    assert tab.page.evaluate("sessionStorage.getItem('traction.token')") is None

    tab.requests.clear()
    tab.errors.clear()  # the refused probe's 403
    tab.page.fill("#token", token)
    tab.page.click("#sign-in-submit")
    tab.page.wait_for_url(f"**/dashboard/clinics/{CLINIC}")
    tab.wait_state("ready")
    assert tab.page.evaluate("sessionStorage.getItem('traction.token')") == token
    assert tab.page.context.cookies() == []
    api_calls = [r for r in tab.requests if "/v1/" in r.url]
    assert api_calls and all(r.headers.get("authorization") == f"Bearer {token}"
                             for r in api_calls)
    assert not [r.url for r in tab.requests if token in r.url or token.split("_", 2)[2] in r.url]
    assert tab.errors == [], tab.errors

    # Signing out forgets it; the pages then send you to sign in again.
    tab.page.click("#sign-out")
    tab.page.wait_for_url("**/dashboard/")
    assert tab.page.evaluate("sessionStorage.getItem('traction.token')") is None
    tab.page.goto(demo.base + f"/dashboard/clinics/{CLINIC}")
    tab.page.wait_for_url("**/dashboard/?next=*")
    assert tab.page.input_value("#clinic") == CLINIC


def test_clinic_view_charts_hold_the_api_numbers(demo: Demo, new_tab):
    token = demo.token("viewer", CLINIC)
    tab = new_tab(token, {"all": False, "clinic": CLINIC})
    tab.open(f"/dashboard/clinics/{CLINIC}")
    dashboard, headers = demo.get(f"/v1/clinics/{CLINIC}/dashboard", token)
    summaries = demo.summaries(CLINIC, token)
    assert len(summaries) == dashboard["programmes"] == 15

    status = tab.chart("chart-status")
    assert status["datasets"][0]["data"] == [dashboard["by_status"].get(s, 0)
                                             for s in ("active", "paused", "discharged")]
    outcomes = ("goals_met", "improved", "no_change", "worsened", "referred", "dropped_out")
    assert tab.chart("chart-outcome")["datasets"][0]["data"] == [
        dashboard["discharged_by_outcome"].get(o, 0) for o in outcomes]
    adverse = tab.chart("chart-adverse")
    assert adverse["datasets"][0]["data"] == [dashboard["adverse_events"][s]
                                              for s in ("mild", "moderate", "severe")]

    weekly = tab.chart("chart-weekly")
    by_week = {w["week"]: w for w in dashboard["weekly"]}
    assert weekly["labels"] == week_range(list(by_week))
    for i, week in enumerate(weekly["labels"]):
        sessions, pain = weekly["datasets"][0]["data"][i], weekly["datasets"][1]["data"][i]
        if week in by_week:
            assert sessions == by_week[week]["sessions_completed"]
            assert pain == by_week[week]["mean_pain"]
        else:
            assert (sessions, pain) == (0, None)

    bins = [0] * 10
    for s in summaries:
        if s["adherence"] is not None:
            bins[min(math.floor(s["adherence"] * 10), 9)] += 1
    assert tab.chart("chart-adherence")["datasets"][0]["data"] == bins
    assert sum(bins) == dashboard["programmes_with_adherence"]

    for canvas, field, keys in (("chart-setting", "setting", SETTINGS),
                                ("chart-modality", "starting_modality", MODALITIES)):
        with_report, discharged = tab.chart(canvas)["datasets"]
        present = [k for k in keys if any(s[field] == k for s in summaries)]
        groups = {g["group"]: g for g in dashboard["comparisons"][field]["groups"]}
        assert list(groups) == present
        # Both denominators, worked out here from the summaries.
        for dataset, chosen in ((with_report, lambda s: s["pain_reports"] > 0),
                                (discharged, lambda s: s["status"] == "discharged")):
            expected_counts, expected_rates, expected_intervals = [], [], []
            for key in present:
                members = [s for s in summaries if s[field] == key and chosen(s)]
                k, n = sum(s["responded"] for s in members), len(members)
                expected_counts.append({"k": k, "n": n})
                expected_rates.append(100 * k / n if n else None)
                interval = wilson(k, n)
                expected_intervals.append([100 * interval[0], 100 * interval[1]]
                                          if interval else None)
            assert dataset["counts"] == expected_counts
            assert_close(dataset["data"], [None if r is None else pytest.approx(r, abs=1e-4)
                                           for r in expected_rates])
            for actual, expected in zip(dataset["intervals"], expected_intervals, strict=True):
                assert (actual is None) == (expected is None)
                if expected:
                    assert actual == pytest.approx(expected, abs=1e-4)

    # The curves of time to response, read back from the charts, are the API's.
    for canvas, table, field in (("chart-km-setting", "km-setting-at-risk", "setting"),
                                 ("chart-km-modality", "km-modality-at-risk",
                                  "starting_modality")):
        check_curves(tab, canvas, table, dashboard["comparisons"][field], "moderate")
    tab.page.select_option("#km-kind", "substantial")
    check_curves(tab, "chart-km-setting", "km-setting-at-risk",
                 dashboard["comparisons"]["setting"], "substantial")
    tab.page.select_option("#km-kind", "moderate")

    # The headlines: both denominators, each with its counts and interval.
    rates = dashboard["responder_rates"]["moderate"]
    k, n = dashboard["responders"], dashboard["programmes_with_reports"]
    low, high = wilson(k, n)
    headline = tab.text("[data-kpi=responder-rate]")
    assert pct(k / n) in headline and f"{k} of {n} programmes with a pain report" in headline
    assert f"95% CI {pct(low)}–{pct(high)}" in headline
    itt = rates["among_discharged"]
    headline = tab.text("[data-kpi=responder-rate-discharged]")
    assert f"{itt['responders']} of {itt['programmes']} discharged programmes" in headline
    assert pct(itt["rate"]) in headline
    km = dashboard["time_to_response"]["moderate"]
    median = tab.text("[data-kpi=time-to-response]")
    assert (f"{km['median_days']:.1f} days" if km["median_days"] is not None
            else "not reached") in median
    # The median over responders only is not a headline any more, only in the table.
    assert "first response" not in tab.text("#kpis")
    assert "among responders only" in tab.text("#compare-table")
    # Who was compared: the flag as the API says, with its sentence.
    for box, field in (("#who-setting", "setting"), ("#who-modality", "starting_modality")):
        flag = tab.page.locator(f"{box} .baseline-flag")
        differ = dashboard["comparisons"][field]["differ_at_baseline"]
        assert flag.get_attribute("data-differ") == str(differ).lower()
        assert ("Groups differ at baseline" in flag.inner_text()) is differ
    # A discharged programme that never responded reads "no", not "not yet".
    rows = tab.page.locator("#programme-table tbody tr")
    by_ref = {rows.nth(i).locator("th").inner_text(): rows.nth(i).inner_text()
              for i in range(rows.count())}
    for s in summaries:
        if s["status"] == "discharged" and not s["responded"]:
            assert "not yet" not in by_ref[s["patient_ref"]]
    assert any(s["status"] == "discharged" and not s["responded"] for s in summaries)
    assert "Observational clinic records" in tab.text("footer")
    assert tab.page.locator("#programme-table tbody tr").count() == 15
    assert int(headers["X-Projection-Position"]) >= 1
    assert_accessible_charts(tab)
    assert tab.errors == [], tab.errors

    tab.screenshot("clinic-view.png", full_page=True)
    # For the README: the headlines and the curves of time to response.
    boxes = [tab.page.locator(f"#fig-{name}").bounding_box()
             for name in ("km-setting", "km-modality")]
    height = math.ceil(max(box["y"] + box["height"] for box in boxes) + 16)
    shot = tab.screenshot("clinic-view-readme.png", full_page=True,
                          clip={"x": 0, "y": 0, "width": LAPTOP["width"], "height": height})
    if not DOCS_SCREENSHOT.exists() or os.environ.get("TRACTION_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.className") == "skip-link"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"

    # Comfortable on a tablet: one column, nothing wider than the screen.
    tablet = new_tab(token, {"all": False, "clinic": CLINIC}, viewport=TABLET)
    tablet.open(f"/dashboard/clinics/{CLINIC}")
    assert tablet.page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    tablet.screenshot("clinic-view-tablet.png", full_page=True)
    assert tablet.errors == [], tablet.errors


def _programme_to_look_at(demo: Demo, token: str) -> tuple[str, str, list[dict[str, Any]]]:
    """A demo programme with a correction, and with markers if there is one."""
    best = None
    for clinic in (CLINIC, FOREIGN):
        for summary in demo.summaries(clinic, token):
            if not summary["corrections"]:
                continue
            history, _ = demo.get(f"/v1/clinics/{clinic}/programmes/"
                                  f"{summary['programme_id']}/events", token)
            marked = sum(e["type"] in MARKED for e in history["events"])
            if best is None or marked > best[0]:
                best = (marked, clinic, summary["programme_id"], history["events"])
    assert best is not None, "the demo seed corrects some entries"
    return best[1], best[2], best[3]


def test_programme_view_shows_trajectory_thresholds_markers_and_corrections(demo: Demo, new_tab):
    token = demo.token("viewer")
    clinic, programme_id, events = _programme_to_look_at(demo, token)
    tab = new_tab(token, {"all": True})
    tab.open(f"/dashboard/clinics/{clinic}/programmes/{programme_id}")
    summary, _ = demo.get(f"/v1/clinics/{clinic}/programmes/{programme_id}/summary", token)

    pain = tab.chart("chart-pain")
    points, baseline, threshold = pain["datasets"]
    assert [p["y"] for p in points["data"]] == [p["pain_nrs"] for p in summary["pain_trajectory"]]
    start = datetime.fromisoformat(summary["started_at"])
    for point, report in zip(points["data"], summary["pain_trajectory"], strict=True):
        days = (datetime.fromisoformat(report["occurred_at"]) - start).total_seconds() / 86400
        assert point["x"] == pytest.approx(days, abs=1e-3)
    b = summary["baseline_pain"]
    assert {p["y"] for p in baseline["data"]} == {b}
    assert [p["y"] for p in threshold["data"]] == pytest.approx([min(b - 2, 0.7 * b)] * 2)
    assert len(pain["markers"]) == sum(e["type"] in MARKED for e in events)

    sessions = tab.chart("chart-sessions")
    counts = Counter(e["type"] for e in events)
    assert sum(p["y"] for p in sessions["datasets"][0]["data"]) == counts["SessionCompleted"]
    assert sum(p["y"] for p in sessions["datasets"][1]["data"]) == counts["SessionMissed"]
    assert counts["SessionCompleted"] == summary["sessions_completed"]

    # The history: every event, and each correction beside what it corrects.
    assert tab.page.locator("#history-table tbody tr").count() == len(events)
    for event in events:
        if event.get("corrected_by"):
            row = tab.page.locator(f"#event-{event['event_id']}")
            assert "Corrected (in force) by" in row.inner_text()
            assert "is-corrected" in row.get_attribute("class")
            correction = tab.page.locator(f"#event-{event['corrected_by']}")
            assert f"Corrects v{event['version']}" in correction.inner_text()
    tab.page.select_option("#type-filter", "corrections")
    corrected = {e["data"]["corrects"] for e in events if e["type"] == "EntryCorrected"}
    assert tab.page.locator("#history-table tbody tr").count() == (
        counts["EntryCorrected"] + len(corrected))
    assert_accessible_charts(tab)
    assert tab.errors == [], tab.errors
    tab.screenshot("programme-view.png", full_page=True)


def test_network_view_puts_clinics_side_by_side(demo: Demo, new_tab):
    token = demo.token("viewer")
    tab = new_tab(token, {"all": True})
    tab.open("/dashboard/network")
    network, _ = demo.get("/v1/dashboard", token)
    clinics = network["clinics"]
    responders = tab.chart("chart-responders")["datasets"][0]
    assert responders["counts"] == [{"k": c["responders"], "n": c["programmes_with_reports"]}
                                    for c in clinics]
    assert_close(responders["data"], [100 * c["responders"] / c["programmes_with_reports"]
                                      for c in clinics])
    for actual, clinic in zip(responders["intervals"], clinics, strict=True):
        low, high = wilson(clinic["responders"], clinic["programmes_with_reports"])
        # The API's interval has 6 decimals: 1e-4 percentage points.
        assert actual == pytest.approx([100 * low, 100 * high], abs=1.01e-4)
    adherence = tab.chart("chart-adherence")["datasets"][0]["data"]
    assert_close(adherence, [100 * c["mean_adherence"] for c in clinics])
    weekly = tab.chart("chart-weekly")
    assert [d["label"] for d in weekly["datasets"]] == [c["clinic_id"] for c in clinics]
    assert [sum(d["data"]) for d in weekly["datasets"]] == [
        sum(w["sessions_completed"] for w in c["weekly"]) for c in clinics]
    rows = tab.page.locator("#clinic-table tbody tr")
    assert rows.count() == len(clinics) + 1  # and the network's totals
    assert f"{network['totals']['responders']} of {network['totals']['programmes_with_reports']}" \
        in rows.last.inner_text()
    # The network's curves are the API's, and who was compared across clinics is shown.
    totals = network["totals"]
    check_curves(tab, "chart-km-setting", "km-setting-at-risk",
                 totals["comparisons"]["setting"], "moderate")
    check_curves(tab, "chart-km-modality", "km-modality-at-risk",
                 totals["comparisons"]["starting_modality"], "moderate")
    flag = tab.page.locator("#who-clinic .baseline-flag")
    assert flag.get_attribute("data-differ") == str(
        totals["comparisons"]["clinic"]["differ_at_baseline"]).lower()
    assert tab.page.locator("#who-clinic tbody tr").count() == len(clinics)
    assert_accessible_charts(tab)
    assert tab.errors == [], tab.errors
    tab.screenshot("network-view.png", full_page=True)


def test_another_clinics_pages_are_not_found(demo: Demo, new_tab):
    token = demo.token("viewer", CLINIC)
    foreign = demo.summaries(FOREIGN, demo.token("viewer", FOREIGN))
    tab = new_tab(token, {"all": False, "clinic": CLINIC})
    for path in (f"/dashboard/clinics/{FOREIGN}",
                 f"/dashboard/clinics/{FOREIGN}/programmes/{foreign[0]['programme_id']}"):
        tab.open(path, state="not-found")
        assert tab.page.locator("#problem").is_visible()
        assert "Not found" in tab.text("#problem")
        assert not tab.page.locator("#content").is_visible()
        assert tab.page.evaluate(
            "[...document.querySelectorAll('canvas')].every(c => !Chart.getChart(c))")
        text = tab.text("body")
        assert not any(s["patient_ref"] in text for s in foreign)
        answers = [r for r in tab.requests if "/v1/" in r.url and r.response()]
        assert answers and all(r.response().status == 404 for r in answers)
        tab.requests.clear()
    tab.screenshot("foreign-clinic-not-found.png")


def test_new_events_appear_without_a_reload(demo: Demo, new_tab):
    admin = demo.token("admin")
    clinic = f"live-{uuid.uuid4().hex[:8]}"
    demo.post("/v1/clinics", {"clinic_id": clinic, "name": "Live clinic"}, admin)
    writer = demo.post("/v1/tokens", {"role": "writer", "clinic_id": clinic, "label": "t"},
                       admin)["token"]
    viewer = demo.post("/v1/tokens", {"role": "viewer", "clinic_id": clinic, "label": "t"},
                       admin)["token"]
    tab = new_tab(viewer, {"all": False, "clinic": clinic}, poll_ms=POLL_MS)
    tab.open(f"/dashboard/clinics/{clinic}")
    assert tab.chart("chart-status")["datasets"][0]["data"] == [0, 0, 0]
    tab.page.evaluate("window.__sameDocument = true")

    programme = uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)

    def event(kind: str, minutes: int, data: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": str(uuid.uuid4()), "type": kind, "recorded_by": "physio.test",
                "occurred_at": (now - timedelta(minutes=minutes)).isoformat(), "data": data}

    receipt = demo.post(f"/v1/clinics/{clinic}/programmes/{programme}/events", {"events": [
        event("ProgrammeStarted", 90, {
            "patient_ref": "LIVE-1", "condition": "sciatica", "setting": "in_office",
            "plan": {"modality": "mechanical_table", "sessions_per_week": 3,
                     "minutes_per_session": 30, "force_percent_body_weight": 30},
            "baseline": {"pain_nrs": 8}}),
        event("SessionCompleted", 60, {"modality": "mechanical_table", "duration_minutes": 30,
                                       "supervised": True, "force_percent_body_weight": 30}),
        event("PainReported", 30, {"pain_nrs": 4, "context": "after_session"}),
    ]}, writer)
    position = receipt["recorded"][-1]["position"]

    until(lambda: tab.chart("chart-status")["datasets"][0]["data"] == [1, 0, 0], 20,
          "the new programme on the page")
    assert tab.page.evaluate("window.__sameDocument") is True  # no reload
    until(lambda: "1 of 1 programme with a pain report" in tab.text("[data-kpi=responder-rate]"),
          10, "the responder headline")
    assert tab.page.locator("#programme-table tbody tr").count() == 1
    # The polls ask for data at least as fresh as the position they last saw.
    dashboard = f"/v1/clinics/{clinic}/dashboard?min_position="
    assert [r.url for r in tab.requests if dashboard in r.url]
    until(lambda: f"{position:,}" in tab.text("#live-status"), 10, "the position shown")
    # Once nothing changes, a poll revalidates what the page holds: 304, no body.

    def revalidated_poll() -> bool:
        tab.page.wait_for_timeout(100)  # Playwright hands over its events while it runs
        return any(dashboard in r.url and r.status == 304 for r in tab.responses)

    until(revalidated_poll, 10, "a poll answered 304")
    revalidated = next(r for r in tab.responses if dashboard in r.url and r.status == 304)
    assert revalidated.request.headers.get("if-none-match", "").startswith('"')
    assert tab.chart("chart-status")["datasets"][0]["data"] == [1, 0, 0]
    assert tab.errors == [], tab.errors


def test_the_docs_render_under_their_content_security_policy(demo: Demo, new_tab):
    """/docs forbids inline scripts and framing; Swagger UI still renders the
    document, with no CSP violation (or any other error) in the console."""
    tab = new_tab()
    tab.page.goto(demo.base + "/docs")
    tab.page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "Traction Ledger" in tab.page.inner_text(".swagger-ui .info .title")
    assert tab.page.locator(".opblock").count() >= 10
    failed = [(r.url, r.status) for r in tab.responses if r.status >= 400]
    assert failed == []
    assert tab.errors == []
    [docs] = [r for r in tab.responses if r.url.endswith("/docs")]
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and docs.headers["x-frame-options"] == "DENY"
