"""Named reasons for refusing a command.

Each rule of the domain has its own exception class, so that callers can
tell precisely which rule a refused event broke (the HTTP layer turns the
`rule` name into the problem document's `rule` member).
"""

from __future__ import annotations

from datetime import datetime


class DomainRuleViolation(Exception):
    """An event was refused because it would break a rule of the domain."""

    rule = "domain_rule"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # Set by the application when the event came in a batch.
        self.event_index: int | None = None
        self.event_id: str | None = None


class NotStarted(DomainRuleViolation):
    """Rule 1: the first event of a programme must be ProgrammeStarted."""

    rule = "first_event_must_be_programme_started"


class AlreadyStarted(DomainRuleViolation):
    """Rule 1: a programme is started only once."""

    rule = "programme_already_started"


class AlreadyDischarged(DomainRuleViolation):
    """Rule 2: after discharge only corrections are accepted."""

    rule = "programme_discharged"


class ProgrammeIsPaused(DomainRuleViolation):
    """Rule 3: no sessions (completed or missed) and no second pause while paused."""

    rule = "programme_paused"


class ProgrammeErased(DomainRuleViolation):
    """An erased programme's personal data is gone: nothing more is recorded to it."""

    rule = "programme_erased"


class ProgrammeNotPaused(DomainRuleViolation):
    """Rule 3: a programme can only be resumed while it is paused."""

    rule = "programme_not_paused"


class OccurredBeforeStart(DomainRuleViolation):
    """Rule 4: nothing happens before the programme's start."""

    rule = "occurred_before_start"


class OccurredInFuture(DomainRuleViolation):
    """Rule 4: nothing is more than five minutes ahead of the server's clock."""

    rule = "occurred_in_future"


class PlanUnchanged(DomainRuleViolation):
    """Rule 5: a plan adjustment must change at least one value."""

    rule = "plan_unchanged"


class ForceNotAllowed(DomainRuleViolation):
    """Rule 5: force is given exactly when the modality is mechanical_table."""

    rule = "force_requires_mechanical_table"


class UnknownCorrectionTarget(DomainRuleViolation):
    """A correction must name an earlier session or pain report of this programme."""

    rule = "correction_target_unknown"


class CorrectionDoesNotFit(DomainRuleViolation):
    """A correction's data must be the full data of the corrected event's type."""

    rule = "correction_data_mismatch"


class ApplicationError(Exception):
    """A command could not be carried out for a reason outside the aggregate."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProgrammeNotFound(ApplicationError):
    """No such programme in this clinic (or at that version or moment)."""


class VersionNotRecorded(ProgrammeNotFound):
    """`?version=N` beyond what a programme the caller may see has recorded."""

    def __init__(self, version: int, current_version: int) -> None:
        super().__init__(
            f"the programme has no version {version} (it is at version {current_version})"
        )
        self.current_version = current_version


class NotYetRecorded(ProgrammeNotFound):
    """`?as_of=T` before the first event of a programme the caller may see was recorded."""

    def __init__(self, first_recorded_at: datetime, current_version: int) -> None:
        super().__init__(
            f"the programme's first event was recorded at {first_recorded_at.isoformat()}; "
            "nothing was known of it before then"
        )
        self.first_recorded_at = first_recorded_at
        self.current_version = current_version


class VersionConflict(ApplicationError):
    """Rule 7: the client's expected_version is not the programme's version."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"expected_version is {expected} but the programme is at version {actual}"
        )
        self.expected = expected
        self.actual = actual


class EventIdConflict(ApplicationError):
    """Rule 6: an event_id was reused with different content."""

    def __init__(self, detail: str, event_ids: list[str]) -> None:
        super().__init__(detail)
        self.event_ids = event_ids


class ConcurrentWrite(ApplicationError):
    """Another writer saved events to this programme at the same moment; retry."""
