# FraudPipeline development tasks. `make test` is the one test command (README, CI).
SHELL := /bin/bash
# Every download and build is cached here (uv, Maven, Go, binaries); FRAUDPIPE_CACHE moves it.
export FRAUDPIPE_CACHE ?= $(HOME)/.cache/fraudpipeline
CACHE := $(FRAUDPIPE_CACHE)
UV_VERSION := 0.13.9
UV_HOME := $(CACHE)/tools/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
PYTHON ?= python3.11
export UV_CACHE_DIR ?= $(CACHE)/uv-cache
# uv must use the machine's Python 3.11, never fetch one.
export UV_PYTHON_DOWNLOADS := never
VENV := .venv
PYTEST_ARGS ?=

.PHONY: dev test unit integration lint servers browser up lock requirements clean-dev

## dev: create the locked development environment in .venv (all images' dependencies)
dev: $(VENV)/.synced

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not on PATH)"; exit 1; }
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

## servers: download/build Kafka, the Kubernetes control plane, helm and Prometheus into the cache
servers: dev
	$(VENV)/bin/fraudpipe dev prepare

## browser: Debian's Chromium for the live page's test (tests/integration/local), installed once
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Another apt or dpkg run (unattended upgrades, a second install) holds the package lock: wait for it,
# bounded, instead of failing at once.
APT_LOCK_WAIT_S ?= 600
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_WAIT_S) -q
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "no apt-get: install Chromium yourself (FRAUDPIPE_CHROMIUM=/path/to/chromium) for the live page's test"; exit 0; fi; \
	echo "installing Debian's chromium (the live page's browser test); if another apt or dpkg holds the package lock, apt-get waits for it up to $(APT_LOCK_WAIT_S) s"; \
	holder=$$(fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock 2>/dev/null | tr -s ' '); \
	if [ -n "$$holder" ]; then echo "waiting for the package lock, held by pid(s)$$holder: $$(ps -o comm= -p $$(echo $$holder | tr ' ' ',') 2>/dev/null | tr '\n' ' ')"; fi; \
	$(APT) install -y chromium >/dev/null || \
	  { $(APT) update >/dev/null && $(APT) install -y chromium >/dev/null; }

## up: the example pipeline on this machine (docs/local.md); UP_ARGS="--replay" fills the page at once
UP_FILE ?= examples/minimal.yaml
UP_ARGS ?=
up: dev
	$(VENV)/bin/fraudpipe up -f $(UP_FILE) $(UP_ARGS)

## test: install what is missing, lint, then run every test (unit and integration, real servers)
test: servers browser lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## lint: ruff (lint and format) and the architecture's import contracts (pyproject.toml)
lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

unit: dev
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

integration: servers browser
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

## lock: re-resolve uv.lock after editing pyproject.toml, and refresh the images' requirements
lock: | $(UV)
	$(UV) lock --python $(PYTHON)
	$(MAKE) requirements

requirements: | $(UV)
	for c in operator serving flink; do \
	  $(UV) export --frozen --extra $$c --no-dev --no-emit-project --no-hashes --no-header -q -o $$c/requirements.txt; \
	done

clean-dev:
	-$(VENV)/bin/fraudpipe dev down
	rm -rf $(VENV) .fraudpipe
