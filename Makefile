# The two commands a new user needs are `make drill` and `make test` (README.md).
# Everything else here is what those two depend on; each step is idempotent and cached.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD := $(ROOT)/build
COLLECTION_LINK := $(BUILD)/collections/ansible_collections/tradeops/incident_response
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help
help:
	@echo "make drill   set up this machine and run the disaster-recovery drill against the exchange double"
	@echo "make test    set up this machine and run every test"
	@echo "other targets: machine venv collection-link unit double-tests conformance integration sanity fleet-tests runbook-tests molecule fleet-image fleet-up fleet-down clean"

# ---------------------------------------------------------------- machine and venv
MACHINE_STAMP := /var/lib/tradeops-machine.stamp
.PHONY: machine
machine: $(MACHINE_STAMP)
$(MACHINE_STAMP): scripts/setup-machine.sh
	$(SUDO) bash scripts/setup-machine.sh
	$(SUDO) touch $@

VENV_STAMP := $(VENV)/.installed
.PHONY: venv
venv: $(VENV_STAMP)
$(VENV_STAMP): requirements.txt requirements-dev.txt constraints.txt simulator/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip==25.3
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(VENV)/bin/pip install --quiet --no-deps -e simulator
	touch $@

.PHONY: constraints
constraints:
	rm -rf $(BUILD)/constraints-venv && python3 -m venv $(BUILD)/constraints-venv
	$(BUILD)/constraints-venv/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Every transitive dependency of requirements-dev.txt, pinned (pip freeze of a fresh .venv)."; \
	  echo "# Regenerate with: make constraints"; \
	  $(BUILD)/constraints-venv/bin/pip freeze | grep -v '^-e'; } > constraints.txt

.PHONY: collection-link
collection-link: $(COLLECTION_LINK)
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(ROOT) $@

.PHONY: setup
setup: machine venv collection-link

include simulator/double.mk
include fleet/fleet.mk
include tests/tests.mk
include molecule/molecule.mk

.PHONY: clean
clean:
	rm -rf $(BUILD) .pytest_cache tests/output

# ---------------------------------------------------------------- the main job
.PHONY: drill
drill: setup fleet-image  ## the monthly DR drill: double + fleet + key compromise + kill switch + report
	bash scripts/drill.sh
