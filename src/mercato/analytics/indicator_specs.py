"""Indicator specs as the API and the CLI take them: ``"sma:20"``, ``"ema:12"``, ``"rsi:14"``,
``"macd:12,26,9"``, ``"bbands:20,2"``, ``"atr:14"``, ``"vwap"``, ``"rv:20,365"``,
``"regime:50,200"``, ``"breakout:20"``, ... A spec is a name, then optionally ``:`` and
comma-separated numbers; omitted trailing numbers take their defaults. Unknown names, bad
numbers and too many numbers are a ``SpecError`` (a ValueError) saying which and why.
``compute`` evaluates specs over a bar frame in one ``select``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from mercato.analytics import indicators as ind

# what an output's values are: a price-like float in the input's integer units
# (``ind.render`` gives the instrument's decimals), 0..100, a fraction, or -1 / 0 / +1
UNITS = ("price", "percent", "fraction", "signal")


class SpecError(ValueError):
    """An indicator spec that cannot be parsed or names nothing known."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: float
    kind: type  # int or float
    least: float  # the smallest value allowed


@dataclass(frozen=True, slots=True)
class Output:
    name: str  # the column's name (the spec's name and numbers joined by "_")
    unit: str
    expr: pl.Expr


_C, _H, _L, _V, _S = (pl.col(n) for n in ("close", "high", "low", "volume", "start"))

Build = Callable[[tuple[float, ...]], list[tuple[str, str, pl.Expr]]]


def _i(x: float) -> int:
    return int(x)


def _macd(p: tuple[float, ...]) -> list[tuple[str, str, pl.Expr]]:
    ind.macd(_C, _i(p[0]), _i(p[1]), _i(p[2]))  # its checks
    hidden = pl.col(_macd_line_name(p))
    line, signal, hist = ind.macd_from_line(hidden, _i(p[1]), _i(p[2]))
    return [("macd", "price", line), ("macd_signal", "price", signal), ("macd_hist", "price", hist)]


def _macd_line_name(p: tuple[float, ...]) -> str:
    return f"__macd_line_{_i(p[0])}_{_i(p[1])}"


def _macd_stage(p: tuple[float, ...]) -> list[pl.Expr]:
    return [ind.macd_line(_C, _i(p[0]), _i(p[1])).alias(_macd_line_name(p))]


def _bb_names(p: tuple[float, ...]) -> tuple[str, str]:
    return f"__bb_mean_{_i(p[0])}", f"__bb_std_{_i(p[0])}"


def _bbands_stage(p: tuple[float, ...]) -> list[pl.Expr]:
    mean, std = ind.rolling_mean_std(_C, _i(p[0]))
    a, b = _bb_names(p)
    return [mean.alias(a), std.alias(b)]


def _bbands(p: tuple[float, ...]) -> list[tuple[str, str, pl.Expr]]:
    ind.bbands(_C, _i(p[0]), p[1])  # its checks
    a, b = _bb_names(p)
    upper, middle, lower = ind.bands(pl.col(a), pl.col(b), p[1])
    return [
        ("bbands_upper", "price", upper),
        ("bbands_middle", "price", middle),
        ("bbands_lower", "price", lower),
    ]


def _vwap(p: tuple[float, ...]) -> list[tuple[str, str, pl.Expr]]:
    period = _i(p[0]) or None  # 0: cumulative from the first bar
    return [("vwap", "price", ind.vwap(_H, _L, _C, _V, period))]


def _regime(p: tuple[float, ...]) -> list[tuple[str, str, pl.Expr]]:
    regime, cross = ind.ma_regime(_C, _i(p[0]), _i(p[1]))
    return [("regime", "signal", regime), ("regime_cross", "signal", cross)]


@dataclass(frozen=True, slots=True)
class Kind:
    params: tuple[Param, ...]
    build: Build
    positive_close: bool = False  # divides by closes: refuse a close <= 0
    # columns computed first, once, that ``build``'s expressions read (hidden: "__...")
    stage: Callable[[tuple[float, ...]], list[pl.Expr]] | None = None


def _one(name: str, unit: str, f: Callable[[tuple[float, ...]], pl.Expr]) -> Build:
    return lambda p: [(name, unit, f(p))]


_N14 = (Param("period", 14, int, 1),)
_N20 = (Param("period", 20, int, 1),)

