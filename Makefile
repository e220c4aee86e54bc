# torchonnx developer commands. Every target creates the virtual environment when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= auto

INSTALL_VENV ?= .venv-install

.PHONY: install codegen check-generated check-install test test-ops demo bench format lint docs clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

codegen: $(STAMP)
	$(PY) -m torchonnx.codegen

check-generated: $(STAMP)
	$(PY) -m torchonnx.codegen --check

# What a user gets: a clean venv, the package installed (not editable) without extras, then an
# export there: ruamel.yaml, black and ruff must be absent, and jinja2 (which torch requires)
# unused by the export.
check-install:
	rm -rf $(INSTALL_VENV)
	$(PYTHON) -m venv $(INSTALL_VENV) || python3 -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INSTALL_VENV)/bin/python -m pip install --quiet -c constraints.txt .
	cd $(INSTALL_VENV) && bin/python ../tools/check_install.py

# The op tests at the first opset of each lowering and the newest (tests/test_ops.py).
test: $(STAMP)
	TORCHONNX_OP_MATRIX=quick $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

# The op tests at every bound of every lowering, dtype-plan segment and gap.
test-ops: $(STAMP)
	TORCHONNX_OP_MATRIX=full $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q tests/test_ops.py

demo: $(STAMP)
	$(PY) examples/demo.py

bench: $(STAMP)
	$(PY) benchmarks/export_time.py

format: $(STAMP)
	$(PY) -m ruff check --fix --quiet runtime codegen tests examples benchmarks tools
	$(PY) -m black --quiet runtime codegen tests examples benchmarks tools

# Generated code is formatted by codegen with `ruff format` (black's style); the rest by black.
lint: $(STAMP)
	$(PY) -m ruff check runtime codegen generated tests examples benchmarks tools
	$(PY) -m ruff format --check --quiet generated
	$(PY) -m black --check --quiet runtime codegen tests examples benchmarks tools

docs: codegen
	@echo "Operator tables: generated/docs/operators.md and generated/docs/opset<N>.md"

clean:
	rm -rf $(VENV) $(INSTALL_VENV) .pytest_cache .ruff_cache *.egg-info build
