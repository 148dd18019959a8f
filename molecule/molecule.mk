# Molecule: one scenario per host-level role, on real drill hosts (podman + systemd) against one
# exchange double. Included by the top-level Makefile (ROOT, VENV, PY, BUILD, SUDO, FLEET_IMAGE).
#
#   make molecule                                  every scenario, with a timing summary
#   make molecule MOLECULE_SCENARIOS="egress_block api_keys"
#   make molecule MOLECULE_COMMAND=converge        keep the hosts (then: MOLECULE_COMMAND=destroy)
#
# molecule/run_scenarios.py starts one double on 0.0.0.0 for all scenarios and hands it to them
# in TRADEOPS_DOUBLE_URL / TRADEOPS_DOUBLE_PORT / TRADEOPS_DOUBLE_CA, the image in
# TRADEOPS_FLEET_IMAGE; timings land in build/molecule/timings.txt.
MOLECULE_SCENARIOS ?= egress_block bot_services trading_mode api_keys
MOLECULE_COMMAND ?= test

.PHONY: molecule
molecule: fleet-image collection-link
	$(SUDO) env PATH="$(PATH)" ANSIBLE_CONFIG=$(ANSIBLE_CONFIG) TRADEOPS_FLEET_IMAGE=$(FLEET_IMAGE) \
	  $(PY) molecule/run_scenarios.py --command $(MOLECULE_COMMAND) --work-dir $(BUILD)/molecule $(MOLECULE_SCENARIOS)
