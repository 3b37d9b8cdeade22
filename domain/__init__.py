"""The domain: lumbar traction programmes as event-sourced aggregates.

Nothing here knows about Flask, marshmallow or SQL. The `Programme`
aggregate (programme.py) enforces the rules of the domain; `Programmes`
(application.py) offers the commands and queries over the event store.
"""
