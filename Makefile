# Two commands for a new user: `make demo` and `make test`. Both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
SCALE  ?= 0.05

.PHONY: install demo test lint browser bench-extract bench-incremental bench-hourly bench-funnel bench-parts clean lock

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## The whole pipeline on the embedded default (SQLite -> local folder -> DuckDB)
demo: install
	$(BIN)/dwh demo --scale $(SCALE)

## Every test: unit, SQLite/DuckDB, MariaDB, S3 (moto server), dbt end to end, Chromium
test: install browser
	$(BIN)/python -m pytest

## Debian's Chromium for the browser tests (tests/test_dashboard.py); Playwright never downloads one
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "no chromium: sudo apt-get install chromium (the browser tests skip without it, and fail with CI=true)"; \
	  fi; }

bench-extract: install
	$(BIN)/python bench/extract.py --scales 1 10

bench-incremental: install
	$(BIN)/python bench/incremental.py --scale 10

## One hourly run (extract, load, build) at scale 1 and 10, MariaDB -> DuckDB and PostgreSQL
bench-hourly: install
	$(BIN)/python bench/hourly.py --scales 1 10 --runs 5

## COPY parts of a historical order_items batch for 2, 4 and 16 Redshift slices
bench-parts: install
	$(BIN)/python bench/parts.py --scales 1 10 --slices 2 4 16

## Funnel CSV -> Parquet: ours vs PySpark local[2] vs DuckDB (PySpark and Java 17 only for this)
bench-funnel: install
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/funnel.py --sizes 1 5

## SQL (SQLFluff, redshift dialect) and Python (ruff lint and format, mypy); the tests run them too
lint: install
	$(BIN)/sqlfluff lint models tests/dbt analyses
	$(BIN)/ruff check loaders olist_demo tests bench
	$(BIN)/ruff format --check loaders olist_demo tests bench
	$(BIN)/mypy

## The AWS artifacts infra/template.yaml deploys (docs/deploy.md)
.PHONY: package
package: install
	$(BIN)/dwh package --out dist/aws

clean:
	rm -rf data target logs dbt_packages .pytest_cache

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	.lock-venv/bin/pip freeze --exclude-editable > requirements.lock.new
	rm -rf .lock-venv && echo "review requirements.lock.new, then move it over requirements.lock"
