"""A simulated history of lumbar traction programmes (`traction demo seed`).

Pure: `simulate(seed, clinics, programmes_per_clinic, until)` yields, for each
programme, the batches of event envelopes (JSON-shaped, as a clinic system
posts them) in the order they are posted. No store and no clock are touched,
so the same arguments give the same envelopes, byte for byte. Every random
choice comes from a `random.Random` seeded with the demo seed, the clinic and
the programme's index, so a programme's history does not depend on how many
others are simulated beside it (seeding more programmes later only adds).

What the history looks like (the figures are the simulation's, not evidence):

- in-office `mechanical_table` programmes: 2-3 supervised sessions a week of
  20-40 minutes at 25-50 % of body weight, a pain score before most sessions;
- at-home `decompression_mat` programmes: 45-minute unsupervised sessions up to
  three times a day (`sessions_per_week` up to 21), logged by the mat's app and
  synced late by some patients, with weekly follow-up calls from the clinic;
- a few hybrid programmes (table in the clinic, then the mat at home),
  inversion and stretching programmes;
- discomfort during sessions is higher in the first weeks; pain falls for
  responders and does not for the others; sessions are missed (with reasons),
  plans adjusted, adverse events reported (mostly mild; a severe one pauses the
  programme, which later resumes or ends in a referral), programmes paused and
  resumed, patients drop out, and discharges carry the outcome their pain
  trajectory earned;
- some entries are corrected (`EntryCorrected`), and home devices post late:
  events whose `occurred_at` is earlier than events already posted.

Every `occurred_at` is at or before `until` (the simulation's "now").
Posting order respects the rules of docs/events.md: a late sync is flushed before
any pause, resume or discharge is posted, so no session is ever posted while
the programme is paused or after it is discharged.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

#: The simulation's default "now": a fixed moment in the past, so the same
#: seed always gives the same history (occurred_at may never be more than
#: five minutes after the server's clock, so "now" cannot be in the future).
DEMO_UNTIL = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)

#: Programmes start over this many days before `until`.
HISTORY_DAYS = 182

#: Types that change the programme's status: everything that happened before
#: one of them is posted before it (a clinician syncs the device first).
_STATUS_TYPES = ("ProgrammePaused", "ProgrammeResumed", "ProgrammeDischarged")


@dataclass(frozen=True)
class DemoClinic:
    """A simulated clinic: its slug, name, local UTC offset and staff."""

    clinic_id: str
    name: str
    utc_offset_hours: int
    staff: tuple[str, ...]
    patient_prefix: str


CLINICS = (
    DemoClinic("harbour-spine", "Harbour Spine Clinic", 0,
               ("physio.amara", "physio.tom", "dr.okafor"), "HSC"),
    DemoClinic("lindenweg-physio", "Physiotherapie am Lindenweg", 1,
               ("pt.schmidt", "pt.yilmaz", "pt.weber"), "LWP"),
    DemoClinic("riverside-back-care", "Riverside Back Care", -5,
               ("dpt.garcia", "dpt.chen", "dc.walker"), "RBC"),
    DemoClinic("fjord-ryggklinikk", "Fjord Ryggklinikk", 1,
               ("fysio.nilsen", "fysio.haugen"), "FRK"),
    DemoClinic("southgate-rehab", "Southgate Sports & Rehab", 0,
               ("physio.patel", "physio.jones", "physio.kaur"), "SGR"),
    DemoClinic("maple-grove-chiro", "Maple Grove Chiropractic", -6,
               ("dc.martin", "dc.lefebvre"), "MGC"),
    DemoClinic("columna-del-sol", "Clínica Columna del Sol", 1,
               ("fisio.ruiz", "fisio.moreno", "fisio.vidal"), "CDS"),
    DemoClinic("kowhai-physio", "Kōwhai Physiotherapy", 12,
               ("physio.ngata", "physio.smith"), "KWP"),
)


def demo_clinics(count: int) -> list[DemoClinic]:
    """The first `count` demo clinics (numbered generic ones beyond the named ones)."""
    clinics = list(CLINICS[:count])
    for number in range(len(CLINICS) + 1, count + 1):
        clinics.append(DemoClinic(f"demo-clinic-{number:02d}", f"Demo Clinic {number}",
                                  0, ("physio.demo", "dr.demo"), f"D{number:02d}"))
    return clinics


@dataclass(frozen=True)
class SimulatedProgramme:
    """One programme's history: its batches of envelopes, in posting order."""

    clinic_id: str
    programme_id: uuid.UUID
    course: str  # e.g. "in_office mechanical_table"
    responder: bool  # whether the simulation made the patient's pain fall
    batches: tuple[tuple[dict[str, Any], ...], ...]

    def envelopes(self) -> list[dict[str, Any]]:
        """Every envelope, in posting order."""
        return [envelope for batch in self.batches for envelope in batch]


