"""The HTTP API: the Flask app factory (app.py), one blueprint per area (api/),
marshmallow schemas (schemas/), access control (access.py), problem documents
(problems.py), the request log and metrics, and the dashboard's pages (web.py)."""
