# Test targets (included by the top-level Makefile). `make test` runs them all, in the order that
# fails fastest: cheap checks first, the drill fleet last.
PYTEST := $(VENV)/bin/pytest
# Outside the checkout: inside it, ansible-test asks git which files exist, and build/ is ignored.
SANITY_BASE := /tmp/tradeops-sanity
SANITY_ROOT := $(SANITY_BASE)/ansible_collections/tradeops/incident_response
COLLECTION_TARBALL := $(BUILD)/dist/tradeops-incident_response-$(shell sed -n 's/^version: *//p' galaxy.yml).tar.gz

.PHONY: test unit integration runbook-tests sanity collection-build molecule

test: setup unit double-tests conformance sanity integration fleet-tests runbook-tests molecule
	@echo "make test: all suites passed"

unit: venv collection-link
	$(PYTEST) tests/unit

integration: venv collection-link
	$(PYTEST) tests/integration

# Every runbook against the exchange double and a real drill fleet (one fleet for the session,
# reset before each test), judged by the state it leaves there. The slowest tests are listed.
runbook-tests: fleet-image collection-link
	$(PYTEST) tests/runbooks --durations=15

# The tarball is what AWX and Galaxy get; sanity runs on exactly that content.
collection-build: venv
	rm -rf $(BUILD)/dist && mkdir -p $(BUILD)/dist
	$(VENV)/bin/ansible-galaxy collection build --output-path $(BUILD)/dist $(ROOT)

sanity: venv collection-build
	rm -rf $(SANITY_BASE) && mkdir -p $(SANITY_ROOT)
	tar -xzf $(COLLECTION_TARBALL) -C $(SANITY_ROOT)
	# ansible-test bootstraps pip in each sanity venv from a script it downloads from a host
	# CI cannot reach; tests/sanity/get_pip_offline.py does the same from ensurepip and PyPI.
	mkdir -p $(HOME)/.ansible/test/cache
	cp tests/sanity/get_pip_offline.py $(HOME)/.ansible/test/cache/get_pip_24_2.py
	cd $(SANITY_ROOT) && $(VENV)/bin/ansible-test sanity --python 3.11 --requirements --color no
