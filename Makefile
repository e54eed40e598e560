# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
# make bench LOAD_ARGS=--quick: 10 s load runs instead of 60 s
LOAD_ARGS ?=
# make bench BEFORE=/path/to/an/older/tree: the server, load and spill benchmarks also run the
# application on that tree's package (e.g. `git archive HEAD~5 | tar -x -C /tmp/old`),
# side by side with ratios
BEFORE ?=
BEFORE_ARGS := $(if $(BEFORE),--before $(BEFORE),)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test bench bench-server-full fuzz lint install clean

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
	@if [ -f benchmarks/bench_server.py ]; then echo; $(PYTHON) benchmarks/bench_server.py --quick $(BEFORE_ARGS); fi
	@echo; $(PYTHON) benchmarks/bench_runner.py
	@echo; $(PYTHON) benchmarks/bench_stats.py
	@echo; $(PYTHON) benchmarks/bench_ui.py
	@echo; $(PYTHON) benchmarks/bench_run_metadata.py
	@echo; $(PYTHON) benchmarks/bench_spill.py $(BEFORE_ARGS)
	@echo; $(PYTHON) benchmarks/bench_load.py $(LOAD_ARGS) $(BEFORE_ARGS)

# The server benchmark at full size (300k-span growth, summary at 100k and 1M spans): ~30 min.
bench-server-full: $(STAMP)
	$(PYTHON) benchmarks/bench_server.py --million

# The contract test with a larger budget: schemathesis, all checks, against a real server.
FUZZ_EXAMPLES ?= 25
fuzz: $(STAMP)
	OTEL_EXPERIMENTS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	OTEL_EXPERIMENTS_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(PYTHON) -m pytest -q -s --timeout 7200 \
		tests/server/test_contract.py -k schemathesis

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy --strict src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