def simulate(
    seed: int, clinics: list[DemoClinic], programmes_per_clinic: int,
    until: datetime = DEMO_UNTIL,
) -> Iterator[SimulatedProgramme]:
    """Every demo programme, clinic by clinic."""
    for clinic in clinics:
        for index in range(programmes_per_clinic):
            yield simulate_programme(seed, clinic, index, until)


def simulate_programme(
    seed: int, clinic: DemoClinic, index: int, until: datetime = DEMO_UNTIL
) -> SimulatedProgramme:
    """One programme's history, from its own random stream."""
    rng = random.Random(f"traction-demo/{seed}/{clinic.clinic_id}/{index}")
    return _Course(rng, clinic, index, until).run()


# ---- the simulation ----------------------------------------------------------

@dataclass
class _Entry:
    """An event while it is being simulated: envelope fields plus posting time."""

    event_id: uuid.UUID
    type: str
    occurred: datetime
    recorded_by: str
    data: dict[str, Any]
    post: datetime  # when the clinic system posts it
    sequence: int

    def envelope(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "occurred_at": self.occurred.isoformat(),
            "recorded_by": self.recorded_by,
            "data": self.data,
        }


#: (kind, weight): the mix of programmes at a clinic.
_KINDS = (("table", 42), ("mat", 36), ("hybrid", 9), ("inversion", 5), ("stretching", 8))
_CONDITIONS = (("low_back_pain", 35), ("sciatica", 25), ("disc_herniation", 22),
               ("spinal_stenosis", 12), ("other", 6))
_MISSED_OFFICE = (("schedule", 45), ("illness", 20), ("pain", 15), ("other", 12),
                  ("equipment", 8))
_MISSED_HOME = (("schedule", 50), ("pain", 15), ("illness", 15), ("other", 12),
                ("equipment", 8))
_PAUSE_REASONS = ("travel", "holiday", "flare-up of an unrelated condition",
                  "family circumstances", "waiting for an imaging appointment")
_MILD = ("muscle soreness in the lower back after the session",
         "transient tingling in the leg, settled within the hour",
         "light-headedness on getting up after the session",
         "stiffness the next morning, eased by walking")
_MODERATE = ("increased radicular pain lasting two days",
             "marked muscle spasm; session stopped early",
             "headache and dizziness after the session")
_SEVERE = ("new numbness and weakness in the foot; referred for urgent medical review",
           "severe increase in leg pain with new neurological signs; sent for assessment")
_HOME_APPS = {"decompression_mat": "homemat-app", "inversion": "home-exercise-app",
              "stretching_exercises": "home-exercise-app"}


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


@dataclass
class _Plan:
    modality: str
    sessions_per_week: int
    minutes_per_session: int
    force: int | None = None

    def as_data(self) -> dict[str, Any]:
        plan: dict[str, Any] = {"modality": self.modality,
                                "sessions_per_week": self.sessions_per_week,
                                "minutes_per_session": self.minutes_per_session}
        if self.modality == "mechanical_table":
            plan["force_percent_body_weight"] = self.force
        return plan

    @property
    def at_home(self) -> bool:
        return self.modality != "mechanical_table"


