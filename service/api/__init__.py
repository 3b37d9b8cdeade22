"""HTTP endpoints, one blueprint per area.

A view reads the request, calls one application method and shapes the
response: nothing more. Validation is in service/schemas, error mapping in
service/problems.py, access control in service/access.py.
"""
