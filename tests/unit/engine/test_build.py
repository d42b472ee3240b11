"""Which build of the hot modules the tests run against.

`make test` runs the tests of the compiled modules (the engine's, the market data's) twice:
on the plain Python source, and with MERCATO_EXPECT_COMPILED=1 on the mypyc build. This
test makes sure the second run really exercises compiled code, and the first really
exercises the source.
"""

import os

import mercato.domain.orders
import mercato.engine.book
import mercato.engine.engine
import mercato.marketdata.codec
import mercato.services.marketdata

HOT = (
    mercato.domain.orders,
    mercato.engine.book,
    mercato.engine.engine,
    mercato.marketdata.codec,
    mercato.services.marketdata,
)


def test_hot_modules_are_the_expected_build() -> None:
    compiled = [not (m.__file__ or "").endswith(".py") for m in HOT]
    if os.environ.get("MERCATO_EXPECT_COMPILED") == "1":
        assert all(compiled), [m.__file__ for m in HOT]
    else:
        assert not any(compiled), [m.__file__ for m in HOT]


def test_engine_state_hash_method_matches_the_function() -> None:
    from mercato.domain import AddInstrument
    from mercato.engine import Engine, state_hash

    e = Engine()
    e.process(AddInstrument(symbol="X"))
    assert e.state_hash() == state_hash(e) and len(e.state_hash()) == 64