REGISTRY: dict[str, Kind] = {
    "sma": Kind(_N20, _one("sma", "price", lambda p: ind.sma(_C, _i(p[0])))),
    "ema": Kind(_N20, _one("ema", "price", lambda p: ind.ema(_C, _i(p[0])))),
    "rsi": Kind(_N14, _one("rsi", "percent", lambda p: ind.rsi(_C, _i(p[0])))),
    "macd": Kind(
        (Param("fast", 12, int, 1), Param("slow", 26, int, 2), Param("signal", 9, int, 1)),
        _macd,
        stage=_macd_stage,
    ),
    "bbands": Kind(
        (Param("period", 20, int, 1), Param("k", 2.0, float, 0)), _bbands, stage=_bbands_stage
    ),
    "atr": Kind(_N14, _one("atr", "price", lambda p: ind.atr(_H, _L, _C, _i(p[0])))),
    "vwap": Kind((Param("period", 0, int, 0),), _vwap),
    "rv": Kind(
        (Param("window", 20, int, 2), Param("bars_per_year", 365, float, 0)),
        _one("rv", "fraction", lambda p: ind.realized_volatility(_C, _i(p[0]), p[1])),
        positive_close=True,
    ),
    "returns": Kind((), _one("returns", "fraction", lambda p: ind.simple_returns(_C)), True),
    "logreturns": Kind((), _one("logreturns", "fraction", lambda p: ind.log_returns(_C)), True),
    "drawdown": Kind((), _one("drawdown", "fraction", lambda p: ind.drawdown(_C)), True),
    "regime": Kind((Param("fast", 50, int, 1), Param("slow", 200, int, 2)), _regime),
    "breakout": Kind(
        _N20, _one("breakout", "signal", lambda p: ind.breakout(_H, _L, _C, _i(p[0])))
    ),
}

_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def _number_text(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    name: str
    params: tuple[float, ...]  # every parameter, the defaults filled in

    @property
    def text(self) -> str:
        """The canonical spec: ``sma:20``, ``bbands:20,2.5``, ``returns``."""
        if not self.params:
            return self.name
        return f"{self.name}:{','.join(_number_text(p) for p in self.params)}"

    def outputs(self) -> list[Output]:
        """The columns this spec computes; each named ``<output>_<numbers>``."""
        suffix = "".join(f"_{_number_text(p)}" for p in self.params)
        return [
            Output(f"{n}{suffix}", unit, e.alias(f"{n}{suffix}"))
            for n, unit, e in REGISTRY[self.name].build(self.params)
        ]


def parse_spec(text: str) -> IndicatorSpec:
    """``"macd:12,26,9"`` → IndicatorSpec("macd", (12, 26, 9)); SpecError when bad."""
    if not isinstance(text, str):
        raise SpecError(f"an indicator spec is a string, not {type(text).__name__}")
    name, colon, rest = text.strip().partition(":")
    name = name.strip().lower()
    kind = REGISTRY.get(name)
    if kind is None:
        known = ", ".join(sorted(REGISTRY))
        raise SpecError(f"unknown indicator {name!r} in {text!r} (known: {known})")
    parts = [p.strip() for p in rest.split(",")] if colon else []
    if len(parts) > len(kind.params):
        raise SpecError(
            f"{name} takes at most {len(kind.params)} number(s)"
            f" ({', '.join(p.name for p in kind.params) or 'none'}), got {len(parts)} in {text!r}"
        )
    values: list[float] = []
    for i, param in enumerate(kind.params):
        if i >= len(parts):
            values.append(param.default)
            continue
        part = parts[i]
        if not _NUMBER.fullmatch(part) or (param.kind is int and "." in part):
            what = "a whole number" if param.kind is int else "a number"
            raise SpecError(f"{name}: {param.name} must be {what}, not {part!r} in {text!r}")
        value = int(part) if param.kind is int else float(part)
        if value < param.least or (param.kind is float and not math.isfinite(value)):
            raise SpecError(
                f"{name}: {param.name} must be at least {_number_text(param.least)},"
                f" not {part} in {text!r}"
            )
        values.append(value)
    spec = IndicatorSpec(name, tuple(values))
    try:
        spec.outputs()  # the builders' own checks (e.g. macd's fast < slow)
    except ValueError as e:
        raise SpecError(f"{e} in {text!r}") from None
    return spec


def compute(bars: pl.DataFrame, specs: Sequence[str | IndicatorSpec]) -> pl.DataFrame:
    """``start`` and every output of ``specs`` over ``bars`` (checked by ``ind.check_bars``);
    a spec given twice is computed once."""
    parsed = [s if isinstance(s, IndicatorSpec) else parse_spec(s) for s in specs]
    unique = list(dict.fromkeys(parsed))
    positive = ("close",) if any(REGISTRY[s.name].positive_close for s in unique) else ()
    ind.check_bars(bars, positive=positive)
    staged = {
        e.meta.output_name(): e
        for s in unique
        if (st := REGISTRY[s.name].stage)
        for e in st(s.params)
    }  # by name: bbands:20,2 and bbands:20,3 share theirs
    exprs = [o.expr for s in unique for o in s.outputs()]
    lf = bars.lazy()
    if staged:
        lf = lf.with_columns(staged.values())
    return lf.select(pl.col("start"), *exprs).collect()
