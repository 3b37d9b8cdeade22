# The two commands of the README's quick start:
#   make run    set up, then serve the API on SQLite with live projections
#   make test   set up, then run the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Without a key-encryption key, `make run` makes (or opens) a development store,
# whose key is kept in the store itself: the service says so on every start.
run: $(BIN)/.installed
	@[ -n "$$TRACTION_DATA_KEY$$TRACTION_DATA_KEY_FILE" ] || $(BIN)/traction db init --development-keys
	$(BIN)/traction serve

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	.ci/with-test-postgres $(BIN)/pytest -n 2 -q $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) var .pytest_cache mutants .venv-mutation

# Every performance benchmark (P1-P12, BENCHMARKS.md) on SQLite and PostgreSQL, within
# 30 minutes once bench/data/ holds the generated stores; writes bench/results/
# and BENCHMARKS.md. Needs wrk (apt-get install -y wrk). BENCH_ARGS=--quick for short runs.
BENCH_ARGS ?=
.PHONY: bench
bench: $(BIN)/.installed
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

# The long reliability runs (R1-R4, R8, RELIABILITY.md), on SQLite and on PostgreSQL:
# workers killed during ingest, 32 clients on one programme, schemathesis against
# the live server, the programme state machine, hostile and stalled bodies.
# SOAK_SECONDS per store (default 300); loopback only. See RELIABILITY.md.
SOAK_SECONDS ?= 300
.PHONY: soak
soak: $(BIN)/.installed
	SOAK_SECONDS=$(SOAK_SECONDS) .ci/with-test-postgres $(BIN)/python -m tests.reliability.soak

# Mutation testing of the rules and the metrics (MUTATION.md): mutmut, plus
# tests/mutation/ for the code mutmut cannot reach. Minutes of CPU: not in CI.
# MUTATION_WORKERS mutants at a time (the machine is shared: keep it at 1 or 2).
# A venv of its own: mutmut brings setproctitle, with which gunicorn retitles its
# processes and rewrites what /proc shows of their environment (tests/ops read it).
MUTATION_WORKERS ?= 2
MUTATION_VENV ?= .venv-mutation
.PHONY: mutation
mutation: $(MUTATION_VENV)/bin/.installed
	$(MUTATION_VENV)/bin/python -m tests.mutation --workers $(MUTATION_WORKERS)

$(MUTATION_VENV)/bin/.installed: pyproject.toml
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MUTATION_VENV)/bin/python -m pip install --quiet -e '.[test,mutation]'
	touch $@
