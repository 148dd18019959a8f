# The exchange double (simulator/): its own tests and the official-SDK conformance test.
# Included by the top-level Makefile, which defines ROOT and VENV and the venv target.

DOUBLE_DIR := $(ROOT)/build/double

.PHONY: double-tests
double-tests: venv  ## the double's own test suite (starts real doubles on free ports)
	$(VENV)/bin/pytest -q -p no:cacheprovider $(ROOT)/simulator/tests

.PHONY: conformance
conformance: venv  ## the unmodified coinbase-advanced-py SDK against the double (EC and Ed25519 keys)
	$(VENV)/bin/pytest -q -p no:cacheprovider --timeout 120 $(ROOT)/tests/conformance

.PHONY: double-serve
double-serve: venv  ## run a double for a drill or by hand: https://localhost:8443, reachable by the fleet
	$(VENV)/bin/exchange-double serve --host 0.0.0.0 --port 8443 \
		--ca-dir $(DOUBLE_DIR)/ca --state-dir $(DOUBLE_DIR)/state --ready-file $(DOUBLE_DIR)/ready.json
