"""The event store: where programmes' events and their ledger entries live.

`settings.py` turns `TRACTION_DATABASE_URL` into the eventsourcing library's
settings (the one place that does). `sqlite.py` and `postgres.py` extend the
library's application recorders so that, in the same transaction as the
events, each event gets a gap-free global position and a ledger entry
(`chain.py` computes the entry's integrity hash).
"""
