# Two commands do all the set-up on a fresh machine:
#   make demo   runs Mercato's main job
#   make test   runs the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-pure test-compiled lint typecheck bench bench-engine bench-core bench-order-entry bench-ticks bench-fanout compile clean
# The hot modules, compiled by mypyc from the same .py source into build/mypyc
# (plain Python is the fallback; the engine tests run against both).
# Not yet: risk.py (tests/unit/engine/test_risk.py reads its source through __file__),
# paper.py (mypyc erases the element types of its msgspec state structs' list fields).
HOT := mercato/domain/orders.py mercato/engine/book.py mercato/engine/engine.py \
	mercato/engine/money.py mercato/engine/ledger.py mercato/engine/positions.py \
	mercato/engine/core.py mercato/engine/core_state.py mercato/marketdata/codec.py \
	mercato/marketdata/bars.py mercato/marketdata/book.py mercato/marketdata/market.py \
	mercato/services/marketdata.py
COMPILED := build/mypyc

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mercato demo --data-dir $${MERCATO_DEMO_DIR:-$$(mktemp -d)}

test: test-pure test-compiled

test-pure: $(STAMP)
	$(PY) -m pytest -q

# The tests of the compiled modules again, against the compiled build.
test-compiled: compile
	MERCATO_EXPECT_COMPILED=1 PYTHONPATH=$(COMPILED) $(PY) -m pytest -q -p no:cacheprovider \
		tests/unit/engine tests/property tests/unit/marketdata tests/unit/services/test_marketdata.py \
		tests/unit/api/test_md_stream.py

# The compiled tree is a full copy of the package: every make compile refreshes the plain
# modules; the mypyc build of the hot ones is redone only when they change.
compile: $(COMPILED)/.built
	$(PY) scripts/sync_tree.py src/mercato $(COMPILED)/mercato

$(COMPILED)/.built: $(STAMP) $(addprefix src/,$(HOT))
	rm -rf $(COMPILED) && mkdir -p $(COMPILED) && cp -r src/mercato $(COMPILED)/
	cd $(COMPILED) && $(CURDIR)/$(VENV)/bin/mypyc $(HOT) > mypyc.log 2>&1 || (cat mypyc.log; exit 1)
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
