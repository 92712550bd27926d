# The two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: run test install install-test system-deps lint typecheck layers rules-check pytest soak bench clean image

run: install ## Start Homeostat with an embedded Temporal dev server and its Web UI
	$(BIN)/homeostat up

test: install-test system-deps lint typecheck layers rules-check pytest ## Lint, type-check and run every test

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); \
	  else echo "cannot create a virtualenv: install python3-venv (apt-get install python3-venv)"; exit 1; fi; }
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

system-deps: ## Prometheus, promtool and Alertmanager from Debian packages, when missing
	@bash scripts/system-deps.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

layers:
	$(BIN)/lint-imports

rules-check: ## The shipped rules and plans lint clean, and the rule tests pass
	$(BIN)/homeostat rules lint rules/ remediations/
	$(BIN)/homeostat rules test tests/rules/

pytest:
	$(BIN)/pytest

soak: install-test system-deps ## The long runs (tests marked soak); reports go to bench/results/, combined in SOAK.md
	$(BIN)/pytest -m soak; status=$$?; $(BIN)/python bench/soak_report.py; exit $$status

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(PIP) install -q -e '.[test,bench]'
	@touch $@

bench: install-test system-deps $(VENV)/.installed-bench ## Every benchmark under bench/, one report: bench/results/REPORT.md and REPORT.json
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .homeostat .mypy_cache .ruff_cache .pytest_cache .hypothesis

image: ## Build the container image (podman; BASE=... for another base image)
	podman build $(if $(BASE),--build-arg BASE=$(BASE)) -t homeostat:$$($(BIN)/homeostat version 2>/dev/null || echo dev) -f Containerfile .
