# The two commands of the README: `make demo` and `make test`. Everything else is what they need, but for
# `make test-fast` (the unit tests alone, for a quick check while working).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
BUF    := .tools/node_modules/.bin/buf
PROTOS := $(wildcard protos/civic/listening/v1/*.proto)

.PHONY: demo test test-fast install tools-present chromium proto lint up down clean

demo: install
	CIVIC_RULES_FILE=$(CURDIR)/examples/rules.yaml \
	  CIVIC_GATEWAY_TENANTS=city-transit,passport-office,emergency-mgmt $(BIN)/civic up
	$(BIN)/civic demo --file examples/posts.jsonl

test: lint
	$(BIN)/pytest

# Deselects `slow`: no Elasticsearch, Ray, browser or service processes (tests/conftest.py marks every test
# that needs one), no model export, no `civic` subprocesses. About two minutes; CI runs `make test`.
test-fast: install
	$(BIN)/pytest -m "not slow"

install: tools-present chromium $(VENV)/.installed

# What the machine must have: the rest is installed by the targets below.
tools-present:
	@for tool in $(PYTHON) javac mvn npm; do \
	  command -v $$tool >/dev/null || { echo "make: $$tool is required (see README, Set up)"; exit 1; }; \
	done

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it never downloads a
# browser of its own). Installed with apt only when missing; without root or sudo the demo still
# runs and only the browser tests fail, saying what to install.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "make: installing chromium (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; } || \
	  echo "make: could not install chromium; the dashboard's browser tests need it (apt-get install chromium)"; }

# torch first and pinned, so that nothing resolves a second build of it.
$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH)
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml $(PROTOS) protos/generate.py
	$(BIN)/pip install grpcio-tools==1.85.1
	$(BIN)/python protos/generate.py
	$(BIN)/pip install -e '.[dev]'
	touch $@

proto: $(VENV)/.torch
	$(BIN)/python protos/generate.py

$(BUF):
	npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@1.75.0

lint: install $(BUF)
	$(BIN)/ruff check .
	$(BIN)/mypy services inference bench examples tests
	$(BIN)/lint-imports
	cd protos && ../$(BUF) lint

up: install
	$(BIN)/civic up

down:
	$(BIN)/civic down

clean:
	rm -rf $(VENV) .tools services/gen
