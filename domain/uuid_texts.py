"""UUIDs' texts, remembered: str(UUID) is Python code costing several times a dict
lookup, and bulk ingest writes a programme's id and an event's id out more than
once per line (content digests, the programme's entries, receipts)."""

from __future__ import annotations

from uuid import UUID


class UuidTexts:
    """str(UUID) of the ids asked for lately, by each id's int (which hashes in C).
    A memo, not a record: once it holds `kept` texts it forgets them all at once."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._texts: dict[int, str] = {}

    def text(self, value: UUID) -> str:
        key = value.int
        text = self._texts.get(key)
        if text is None:
            text = str(value)
            self._keep(key, text)
        return text

    def remember(self, value: UUID, text: str) -> None:
        """Remember `text` as str(value): the caller has checked that it is exactly
        that (bulk ingest, for a line's event_id written canonically)."""
        self._keep(value.int, text)

    def __len__(self) -> int:
        return len(self._texts)

    def _keep(self, key: int, text: str) -> None:
        if len(self._texts) >= self.kept:
            self._texts.clear()
        self._texts[key] = text
