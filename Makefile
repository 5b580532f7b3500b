# Image pipeline: `make run` starts the services, `make test` runs every test. `make help` lists targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help install run run-gateway run-inference bench-inference test test-fast lint format typecheck bench bench-thumbnails bench-uploads bench-scaling bench-stats bench-search bench-upload-caption bench-agreement db clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install pinned dependencies (idempotent)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[gateway,inference,export,dev]'
	@touch $@

# `make run INFERENCE_MODEL=tiny-random` (or any setting of the tables in docs/operations.md, given on the command
# line or in the environment) reaches both services: make passes such variables to its recipes.

run: install ## Install if needed and start both services (gateway :8000, inference :3000); Ctrl-C stops both
	$(BIN)/honcho start --procfile Procfile

run-gateway: install ## Start only the gateway
	$(BIN)/python -m gateway

run-inference: install ## Start only the inference service
	$(BIN)/python -m inference

db: ## Make sure the local PostgreSQL used by the PostgreSQL tests is up (no-op where there is none)
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
		command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start || true; \
	fi

test: install db lint typecheck ## Lint, type-check, run every test, and hold each package to the coverage floor
	$(BIN)/python -m pytest
	@for package in gateway inference servicekit contracts; do \
		printf '%s coverage: ' $$package; \
		$(BIN)/python -m coverage report --include="$$package/*" --format=total --fail-under=90 || exit 1; \
	done

test-fast: install ## Only the pytest suite
	$(BIN)/python -m pytest

lint: install ## ruff check + format check + the import layers (import-linter contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install ## Apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict on gateway, inference, contracts and servicekit
	$(BIN)/mypy

bench: bench-thumbnails bench-uploads bench-inference bench-scaling bench-stats bench-search ## Run every benchmark and print its tables

bench-thumbnails: install ## Thumbnail stage: naive Pillow vs ours vs libvips
	$(BIN)/python -m bench.thumbnails

bench-uploads: install ## Upload acceptance throughput vs a bare Litestar app
	$(BIN)/python -m bench.uploads

bench-scaling: install ## Captions/s through the replica pool: 1-8 fake replicas vs ideal; one slow replica
	$(BIN)/python -m bench.scaling

bench-stats: install ## GET /api/stats latency at 10k, 100k and 1M images, SQLite and PostgreSQL (10k rows made by the repository, copied up)
	$(BIN)/python -m bench.stats --seed 10000 --batch 500

bench-search: install db ## Caption search p50/p95 at 10k, 100k and 1M images, SQLite and PostgreSQL (rows bulk-loaded, indexed by the app's migration)
	$(BIN)/python -m bench.search

bench-upload-caption: install ## A 12 MP JPEG from upload to caption through both services (BLIP-large, random weights)
	$(BIN)/python -m bench.upload_caption

bench-agreement: install ## How often int8, OpenVINO bf16 and PyTorch bf16 captions agree with fp32 (MODEL_DIR, HF_DIR; default tiny-random)
	$(BIN)/python -m bench.agreement --model-dir $(or $(MODEL_DIR),tiny-random) $(if $(HF_DIR),--hf-dir $(HF_DIR))

bench-inference: install ## BLIP-large (random weights): PyTorch fp32 and bf16 vs our exports on onnxruntime and OpenVINO
	$(BIN)/python -m bench.inference

clean: ## Remove caches (keeps .venv, data and logs)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
