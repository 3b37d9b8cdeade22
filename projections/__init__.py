"""Read models computed from the event store: programme summaries, clinic
dashboards and the network view (domain.md, "Metrics").

- metrics.py: the metric formulas, pure functions;
- summaries.py, dashboards.py, network.py: one module per read model — what
  it stores and how each event changes it;
- engine.py: applying a batch of events in memory, and parking poison events;
- store.py: the versioned tables, written with the tracking position in one
  transaction (exactly once), and the reads the API makes;
- runner.py, rebuild.py, status.py, locks.py, cli.py: `traction projections …`.
"""