@dataclass
class _Course:
    """One patient's programme, simulated day by day."""

    rng: random.Random
    clinic: DemoClinic
    index: int
    until: datetime
    entries: list[_Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = self.rng
        self.tz = timezone(timedelta(hours=self.clinic.utc_offset_hours))
        self.programme_id = self._uuid()
        self.kind = _weighted(rng, _KINDS)
        self.clinician = rng.choice(self.clinic.staff)
        local_until = self.until.astimezone(self.tz)
        start_day = (local_until - timedelta(days=rng.uniform(2, HISTORY_DAYS))).date()
        self.first_day = start_day
        self.office_hour = rng.choice([8.5, 9, 10, 11, 13, 14, 15.5, 16.5])
        self.baseline_pain = rng.choices([4, 5, 6, 7, 8, 9], weights=[8, 16, 22, 24, 18, 12])[0]
        self.baseline_odi = _clamp(self.baseline_pain * 6 + rng.gauss(0, 7), 12, 80)
        # The responder rule of docs/metrics.md: pain <= baseline - 2 and <= 0.7 x baseline.
        self.response_threshold = math.floor(
            min(self.baseline_pain - 2, 0.7 * self.baseline_pain))
        responder_chance = {"table": 0.55, "mat": 0.48, "hybrid": 0.55, "inversion": 0.35,
                            "stretching": 0.45}[self.kind]
        self.responder = rng.random() < responder_chance
        self.target_pain = math.floor(self.baseline_pain * rng.uniform(0.1, 0.5))
        self.response_days = rng.uniform(8, 35)
        self.pain_drift = rng.uniform(-1.2, 2.2)  # non-responders: a little better or worse
        self.discomfort_start = rng.uniform(2.5, 6.5)
        self.discomfort_days = rng.uniform(6, 16)
        self.setting, self.plan, weeks = self._choose_course()
        self.planned_days = weeks * 7
        at_home = self.plan.at_home or self.kind == "hybrid"
        self.adherence = rng.uniform(0.55, 0.95) if at_home else rng.uniform(0.78, 0.98)
        dropout = (0.12 if at_home else 0.06) + (0.0 if self.responder else 0.08)
        self.dropout_day = (round(self.planned_days * rng.uniform(0.25, 0.7))
                            if rng.random() < dropout else None)
        self.pause_start = (rng.randrange(5, max(6, self.planned_days - 10))
                            if rng.random() < 0.1 else None)
        self.pause_days = rng.randrange(5, 15)
        self.adverse_days: dict[str, int] = {}
        for severity, chance in (("mild", 0.22), ("moderate", 0.06), ("severe", 0.035)):
            if rng.random() < chance:
                self.adverse_days[severity] = rng.randrange(1, max(2, self.planned_days * 2 // 3))
        self.adjust_day = (rng.randrange(10, max(11, self.planned_days * 2 // 3))
                           if rng.random() < 0.35 else None)
        self.switch_day = rng.randrange(14, 22) if self.kind == "hybrid" else None
        self.follow_up_every = rng.choice([7, 7, 14])
        self.syncs = self._device_syncs()
        self.status = "active"

    # ---- set-up -------------------------------------------------------------

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _choose_course(self) -> tuple[str, _Plan, int]:
        rng = self.rng
        if self.kind in ("table", "hybrid"):
            plan = _Plan("mechanical_table", 2 if self.kind == "hybrid" else rng.choice([2, 3, 3]),
                         rng.choice([20, 25, 30, 30, 40]), rng.choice([25, 30, 30, 35]))
            return ("in_office" if self.kind == "table" else "hybrid", plan,
                    rng.randrange(4, 11) if self.kind == "table" else rng.randrange(6, 11))
        if self.kind == "mat":
            return "at_home", _Plan("decompression_mat", rng.choice([7, 14, 14, 21, 21]),
                                    rng.choice([45, 45, 45, 30])), rng.randrange(4, 9)
        if self.kind == "inversion":
            return "at_home", _Plan("inversion", rng.choice([7, 14]),
                                    rng.choice([5, 10])), rng.randrange(3, 7)
        setting = rng.choice(["at_home", "at_home", "in_office"])
        return setting, _Plan("stretching_exercises", 2 if setting == "in_office" else 7,
                              rng.choice([15, 20, 30])), rng.randrange(4, 9)

    def _device_syncs(self) -> list[datetime]:
        """When the patient's home device posts what it has logged."""
        rng = self.rng
        moments = []
        day = self.at(0, 0)
        prompt = rng.random() < 0.6
        while day <= self.until:
            if prompt:
                day = day + timedelta(days=1 if rng.random() < 0.9 else rng.randrange(2, 4))
            else:
                day = day + timedelta(days=rng.uniform(2.5, 9))
            moments.append(day.replace(hour=0, minute=0)
                           + timedelta(hours=rng.uniform(21.5, 23.5)))
        return moments

    # ---- time and measurements ----------------------------------------------

    def at(self, day: int, hour: float) -> datetime:
        """Local time on the programme's `day` (0 = the start)."""
        midnight = datetime.combine(self.first_day + timedelta(days=day),
                                    datetime.min.time(), self.tz)
        return (midnight + timedelta(hours=hour)).replace(microsecond=0)

    def day_of(self, moment: datetime) -> float:
        return (moment - self.at(0, 0)).total_seconds() / 86400

    def pain(self, moment: datetime, noise: bool = True) -> int:
        t = self.day_of(moment)
        b = self.baseline_pain
        jitter = self.rng.gauss(0, 0.6) if noise else 0.0
        if self.responder:
            value = self.target_pain + (b - self.target_pain) * math.exp(-t / self.response_days)
            return _clamp(value + jitter, 0, 10)
        value = b + self.pain_drift * (1 - math.exp(-t / 20))
        # Never a qualifying report: a non-responder stays above the threshold.
        return _clamp(value + jitter, self.response_threshold + 1, 10)

    def odi(self, pain: int) -> int:
        return _clamp(self.baseline_odi * (pain + 1) / (self.baseline_pain + 1)
                      + self.rng.gauss(0, 4), 0, 100)

    def discomfort(self, moment: datetime) -> int:
        t = self.day_of(moment)
        value = self.discomfort_start * math.exp(-t / self.discomfort_days)
        if not self.responder:
            value += 1
        return _clamp(value + self.rng.gauss(0, 0.8), 0, 10)

    # ---- recording ------------------------------------------------------------

    def record(self, type_: str, occurred: datetime, data: dict[str, Any], *,
               by: str | None = None, post: datetime | None = None) -> _Entry | None:
        """Note an event (dropped if it happens after `until`)."""
        if occurred > self.until:
            return None
        entry = _Entry(self._uuid(), type_, occurred, by or self.clinician, data,
                       post or occurred, len(self.entries))
        self.entries.append(entry)
        return entry

    def device_post(self, occurred: datetime) -> datetime:
        for moment in self.syncs:
            if moment >= occurred:
                return moment
        return self.until

    # ---- the programme ------------------------------------------------------

    def run(self) -> SimulatedProgramme:
        start = self.at(0, self.office_hour)
        self.record("ProgrammeStarted", start, {
            "patient_ref": f"{self.clinic.patient_prefix}-{self.index + 1:05d}",
            "condition": _weighted(self.rng, _CONDITIONS),
            "setting": self.setting,
            "plan": self.plan.as_data(),
            "baseline": {"pain_nrs": self.baseline_pain, "odi_percent": self.baseline_odi},
        })
        self.days()
        self.correct_an_entry()
        return SimulatedProgramme(
            clinic_id=self.clinic.clinic_id,
            programme_id=self.programme_id,
            course=f"{self.setting} {self.plan_at_start_modality}",
            responder=self.responder,
            batches=self.batches(),
        )

    @property
    def plan_at_start_modality(self) -> str:
        return self.entries[0].data["plan"]["modality"]

    def days(self) -> None:
        resume_day: int | None = None
        referral_day: int | None = None
        adjust_after_resume = False
        last_session_day = 0
        day = 1
        while day < self.planned_days:  # the last day is the discharge's alone
            if self.at(day, 0) > self.until:
                return
            if self.status == "paused":
                if day == referral_day:
                    self.discharge(day, "referred", "referred for medical review after a "
                                   "severe adverse event")
                    return
                if day == resume_day:
                    self.record("ProgrammeResumed", self.at(day, 7.5), {})
                    self.status = "active"
                    if adjust_after_resume:
                        self.adjust(day, "resuming more gently after the adverse event",
                                    gentler=True)
                else:
                    day += 1
                    continue
            if day == self.pause_start and self.status == "active":
                self.record("ProgrammePaused", self.at(day, self.office_hour),
                            {"reason": self.rng.choice(_PAUSE_REASONS)})
                self.status = "paused"
                resume_day = day + self.pause_days
                self.planned_days += self.pause_days
                day += 1
                continue
            if self.dropout_day is not None and day >= self.dropout_day:
                # No more sessions; the clinic discharges a few weeks later.
                self.discharge(max(day, last_session_day) + self.rng.randrange(14, 29),
                               "dropped_out", "stopped attending; did not answer calls")
                return
            if day == self.switch_day:
                self.plan = _Plan("decompression_mat", 14, 45)
                self.record("PlanAdjusted", self.at(day, 7.5), {
                    "modality": "decompression_mat", "sessions_per_week": 14,
                    "minutes_per_session": 45,
                    "reason": "continuing at home on a decompression mat, twice a day",
                })
            if day == self.adjust_day:
                self.adjust(day, None)
            for severity in self.sessions_of(day):
                last_session_day = day
                if severity == "moderate":
                    self.adjust(day + 1, "reduced after a moderate adverse event", gentler=True)
                if severity == "severe":
                    self.status = "paused"  # the aggregate records the pause itself
                    if self.rng.random() < 0.6:
                        resume_day = day + self.rng.randrange(10, 22)
                        adjust_after_resume = True
                        self.planned_days += resume_day - day
                    else:
                        referral_day = day + self.rng.randrange(2, 8)
                        self.planned_days = max(self.planned_days, referral_day)
                    break
            if self.at_home() and day % self.follow_up_every == 0:
                self.follow_up(day)
            day += 1
        self.finish(self.planned_days)

    def at_home(self) -> bool:
        """Whether sessions happen at home now (hybrid programmes move home)."""
        return self.plan.at_home and self.setting != "in_office"

    def sessions_of(self, day: int) -> Iterator[str | None]:
        """Simulate the day's sessions; yield the severity of any adverse event."""
        plan = self.plan
        weekday = (self.first_day + timedelta(days=day)).weekday()
        if plan.at_home and plan.sessions_per_week >= 7:
            slots = [8.0, 13.0, 20.5][: plan.sessions_per_week // 7]
        else:
            days = {1: [2], 2: [1, 3], 3: [0, 2, 4], 4: [0, 1, 3, 4], 5: [0, 1, 2, 3, 4],
                    6: [0, 1, 2, 3, 4, 5]}[min(plan.sessions_per_week, 6)]
            slots = [self.office_hour] if weekday in days else []
        for hour in slots:
            moment = self.at(day, hour + self.rng.uniform(-0.3, 0.3))
            if self.dropout_day is not None and day >= self.dropout_day - 3:
                chance = self.adherence * 0.5  # fading out before dropping out
            else:
                chance = self.adherence
            if self.rng.random() >= chance:
                self.missed(moment)
                continue
            severity = self.session(moment)
            yield severity
            if severity == "severe":
                return

    def session(self, moment: datetime) -> str | None:
        rng = self.rng
        plan = self.plan
        home = self.at_home()
        discomfort = self.discomfort(moment)
        minutes = plan.minutes_per_session
        if discomfort >= 6 and rng.random() < 0.5:
            minutes = max(5, minutes - rng.choice([5, 10]))
        elif home and rng.random() < 0.15:
            minutes = max(1, round(minutes * rng.uniform(0.4, 0.9)))
        data: dict[str, Any] = {"modality": plan.modality, "duration_minutes": minutes,
                                "supervised": not home}
        if plan.modality == "mechanical_table":
            data["force_percent_body_weight"] = plan.force
        if not home or rng.random() < 0.5:
            data["discomfort_nrs"] = discomfort
        end = moment + timedelta(minutes=minutes)
        if home:
            by = _HOME_APPS[plan.modality]
            self.record("SessionCompleted", moment, data, by=by, post=self.device_post(moment))
            reports_every = 2.5 * plan.sessions_per_week / 7
            if rng.random() < 1 / max(1.0, reports_every):
                report: dict[str, Any] = {"pain_nrs": self.pain(end), "context": "after_session"}
                if moment.hour < 10 and rng.random() < 0.6:
                    report["sleep_quality_nrs"] = _clamp(9 - 0.7 * report["pain_nrs"]
                                                         + rng.gauss(0, 1), 0, 10)
                occurred = end + timedelta(minutes=2)
                self.record("PainReported", occurred, report, by=by,
                            post=self.device_post(occurred))
        else:
            post = end + timedelta(minutes=rng.randrange(5, 45))
            if rng.random() < 0.85:
                report = {"pain_nrs": self.pain(moment), "context": "before_session"}
                if self.day_of(moment) // 14 > len([e for e in self.entries
                                                    if "odi_percent" in e.data]) - 1:
                    report["odi_percent"] = self.odi(report["pain_nrs"])
                self.record("PainReported", moment - timedelta(minutes=5), report, post=post)
            self.record("SessionCompleted", moment, data, post=post)
        return self.adverse_event(moment, end)

    def adverse_event(self, moment: datetime, end: datetime) -> str | None:
        day = int(self.day_of(moment))
        for severity in ("severe", "moderate", "mild"):
            due = self.adverse_days.get(severity)
            if due is not None and day >= due:
                del self.adverse_days[severity]
                description = self.rng.choice(
                    {"mild": _MILD, "moderate": _MODERATE, "severe": _SEVERE}[severity])
                # Reported to the clinic (by the patient's call, or in the room).
                self.record("AdverseEventReported", end + timedelta(minutes=30),
                            {"severity": severity, "description": description})
                return severity
        return None

    def missed(self, moment: datetime) -> None:
        if self.at_home():
            if self.rng.random() < 0.35:  # the app asks why; most skips go unlogged
                by = _HOME_APPS[self.plan.modality]
                self.record("SessionMissed", moment,
                            {"reason": _weighted(self.rng, _MISSED_HOME)},
                            by=by, post=self.device_post(moment))
            return
        post = moment + timedelta(hours=1)
        if self.rng.random() < 0.2:
            # Entered at the end of the week, when the front desk catches up.
            friday = moment + timedelta(days=(4 - moment.weekday()) % 7)
            post = max(post, friday.replace(hour=17, minute=30))
        self.record("SessionMissed", moment, {"reason": _weighted(self.rng, _MISSED_OFFICE)},
                    post=post)

    def follow_up(self, day: int) -> None:
        moment = self.at(day, self.office_hour + self.rng.uniform(0, 2))
        pain = self.pain(moment)
        self.record("PainReported", moment, {"pain_nrs": pain, "odi_percent": self.odi(pain),
                                             "context": "follow_up"})

    def adjust(self, day: int, reason: str | None, gentler: bool = False) -> None:
        """A plan adjustment that changes something (rule 5)."""
        plan = self.plan
        changes: dict[str, Any] = {}
        if plan.modality == "mechanical_table":
            assert plan.force is not None
            if gentler:
                changes["force_percent_body_weight"] = max(20, plan.force - 5)
                if changes["force_percent_body_weight"] == plan.force:
                    changes = {"minutes_per_session": max(10, plan.minutes_per_session - 10)}
            elif self.responder or plan.force < 35:
                changes["force_percent_body_weight"] = min(50, plan.force + self.rng.choice(
                    [5, 10]))
                reason = reason or "tolerating well; progressing the traction force"
            else:
                changes["sessions_per_week"] = 2 if plan.sessions_per_week == 3 else 3
                reason = reason or "discomfort after sessions; changing the frequency"
        elif plan.modality == "decompression_mat":
            if gentler or plan.sessions_per_week == 21:
                changes["sessions_per_week"] = max(7, plan.sessions_per_week - 7)
                reason = reason or "three sessions a day were not sustainable; two a day"
            else:
                changes["sessions_per_week"] = plan.sessions_per_week + 7
                reason = reason or "responding well; adding a session a day"
        elif plan.modality == "inversion":
            changes["minutes_per_session"] = 5 if plan.minutes_per_session == 10 else 10
            reason = reason or "adjusting the time inverted"
        else:
            changes["minutes_per_session"] = plan.minutes_per_session + 10
            reason = reason or "progressing the stretching routine"
        current = {"force_percent_body_weight": plan.force,
                   "sessions_per_week": plan.sessions_per_week,
                   "minutes_per_session": plan.minutes_per_session}
        if all(current[name] == value for name, value in changes.items()):
            # Already at the limit of what this change can do: change the time instead.
            minutes = plan.minutes_per_session
            changes = {"minutes_per_session": minutes - 10 if minutes > 15 else minutes + 5}
        entry = self.record("PlanAdjusted", self.at(day, 7.5), {**changes, "reason": reason})
        if entry is None:
            return
        if "force_percent_body_weight" in changes:
            plan.force = changes["force_percent_body_weight"]
        plan.sessions_per_week = changes.get("sessions_per_week", plan.sessions_per_week)
        plan.minutes_per_session = changes.get("minutes_per_session", plan.minutes_per_session)

    def finish(self, day: int) -> None:
        """The final review and the discharge, with the outcome the trajectory earned."""
        moment = self.at(day, self.office_hour)
        if moment > self.until or self.status != "active":
            return
        pain = self.pain(moment, noise=not self.responder)
        if self.responder:
            pain = min(pain, self.response_threshold)
        self.record("PainReported", moment, {"pain_nrs": pain, "odi_percent": self.odi(pain),
                                             "context": "follow_up"})
        if self.responder:
            outcome = "goals_met" if pain <= 2 and self.rng.random() < 0.7 else "improved"
        elif pain >= self.baseline_pain + 1:
            outcome = "referred" if self.rng.random() < 0.3 else "worsened"
        elif pain < self.baseline_pain and self.rng.random() < 0.4:
            outcome = "improved"
        else:
            outcome = "no_change"
        notes = self.rng.choice([None, None, "home exercise programme given",
                                 "review in three months if symptoms return"])
        self.discharge(day, outcome, notes, at=moment + timedelta(minutes=15))

    def discharge(self, day: int, outcome: str, notes: str | None,
                  at: datetime | None = None) -> None:
        data: dict[str, Any] = {"outcome": outcome}
        if notes:
            data["notes"] = notes
        self.record("ProgrammeDischarged", at or self.at(day, self.office_hour), data)

    # ---- corrections and posting order ---------------------------------------

    def correct_an_entry(self) -> None:
        """Now and then an entry was wrong, and a later EntryCorrected fixes it."""
        rng = self.rng
        if rng.random() >= 0.14:
            return
        self.flush_before_status_changes()
        candidates = [e for e in self.entries
                      if e.type in ("SessionCompleted", "PainReported")
                      and e.post < self.until - timedelta(days=1)]
        if not candidates:
            return
        target = rng.choice(candidates)
        occurred = target.post + timedelta(hours=rng.uniform(3, 96))
        if occurred > self.until:
            return
        true_data = dict(target.data)
        wrong = dict(true_data)
        if target.type == "PainReported":
            wrong["pain_nrs"] = (true_data["pain_nrs"] + rng.choice([3, 4, 5])) % 11
            reason = (f"pain score keyed as {wrong['pain_nrs']}; "
                      f"the patient reported {true_data['pain_nrs']}")
        elif true_data["supervised"] and "force_percent_body_weight" in true_data:
            wrong["force_percent_body_weight"] = true_data["force_percent_body_weight"] + 10
            reason = (f"force recorded as {wrong['force_percent_body_weight']} %; "
                      f"the table was set to {true_data['force_percent_body_weight']} %")
        else:
            minutes = true_data["duration_minutes"]
            wrong["duration_minutes"] = minutes * 2 if minutes <= 120 else minutes - 60
            if true_data["supervised"]:
                reason = (f"duration keyed as {wrong['duration_minutes']} minutes; "
                          f"the session lasted {minutes}")
            else:
                reason = "the device logged the session twice over; corrected duration"
        target.data = wrong
        self.record("EntryCorrected", occurred,
                    {"corrects": str(target.event_id), "data": true_data, "reason": reason})

    def flush_before_status_changes(self) -> None:
        """Whatever happened before a pause, resume, discharge or severe adverse event
        is posted no later than it (the clinician has the patient sync first), so no
        session is ever posted while paused or after discharge."""
        barriers = sorted(
            e.occurred for e in self.entries
            if e.type in _STATUS_TYPES
            or (e.type == "AdverseEventReported" and e.data["severity"] == "severe")
        )
        for entry in self.entries:
            entry.post = min(entry.post, self.until)
            later = [b for b in barriers if b > entry.occurred]
            if later and entry.post > later[0]:
                entry.post = later[0]

    def batches(self) -> tuple[tuple[dict[str, Any], ...], ...]:
        """The entries grouped by posting time, in posting order."""
        self.flush_before_status_changes()
        for entry in self.entries:
            if entry.type == "EntryCorrected":
                target = next(e for e in self.entries
                              if str(e.event_id) == entry.data["corrects"])
                assert entry.post > target.post
        ordered = sorted(self.entries, key=lambda e: (e.post, e.occurred, e.sequence))
        batches: list[list[_Entry]] = []
        for entry in ordered:
            if batches and batches[-1][-1].post == entry.post:
                batches[-1].append(entry)
            else:
                batches.append([entry])
        return tuple(tuple(e.envelope() for e in batch) for batch in batches)

