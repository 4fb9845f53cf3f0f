# ironbridge — the two commands a user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
UV_VERSION := 0.9.9
UV := $(VENV)/bin/uv

.PHONY: demo test lint typecheck contracts unit bench browser clean help

help:
	@echo "make demo   - create .venv, install, start the platform with simulated fleets (console on http://127.0.0.1:8080)"
	@echo "make test   - create .venv, install, run lint, type-check, import contracts and all tests"
	@echo "make bench  - run the core benchmarks (BENCHES='ingest query', BENCH_ARGS=--quick for a short run)"

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# uv installs the pinned lock in seconds where pip takes minutes (same wheels, PyPI).
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) -r requirements.lock
	# Test-only Sparkplug B peer: its metadata still asks for paho-mqtt<2, which it does
	# not need for the payload classes the interop test uses, so no dependency resolution.
	$(UV) pip install --quiet --python $(PY) --no-deps pysparkplug==0.6.1
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ironbridge demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

# Headless Chromium for the console's end-to-end tests (Debian package, never a download
# of Playwright's own browser). Installed when missing and we may use apt (root).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium; browser tests will skip (or fail under CI=true)"; \
	  else echo "chromium missing: install it with 'apt-get install chromium' to run browser tests"; fi; \
	fi

test: $(STAMP) browser lint typecheck contracts
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=15

# The core benchmarks (issue-specific ones: bench/<name>.py, each with --quick).
BENCHES ?= ingest query
bench: $(STAMP)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py $(BENCH_ARGS) || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
