# finmatch — one entry point for setting up, running, testing and benchmarking.
# Every target creates/uses its own virtualenv (.venv) from pyproject.toml + constraints.txt.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.finmatch-installed
BENCH_STAMP := $(VENV)/.finmatch-bench-installed

.PHONY: help install run seed test test-fast drills lint format migrate bench bench-quality bench-latency bench-batch bench-reach bench-api bench-stats bench-footprint bench-soak bench-webhooks bench-registers clean

help:
	@echo "make run    - start registry, matching and gateway on SQLite with demo data"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make drills - fault drills: Redis, matching, the registry and PostgreSQL killed or stopped under traffic"
	@echo "make lint   - ruff check, ruff format --check, mypy, import-linter (service boundaries)"
	@echo "make seed   - (re)generate the synthetic Dongguan demo data into the registry database"
	@echo "make bench  - benchmarks (set FINMATCH_BENCH_POSTGRES_URL for the PostgreSQL ones)"
	@echo "make bench-quality / bench-latency / bench-batch - the matching benchmarks alone"
	@echo "make bench-reach - a product reach preview with a model over 100,000 and 1,000,000 firms (target <= 500 ms)"
	@echo "make bench-api - GET /v1/firms/{id}/matches through the gateway (PostgreSQL + Redis)"
	@echo "make bench-stats - officials' statistics on 500k firms / 1M applications (PostgreSQL + Redis)"
	@echo "make bench-footprint - each service's import time, memory and modules (the gateway loads no sklearn)"
	@echo "make bench-soak - 10 minutes of mixed traffic at 60% of capacity: RSS, p50/p99 and errors per minute, writes counted back (SOAK_ARGS='--minutes 30')"
	@echo "make bench-registers - an official register upload of 100,000 lines through the registry, twice (PostgreSQL; target < 10 s each; REGISTERS_ARGS='--csv')"
	@echo "make bench-webhooks - 10,000 webhook events at 200/s through the dispatcher to a receiver failing 20% of first attempts: latency, retries, duplicates (WEBHOOKS_ARGS='--quick')"

# The Python client (clients/python) goes in too: tests/client drive the stack through it.
$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		(echo "finmatch needs Python 3.11 or newer" && exit 1)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-e '.[dev]' -e ./clients/python
	touch $(STAMP)

install: $(STAMP)

# Bench-only dependencies (LightGBM, the ranking peer) on top of the dev install.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/python -m services.run

seed: $(STAMP)
	$(BIN)/python -m services.registry.cli seed

migrate: $(STAMP)
	$(BIN)/python -m services.registry.cli migrate

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The browser tests get a session of their own (see tests/dashboard/conftest.py), and so does
# make run's Ctrl-C test: its signal must not land while the other worker's cluster runs.
# The fault drills run last and alone: each starts PostgreSQL, Redis, three services and a
# load generator, which would starve the parallel session's timing-sensitive tests.
test: lint
	$(BIN)/pytest -n 2 -q --durations=15 --ignore=tests/dashboard/test_browser.py \
		--ignore=tests/e2e/test_make_run.py --ignore=tests/drills
	$(BIN)/pytest -q tests/dashboard/test_browser.py
	$(BIN)/pytest -q tests/e2e/test_make_run.py
	$(MAKE) drills

# Needs initdb/pg_ctl (apt-get install postgresql) and redis-server; they skip without them
# (fail under FINMATCH_REQUIRE_SERVICES=1). The machine's own PostgreSQL and Redis are untouched.
drills: $(STAMP)
	$(BIN)/pytest -q --durations=10 tests/drills

test-fast: $(STAMP)
	$(BIN)/pytest -q -x

bench: $(STAMP) bench-footprint bench-quality bench-latency bench-batch bench-reach bench-api bench-stats
	$(BIN)/python bench/import_firms.py

bench-quality: $(BENCH_STAMP)
	$(BIN)/python -m bench.quality

bench-latency: $(STAMP)
	$(BIN)/python -m bench.latency

bench-batch: $(STAMP)
	$(BIN)/python -m bench.batch_rank

bench-reach: $(STAMP)
	$(BIN)/python -m bench.reach

# Needs PostgreSQL (FINMATCH_BENCH_POSTGRES_URL) and Redis (FINMATCH_BENCH_REDIS_URL, DB 7).
# The load generator is wrk where installed (apt-get install wrk), else a Python client.
bench-api: $(STAMP)
	@command -v wrk >/dev/null || echo "bench-api: wrk not found (apt-get install wrk); the Python client will limit the figures"
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var

bench-stats: $(STAMP)
	$(BIN)/python -m bench.stats

# Each service's import time, memory and modules before it serves (fresh interpreters).
bench-footprint: $(STAMP)
	$(BIN)/python -m bench.footprint

# Needs PostgreSQL (FINMATCH_BENCH_POSTGRES_URL) and Redis (FINMATCH_BENCH_REDIS_URL); not part of
# `make bench` (it runs for 10 minutes). Options go in SOAK_ARGS, e.g. SOAK_ARGS='--minutes 30'.
bench-soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# PostgreSQL from FINMATCH_BENCH_POSTGRES_URL (its own database, created and dropped), else a
# temporary SQLite file. About a minute; options go in WEBHOOKS_ARGS, e.g. WEBHOOKS_ARGS='--quick'.
bench-webhooks: $(STAMP)
	$(BIN)/python -m bench.webhooks $(WEBHOOKS_ARGS)

bench-registers: $(STAMP)
	$(BIN)/python -m bench.registers $(REGISTERS_ARGS)
