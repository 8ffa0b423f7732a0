# ServiceGate — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run env test lint bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Migrate, create the demo client (printed), and serve on http://127.0.0.1:8080
run: $(STAMP)
	SERVICEGATE_CONFIG=$${SERVICEGATE_CONFIG:-examples/servicegate.toml} $(BIN)/servicegate demo
	DEMO_CALLBACK_SECRET=$${DEMO_CALLBACK_SECRET:-demo-callback-secret} \
	SERVICEGATE_CONFIG=$${SERVICEGATE_CONFIG:-examples/servicegate.toml} exec $(BIN)/servicegate serve

## The demo client's credentials as shell variables: eval "$$(make -s env)"
env: $(STAMP)
	@SERVICEGATE_CONFIG=$${SERVICEGATE_CONFIG:-examples/servicegate.toml} $(BIN)/servicegate demo --env

## The whole test suite (SQLite and PostgreSQL)
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/ruff format --check src tests bench || true

## Benchmarks against baselines measured in the same run (see bench/RESULTS.md)
bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) var .pytest_cache
