# imweb: `make run` starts the whole service, `make test` proves it works.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format system-deps check-python clean fuzz

run: $(VENV)/.installed
	$(PY) -m imweb.supervisor

test: $(VENV)/.installed-dev system-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
	$(PY) -m tests.scaled.on_postgres

# The property-based tests of untrusted input (tests/property/), long: 20,000 examples each.
fuzz: $(VENV)/.installed-dev
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/property -p no:cacheprovider

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed-dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

system-deps:
	@tests/install-system-deps.sh

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "imweb needs Python 3.11 or newer; set PYTHON=/path/to/python3.11"; exit 1; }

$(VENV)/.installed: requirements.txt | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output

# Benchmarks (bench/README.md): imweb beside a real Prosody 0.12 and a bare relay, one table at the end.
# Figures land in $(BENCH_OUT); every variable can be set on the command line, e.g. `make bench BENCH_IDLE_USERS=10000`.
BENCH_OUT ?= test-output/bench
BENCH_PAIRS ?= 100
BENCH_RATE ?= 500
BENCH_SECONDS ?= 20
BENCH_STORM_USERS ?= 2000
BENCH_IDLE_USERS ?= 1000
BENCH_CEILING ?= --start 100 --factor 2 --seconds 10 --max-steps 12 --budget 240
BENCH_MINUTES ?= 25

.PHONY: bench
bench: $(VENV)/.installed-dev system-deps
	$(PY) -m bench.suite --out $(BENCH_OUT) --pairs $(BENCH_PAIRS) --rate $(BENCH_RATE) --seconds $(BENCH_SECONDS) \
		--storm-users $(BENCH_STORM_USERS) --idle-users $(BENCH_IDLE_USERS) --ceiling="$(BENCH_CEILING)" \
		--minutes $(BENCH_MINUTES)
