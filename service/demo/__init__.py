"""The demo: a simulated history of traction programmes, and how it is seeded.

`simulation.py` is pure: from a seed it produces, per programme, the batches
of event envelopes a clinic system would post, in posting order.
`seeding.py` posts them through the application layer (validated by the same
schema as the API), registers the demo clinics and issues demo tokens.
"""
