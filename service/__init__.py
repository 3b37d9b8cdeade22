"""Everything around the domain, in layers (ARCHITECTURE.md):

- storage/: the stores (SQLite, PostgreSQL): recorders, the ledger and its
  chain, locks, the service's own tables, the library's stored format;
- audit/: verifying the chain, checkpoints, replay and export;
- config.py: the settings (every TRACTION_* variable, read once);
- bootstrap.py: the composition root, which builds the parts below;
- http/: the Flask API and the dashboard's pages;
- demo/: a simulated history to try the service with;
- cli/ and wsgi.py: the entry points (`traction ...`, gunicorn's).

Each may import only from the layers below it; `make test` checks it.
"""
