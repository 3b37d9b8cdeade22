"""Mutation testing of the rules and the metrics: `make mutation` (see __main__)."""
