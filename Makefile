# usagenorm: every task has one entry point here. `make help` lists them.
SHELL := /bin/bash
# Every target installs into the project's own virtual environment, never the user's Python.
BASE_PYTHON ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The cargo target dir lives outside the clone so CI runs and later checkouts reuse the build.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/usagenorm/target
export CARGO_TERM_COLOR ?= never

.PHONY: help setup build demo test test-rust test-python lint bench bench-ci fuzz

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PYTHON):
	$(BASE_PYTHON) -m venv $(VENV)

setup: $(PYTHON) ## create .venv and install the Python tools and test dependencies into it
	$(PYTHON) -m pip install --quiet --disable-pip-version-check "maturin>=1.8,<2" "polars>=1.30" "pytest>=8" "hypothesis>=6.100" "pandas>=2" numpy

build: setup ## build the abi3 wheel (release) and install it into .venv
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .

demo: build ## normalize the bundled sample exports and print the result
	$(PYTHON) examples/demo.py examples/exports

test-rust: ## the core's tests, no Python needed
	cargo test --quiet

test-python: ## the Python test suite against the installed wheel
	$(PYTHON) -m pytest -q tests

bench-ci: ## a few-seconds run of the whole benchmark on tiny data, so it cannot rot
	$(PYTHON) bench/run.py --scale ci

test: build test-rust test-python bench-ci ## build, then run every test and the CI-sized benchmark

bench: build ## the full benchmark (about 2 GB of generated exports; several minutes), see BENCHMARKS.md
	$(PYTHON) bench/run.py --json bench/latest.json | tee bench/latest.md

FUZZ_SECONDS ?= 120
fuzz: ## run every cargo-fuzz target for FUZZ_SECONDS each (stable toolchain, no sanitizer)
	cargo install cargo-fuzz --locked --quiet
	cd fuzz && for t in detect gitpod suger exabits vmware consumption_log; do \
		cargo fuzz run -s none $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -max_len=65536 || exit 1; \
	done

lint: setup ## clippy, rustfmt, ruff
	$(PYTHON) -m pip install --quiet --disable-pip-version-check ruff
	cargo clippy --all-targets -- -D warnings
	cargo fmt --check
	$(PYTHON) -m ruff check python tests examples
