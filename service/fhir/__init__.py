"""Traction Ledger as HL7 FHIR R4: programmes out as resources, observations and
sessions in as events.

`terms` holds every code, canonical URL and identifier system (and `personal`,
the one door every personal field goes through); `mapping` turns a programme's
history into resources; `outcomes` words errors as OperationOutcomes;
`capability` is the CapabilityStatement; `intake` turns posted resources into
event envelopes; `bulk` runs Bulk Data export jobs. docs/fhir.md is the mapping
for integrators, element by element.
"""
