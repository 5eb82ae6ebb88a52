# Cello tracing demo: three traced services, an OpenTelemetry Collector, Jaeger and Zipkin.
# `make help` lists the targets. Every target sets up what it needs itself.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced

.PHONY: help setup run test test-unit test-integration test-e2e lint up down logs status clean new-service

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml uv.lock scripts/bootstrap.sh $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@scripts/bootstrap.sh
	@touch $@

setup: $(STAMP) ## Create .venv (Python >= 3.12) with the locked dependencies

run: $(STAMP) ## Run the three services in the foreground on loopback (Ctrl-C stops all)
	@$(PY) -m tools.run

test: $(STAMP) ## Run every test: unit, integration and e2e
	@$(PY) -m pytest

test-unit: $(STAMP) ## Run the unit tests (in-memory exporter, no network)
	@$(PY) -m pytest -m unit

test-integration: $(STAMP) ## Run the integration tests (real services on loopback)
	@$(PY) -m pytest -m integration

test-e2e: $(STAMP) ## Run the end-to-end tests against Jaeger and Zipkin (starts and stops the stack)
	@$(PY) -m pytest -m e2e

DB ?= sqlite

up: $(STAMP) ## Start the whole stack in the background (Docker, or natively); DB=postgres, SAMPLING=tail
	@DB=$(DB) deploy/stack.sh up

down: ## Stop everything `make up` started
	@deploy/stack.sh down

status: ## Show the stack's components, pids, ports and health
	@deploy/stack.sh status

logs: ## Show the stack's logs (NAME=gateway for one component, FOLLOW=1 to follow)
	@deploy/stack.sh logs $(NAME) $(if $(FOLLOW),-f)

lint: $(STAMP) ## Check style (ruff) and types (mypy, strict on the telemetry package)
	@$(VENV)/bin/ruff check libs services tools tests
	@$(VENV)/bin/ruff format --check libs services tools tests
	@$(VENV)/bin/mypy

new-service: $(STAMP) ## Scaffold services/NAME/, traced, and its test: make new-service NAME=orders [PORT=8003]
	@$(PY) -m tools.new_service "$(NAME)" $(if $(PORT),--port $(PORT))
	@RELOCK=1 scripts/bootstrap.sh && touch $(STAMP)

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) data .run .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench
bench: ## Benchmark the chain against FastAPI and the floors, SQLAlchemy per setting (docs/benchmarks/)
	@bench/run.sh
	@$(PY) -m bench.hop_gaps | tee docs/benchmarks/hop-gaps.txt

RATE ?= 20
DURATION ?= 30

.PHONY: demo load red
demo: $(STAMP) ## Tour the running stack (requests, errors, DEMO_SCENARIOS=1 faults) with trace links
	@$(PY) -m tools.demo

red: $(STAMP) ## Print requests, errors and p50/p99 per service from the collector's RED metrics
	@$(PY) -m tools.red

load: $(STAMP) ## Steady mixed traffic to the gateway, RATE=20 req/s for DURATION=30 s, then a summary
	@$(PY) -m tools.load --rate $(RATE) --duration $(DURATION)

.PHONY: test-faults
test-faults: $(STAMP) ## Run every fault test, long ones too (60 s soak, Zipkin restart)
	@CELLO_FAULTS_LONG=1 $(PY) -m pytest -m faults
