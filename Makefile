# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/otel-experiments demo

test: $(STAMP)
	$(PYTHON) -m pytest -q

bench: $(STAMP)
	$(PYTHON) benchmarks/bench_processor.py
	@if [ -f benchmarks/bench_exporter.py ]; then echo; $(PYTHON) benchmarks/bench_exporter.py; fi
	@if [ -f benchmarks/bench_server.py ]; then echo; $(PYTHON) benchmarks/bench_server.py --quick; fi
	@echo; $(PYTHON) benchmarks/bench_runner.py
	@echo; $(PYTHON) benchmarks/bench_ui.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy --strict src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
