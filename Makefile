# Run `make help` for the list. Every target runs from the repository root, where the settings
# read .env.example and .env.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# BROKERS=3 (stack-up, first time): a three-broker Kafka cluster; the stack keeps what it was made with.
BROKERS ?=
STACK  := BROKERS=$(BROKERS) PYTHONPATH=deploy/local $(PY) -m localstack

.DEFAULT_GOAL := help
.PHONY: help venv lock stack-install stack-up stack-down stack-status stack-clean seed run stop test test-containers lint format bench bench-core bench-show chaos

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv with the project and its dev tools

# Every package from the lock, each checked against its hashes; then the project alone (no dependency of
# its own resolved, nor a build backend fetched: setuptools is in the lock too).
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# requirements-dev.lock (runtime and dev, plus pip and the build backend: make venv, CI) and
# requirements.lock (runtime: the image), resolved from pyproject.toml for CPython 3.11 on Linux x86_64,
# every file hashed. Pins are kept unless pyproject.toml no longer allows them; UPGRADE=name moves that
# package to its newest release allowed, UPGRADE=all every package. The runtime lock is held to the dev
# lock's versions, so the image runs what the tests ran.
UPGRADE ?=
LOCK := $(PY) -m uv pip compile -q --generate-hashes --python-version 3.11 \
  --python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' \
  $(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE)))
lock: venv ## Resolve requirements.lock and requirements-dev.lock again (UPGRADE=name or UPGRADE=all to upgrade)
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], "pip", sep="\n")' \
	  | $(LOCK) --extra dev -o requirements-dev.lock pyproject.toml -
	$(LOCK) -c requirements-dev.lock -o requirements.lock pyproject.toml

stack-install: venv ## Fetch and build the no-Docker stack's components (cached)
	$(STACK) install

stack-up: venv ## Start Kafka, PostgreSQL, the schema registry and Jaeger without Docker
	$(STACK) up

stack-down: venv ## Stop the no-Docker stack (its data stays in .stack/)
	$(STACK) down

stack-status: venv ## Show each component's state, memory, endpoints and log
	$(STACK) status

stack-clean: venv ## Stop the no-Docker stack and delete its data
	$(STACK) clean

seed: venv ## Migrate every service's schema and load the demo's customers, stock and countries
	$(PY) -m services.seed

run: venv ## Start the four services in the background (the no-Docker stack must be up)
	$(STACK) run

stop: venv ## Stop the four services
	$(STACK) stop

test: venv ## Run the test suite against the stack the environment names (default: the local one)
	$(PY) -m pytest $(PYTEST_ARGS)

test-containers: venv ## Run the test suite against a stack of its own started by testcontainers (needs Docker)
	SHOP_TESTCONTAINERS=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: venv ## ruff, check only
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv ## ruff, fix what it can
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

.PHONY: flow
flow: venv ## Write docs/flow/ (AsyncAPI, Mermaid) and README's diagram from the code (FLOW_ARGS=--check)
	$(PY) -m services.shopctl flow $(FLOW_ARGS)

BENCH_RATES ?= 50 100 200 400 800 1600 3200
BENCH_SECONDS ?= 60
BENCH_DRAIN_TIMEOUT ?= 120
BENCH_WARMUP ?= 15
bench: venv ## End-to-end: step the offered rate up to the highest sustained (services at OTEL_TRACES_SAMPLER_ARG=0.1)
	OTEL_TRACES_SAMPLER_ARG=0.1 BENCH_RATES="$(BENCH_RATES)" BENCH_SECONDS=$(BENCH_SECONDS) \
	  BENCH_DRAIN_TIMEOUT=$(BENCH_DRAIN_TIMEOUT) BENCH_WARMUP=$(BENCH_WARMUP) $(PY) -m tests.bench.sustained

bench-core: venv ## Benchmark the messaging runtime against a bare consume-decode-insert loop
	$(PY) -m tests.bench.core

bench-show: venv ## Time `shopctl order show` with 100k orders in the read model (stack up, timeline running)
	$(PY) -m tests.bench.show

CHAOS_ORDERS ?= 5000
CHAOS_RATE ?= 100
chaos: venv ## Orders under kill -9 of every service (twice), Kafka and PostgreSQL; then the books (stack and services up)
	BROKERS=$(BROKERS) CHAOS_ORDERS=$(CHAOS_ORDERS) CHAOS_RATE=$(CHAOS_RATE) $(PY) -m tests.chaos.run
