"""HTTP endpoints, one blueprint per area.

A view reads the request, calls one application method and shapes the
response: nothing more. Validation is in service/http/schemas, error mapping in
service/http/problems.py, access control in service/http/access.py.
"""
