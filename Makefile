# tinyjail: two commands on a fresh Debian 12 root machine:
#   make demo   - set up, trace the bundled workload, write its profile, run it under the profile, serve the dashboard
#   make test   - set up and run every test
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test demo lint bench clean-venv

setup:
	@bash tools/setup.sh

test: setup
	@$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	bash tools/typecheck.sh

demo: setup
	@bash tools/demo.sh

bench: setup
	$(PY) tools/bench_enforce.py
	$(PY) tools/bench_trace.py
	$(PY) tools/bench_dashboard.py

clean-venv:
	rm -rf $(VENV)
