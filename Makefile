# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -name '*.sql' -o -name '*.yml' -o -name '*.csv' | grep -v target/)

# The venv's tools (dbt, dagster) come first: `dagster dev` re-parses the dbt project with `dbt`.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DAGSTER_HOME := $(CURDIR)/dagster_home
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: run test test-fast lint dev serve dbt-spark docs backup restore reproduce monitor-ui sandbox install manifest bench bench-scale promote rollback repair-audit clean

run: install manifest  ## install, then materialize every asset and partition
	@start=$$(date +%s); $(PY) -m assets.bootstrap; rc=$$?; \
	  echo "[make run] build wall time: $$(( $$(date +%s) - start ))s"; exit $$rc

test: install manifest lint  ## the full suite: real runs in temporary lakehouses (installs chromium, postgresql, a JRE if missing)
	@bash deploy/system-packages.sh
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: install manifest lint  ## lint, then unit tests and dbt unit tests only (no Dagster run, no dbt build)
	$(PY) -m pytest -m fast -n auto

lint: install  ## ruff (lint, format) and sqlfluff for the dbt models; `ruff format .` and `sqlfluff fix` fix
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint models snapshots

dev: install manifest  ## Dagster UI on http://127.0.0.1:3000
	$(PY) -m resources.core.dev_server -h 127.0.0.1 -p 3000 -w workspace.yaml

# PORT reaches Python through the environment (taken with $(value ...)), never through shell code.
serve: export SERVE_PORT := $(value PORT)
serve: install  ## [PORT=8080]: the scoring service on http://127.0.0.1:PORT (POST /v1/score, GET /v1/model)
	$(PY) -m resources.serving.app

# ARGS reaches Python through the environment (taken with $(value ...)) and is split there with
# shlex, never by the shell: quotes, $(...) and backticks stay inside dbt's arguments.
dbt-spark: export LAKEHOUSE_DBT_ARGS := $(value ARGS)
dbt-spark: install  ## [ARGS="build --select ..."]: the dbt project on Spark (default: everything Spark can build)
	$(PY) -m resources.warehouse.spark_engine

docs: install manifest  ## dbt's documentation site, offline, in reports/dbt-docs/index.html
	$(PY) -m resources.warehouse.docs

monitor-ui: install  ## Evidently UI over the monitoring workspace on http://127.0.0.1:8000
	$(VENV)/bin/evidently ui --workspace $${LAKEHOUSE_ROOT:-lakehouse}/monitoring/evidently --host 127.0.0.1 --port 8000

sandbox: install  ## a Python prompt with your own DuckDB and the catalog attached read-only
	$(PY) -i -m resources.catalog.sandbox

# APPROVER, REASON and VERSION reach Python through the environment, taken with $(value ...) so
# neither make nor the shell interprets them: quotes, $(...) and backticks are stored verbatim.
repair-audit: export REPAIR_APPROVER := $(value APPROVER)
repair-audit: export REPAIR_REASON := $(value REASON)
repair-audit: install  ## APPROVER=... REASON=...: remove a torn last line of the model audit trail (audited)
	$(PY) -m resources.ml.registry.storage

promote rollback: export PROMOTE_APPROVER := $(value APPROVER)
promote rollback: export PROMOTE_REASON := $(value REASON)
promote rollback: export PROMOTE_VERSION := $(value VERSION)
promote rollback: export PROMOTE_HORIZON := $(value HORIZON)

promote: install manifest  ## APPROVER=... REASON=... [VERSION=...] [HORIZON=nowcast_2h]: promote the newest pre-production model
	$(PY) -m assets.ml.promote

rollback: install manifest  ## APPROVER=... REASON=... [HORIZON=nowcast_2h]: return to the previous production model
	$(PY) -m assets.ml.promote --rollback

# DEST/SRC reach Python through the environment (taken with $(value ...)), never through shell code.
backup: export BACKUP_PATH := $(value DEST)
restore: export BACKUP_PATH := $(value SRC)

backup: install  ## DEST=...: copy what cannot be rebuilt (deliveries, registry, monitoring history) with a manifest
	$(PY) -m resources.core.backup backup

restore: install  ## SRC=...: into an empty lakehouse root, every file checked first; then `make run`
	$(PY) -m resources.core.backup restore

reproduce: export REPRODUCE_VERSION := $(value VERSION)
reproduce: install  ## [VERSION=...]: retrain a registered model from its record, compare predictions
	$(PY) -c 'import os, sys; from resources.ml.model.reproduce import main; sys.exit(main([os.environ["REPRODUCE_VERSION"]]))'

bench: install manifest  ## timing goals (benchmarks/), never run by `make test`; scoring needs `make run` first
	$(PY) benchmarks/backfill_year.py
	$(PY) benchmarks/scoring_year.py
	$(PY) benchmarks/daily_increment.py
	$(PY) benchmarks/serving_load.py
	$(PY) benchmarks/engines.py
	$(PY) benchmarks/object_store.py
	$(PY) benchmarks/publish.py

# SF reaches the script through the environment (a command-line variable is exported to recipes),
# never spliced into shell code; benchmarks/scale.py refuses anything but a whole number.
bench-scale: install manifest  ## SF=N: the whole chain on N copies of each day's flights, time and peak memory per step
	$(PY) benchmarks/scale.py

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@start=$$(date +%s); \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip && \
	  $(PY) -m pip install -q -r requirements.lock && \
	  $(PY) -m pip install -q --no-deps -e . && \
	  rm -f $(VENV)/.installed-* && touch $@ && \
	  echo "[make] install wall time: $$(( $$(date +%s) - start ))s"

manifest: $(MANIFEST)

# dagster-dbt reads the manifest when definitions load; only `dagster dev` would parse for us.
$(MANIFEST): $(DBT_SOURCES) $(STAMP)
	cd dbt_project && ../$(VENV)/bin/dbt parse --profiles-dir . --quiet

clean:
	rm -rf lakehouse/* dbt_project/target reports/drift reports/quality reports/index.html
