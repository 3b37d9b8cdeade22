"""The fixed words of docs/events.md: every category a programme or event can take.

The request schemas validate against these, the aggregate and the
projections count by them; one list, so they cannot drift apart.
"""

STATUSES = ("active", "paused", "discharged")
MODALITIES = ("mechanical_table", "decompression_mat", "inversion", "stretching_exercises")
CONDITIONS = ("low_back_pain", "sciatica", "disc_herniation", "spinal_stenosis", "other")
SETTINGS = ("in_office", "at_home", "hybrid")
MISSED_REASONS = ("pain", "schedule", "equipment", "illness", "other")
PAIN_CONTEXTS = ("before_session", "after_session", "follow_up")
SEVERITIES = ("mild", "moderate", "severe")
OUTCOMES = ("goals_met", "improved", "no_change", "worsened", "referred", "dropped_out")
#: The scales a pain score may be on: the 0-10 numeric rating scale (11 points) alone
#: today, recorded with each report (events before 0.2.0 were all on it).
PAIN_SCALES = ("nrs_11",)
DEFAULT_PAIN_SCALE = "nrs_11"
