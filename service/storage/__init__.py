"""The stores: where programmes' events, their ledger entries and the service's
own rows live. The lowest layer above the domain: projections, the audit,
the HTTP API and the command line all use it; it uses only the domain.

- stores.py: a parsed TRACTION_DATABASE_URL, and the eventsourcing library's
  settings for it (the one place that knows the library's variable names);
- sqlite.py, postgres.py: the library's application recorders plus the
  ledger: in the same transaction as the events, each gets a gap-free
  global position, its ledger entry (ledger.py) and its integrity chain
  hash (chain.py); group_commit.py lets a worker's concurrent saves share
  one transaction; sqlite_lock.py queues SQLite's writers;
- stored.py: reading the library's stored JSON without its mapper (bulk reads);
- transcoding.py: writing the library's stored JSON, the same bytes with orjson;
- database.py, directory.py: the service's own tables (clinics, tokens, the
  access log); schema.py: the lock held while tables are created;
- errors.py: what the drivers raise when the database cannot be reached.
"""
