# Two commands do all the set-up on a fresh machine:
#   make demo   runs Mercato's main job
#   make test   runs the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-pure test-compiled lint typecheck bench bench-engine bench-core bench-order-entry bench-ticks bench-fanout compile clean
# The hot modules (src/mercato/compiled.txt), compiled by mypyc from the same .py source
# when the package is built (setup.py: `pip install .` gives the compiled build, plain
# Python where compiling fails). The editable install in .venv is plain
# (MERCATO_NO_COMPILE=1), so that the tests of the source run on the source.
HOT := $(shell grep -v '^[#]' src/mercato/compiled.txt)
COMPILED := build/mypyc
DEMO_DIR := $(or $(MERCATO_DEMO_DIR),.demo)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	MERCATO_NO_COMPILE=1 $(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The compiled build that `make demo` runs (DEMO_ARGS: more flags, e.g. --port 8001).
demo: compile
	PYTHONPATH=$(COMPILED) $(PY) -m mercato demo --data-dir $(DEMO_DIR) $(DEMO_ARGS)

test: test-pure test-compiled

test-pure: $(STAMP)
	$(PY) -m pytest -q

# The tests of the compiled modules again, against the compiled build.
test-compiled: compile
	MERCATO_EXPECT_COMPILED=1 PYTHONPATH=$(COMPILED) $(PY) -m pytest -q -p no:cacheprovider \
		tests/unit/engine tests/property tests/unit/marketdata tests/unit/services/test_marketdata.py \
		tests/unit/api/test_md_stream.py tests/unit/cli/test_version.py

# The compiled tree is the package as `pip install .` builds it (setup.py, mypyc), into
# build/mypyc; every make compile then refreshes its plain modules from src, and the
# build itself is redone only when a hot module (or the build) changes.
compile: $(COMPILED)/.built
	$(PY) scripts/sync_tree.py src/mercato $(COMPILED)/mercato

$(COMPILED)/.built: $(STAMP) setup.py pyproject.toml src/mercato/compiled.txt $(addprefix src/,$(HOT))
	rm -rf $(COMPILED) && mkdir -p build
	@echo "building mercato with its hot modules compiled by mypyc into $(COMPILED) (minutes, the first time)"
	$(PY) -m pip install --no-deps --target $(COMPILED) . > build/mypyc.log 2>&1 || (cat build/mypyc.log; exit 1)
	@grep -h "WARNING: mercato" build/mypyc.log || true
	touch $@

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

bench-engine: compile
	PYTHONPATH=$(COMPILED) $(PY) benchmarks/engine.py

# The risk core (risk + settlement) against matching alone, same commands, same process.
bench-core: compile
	PYTHONPATH=$(COMPILED) $(PY) benchmarks/core.py

# Order round trip over a real server (its own process): WebSocket and REST, open loop.
bench-order-entry: compile
	PYTHONPATH=$(COMPILED) $(PY) benchmarks/order_entry.py --journal

# Small ticks: bytes per trade of the binary market-data encoding on the Binance recording.
bench-ticks: $(STAMP)
	$(PY) benchmarks/ticks.py

# Market-data fan-out: 1,000 and 10,000 WebSocket subscribers, JSON and binary (its own processes).
bench-fanout: compile
	PYTHONPATH=$(COMPILED) $(PY) benchmarks/fanout.py

bench: bench-engine bench-core bench-order-entry bench-ticks bench-fanout

clean:
	rm -rf $(VENV) build src/*.egg-info
