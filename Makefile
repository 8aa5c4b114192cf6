# The two commands: `make demo` and `make test`. Both set up .venv from nothing when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: venv test test-unit lint typecheck pytest docs bench-smoke demo policy-check bench up down clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml examples/credit/pyproject.toml examples/diabetes/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the example team project the demo and the tests govern (its own package, only the public contract)
	$(BIN)/python -m pip install --quiet --no-deps -e examples/credit -e examples/diabetes
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src flows deployments blocks tests bench examples
	$(BIN)/ruff format --check --quiet src flows deployments blocks tests bench examples
	$(BIN)/lint-imports --no-cache  # the layer contracts in .importlinter

# mypy with the configuration in pyproject.toml ([tool.mypy]: src/releasegate and flows, strict for the
# pure policy modules and the stores).
typecheck: $(STAMP)
	$(BIN)/mypy

policy-check: $(STAMP)
	$(BIN)/releasegate policy check prefect.yaml

pytest: $(STAMP)
	$(BIN)/pytest -q

# The pure rules and stores only (no Prefect harness): seconds.
test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# The docs site (docs/, mkdocs.yml): a broken link or a page missing from the nav fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# Every bench/*_bench.py with --smoke (tiny sizes, offline; one line each), so a bench that breaks, or
# a new one without a smoke mode, fails the tests.
bench-smoke: $(STAMP)
	$(BIN)/python bench/run_all.py --smoke

test: lint typecheck policy-check docs bench-smoke pytest

# The smallest real end-to-end thing, on embedded defaults (SQLite decision log, ephemeral Prefect).
DEMO_HOME ?= .releasegate/demo
demo: $(STAMP)
	@rm -rf $(DEMO_HOME)
	RELEASEGATE_HOME=$(DEMO_HOME) $(BIN)/releasegate demo

# The local server stack on loopback (Prefect server, MLflow server + webhook receiver, deployments,
# a worker); state and logs under ~/.releasegate/stack. PREFECT_DB=postgresql+asyncpg://... for PostgreSQL.
up: $(STAMP)
	$(BIN)/releasegate up $(if $(PREFECT_DB),--database-url $(PREFECT_DB)) $(UP_ARGS)

down: $(STAMP)
	$(BIN)/releasegate down

# Benchmarks (run by hand, not by CI): every bench/*_bench.py plus `releasegate simulate`, one table.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .releasegate .pytest_cache .ruff_cache
