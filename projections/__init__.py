"""Read models computed from the event store: programme summaries, clinic
dashboards and the network view.

- metrics.py: the metric formulas, pure functions; survival.py: time to
  response (Kaplan–Meier); intervals.py: Wilson, exact Poisson and t intervals;
- summaries.py, dashboards.py, network.py: one module per read model — what
  it stores and how each event changes it;
- engine.py: applying a batch of events in memory, and parking poison events;
- store.py: the versioned tables, written with the tracking position in one
  transaction (exactly once), and the reads the API makes;
- runner.py, rebuild.py, status.py, locks.py: following the log, rebuilding,
  reporting (the commands, `traction projections …`, are in service/cli).
- reading.py: what the API reads (JSON bodies, with the position they reflect).
"""
