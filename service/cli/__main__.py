"""`python -m service.cli ...` is `traction ...`: how `traction serve` starts the
projection runner beside gunicorn."""

from service.cli import main

main(prog_name="traction")
