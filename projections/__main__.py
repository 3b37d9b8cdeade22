"""`python -m projections …` is `traction projections …` (`traction serve` starts the runner so)."""

from projections.cli import projections

projections(prog_name="traction projections")
