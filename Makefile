# Two entry points (see README): `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean native pure

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# The request path compiled with mypyc (native/build.py); rebuilt when a listed source changes.
NATIVE_SOURCES := $(addprefix src/,$(shell grep -v '^\#' native/modules.txt))
src/stellwerk/native.json: $(BIN)/.installed native/build.py native/modules.txt $(NATIVE_SOURCES)
	$(BIN)/python native/build.py

native: src/stellwerk/native.json

pure:
	find src -name '*.so' -delete
	rm -f src/stellwerk/native.json

demo: $(BIN)/.installed
	$(BIN)/stellwerk demo

test: $(BIN)/.installed src/stellwerk/native.json
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

clean: pure
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
