# The drill fleet: image, containers, provisioning, tests. Included by the top-level Makefile
# (which defines ROOT, VENV, PY, BUILD, SUDO and the machine / venv / collection-link targets).
#
#   make fleet-image                  build the image unless its recipe hash already has one
#   make fleet-up [FLEET_HOSTS=3]     start drill-bot-1..N (systemd as PID 1)
#   make fleet-vars                   throwaway keys registered with the double that
#                                     `make double-serve` runs, and build/drill/fleet-vars.yml
#   make fleet-provision [FLEET_VARS=build/drill/fleet-vars.yml]
#                                     install the bot, units, keys, CA (fleet/provision.yml)
#   make fleet-down                   remove our containers (label tradeops.fleet=drill) only
#   make fleet-tests                  start a double, bring the fleet up, provision, test, tear down
FLEET_HOSTS ?= 3
FLEET_VARS ?= $(BUILD)/drill/fleet-vars.yml
FLEET_IMAGE = $(shell bash $(ROOT)/fleet/image/build.sh --print-tag)
FLEET_PYTEST_ARGS ?=

FLEET_DOUBLE_READY ?= $(BUILD)/double/ready.json

.PHONY: fleet-image fleet-up fleet-down fleet-status fleet-vars fleet-provision fleet-tests fleet-unit

# The bot's Python dependencies are installed into the image with the venv's pip (CPython 3.11,
# like bookworm's python3), from requirements.txt and constraints.txt.
fleet-image: machine venv
	$(SUDO) env PYTHON=$(PY) BUILD_DIR=$(BUILD)/fleet-image bash fleet/image/build.sh

fleet-up: fleet-image
	$(SUDO) env FLEET_IMAGE=$(FLEET_IMAGE) bash fleet/fleet.sh up $(FLEET_HOSTS)

fleet-down:
	$(SUDO) bash fleet/fleet.sh down

fleet-status:
	$(SUDO) bash fleet/fleet.sh status

# New keys each time (the double keeps the old ones registered); run it after the double starts.
fleet-vars: venv
	@test -f $(FLEET_DOUBLE_READY) || { echo "no $(FLEET_DOUBLE_READY): start the double first (make double-serve)"; exit 1; }
	$(PY) fleet/drill_vars.py --ready-file $(FLEET_DOUBLE_READY) --out $(dir $(FLEET_VARS))

fleet-provision: fleet-up collection-link
	@test -f $(FLEET_VARS) || { echo "no $(FLEET_VARS): it names the double's port, its CA and the key files;" \
	  "make fleet-vars writes one for a running double"; exit 1; }
	time $(VENV)/bin/ansible-playbook -i inventories/drill fleet/provision.yml -e @$(FLEET_VARS)

# The bot's logic without a fleet (fast; part of fleet-tests too).
fleet-unit: venv collection-link
	$(PY) -m pytest fleet/tests/test_bot_unit.py -q $(FLEET_PYTEST_ARGS)

# Real state: a double on 0.0.0.0, three hosts, provisioning, and what the SOP says we can see.
fleet-tests: fleet-image collection-link
	$(PY) -m pytest fleet/tests -q $(FLEET_PYTEST_ARGS)
