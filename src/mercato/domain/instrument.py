"""Instruments and the conversion between decimal strings and scaled integers."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from mercato.domain.types import TradingStatus

_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")  # ASCII digits only
_SYMBOL = re.compile(r"[A-Za-z0-9_\-/:]{1,32}")
_POWERS = tuple(10**i for i in range(19))
_MAX_DIGITS = 4000  # below int()'s string-conversion limit, which raises a bare ValueError

MAX_SCALE: Final = 9
"""The most decimals an instrument's price or quantity may have when added through the
API (the core itself accepts up to 18)."""
MAX_CALENDAR: Final = 64
"""The longest trading-calendar spec an instrument may carry (``AddInstrument.calendar``)."""
MAX_UNITS: Final = 10**15 - 1
"""The largest magnitude, in scaled units, of a price, quantity or amount a request may
carry: far inside what the journal can encode (2^63), exact as a JSON number (2^53), and
its products with another such value stay exact Python ints."""
MAX_BALANCE: Final = 10**18
"""The largest cash balance or position a deposit may bring an account to (2^63 is about
9.2 * 10^18: the journal's limit)."""


class DecimalError(ValueError):
    """A decimal string that cannot be represented exactly at the wanted scale."""


def parse_decimal(text: str, scale: int, most: int | None = None) -> int:
    """Parse ``text`` (e.g. ``"101.25"``) into an integer scaled by ``10**scale``.

    Exact: more decimal places than ``scale`` are accepted only when they are zeros;
    exponents, ``nan`` and ``inf`` are refused; so is a magnitude beyond ``most`` units
    (the API passes ``MAX_UNITS``).
    """
    if scale < 0:
        raise ValueError(f"scale must not be negative: {scale}")
    m = _DECIMAL.fullmatch(text.strip())
    if m is None or not (m.group(2) or m.group(3)):
        raise DecimalError(f"not a decimal number: {text!r}")
    sign, whole, frac = m.group(1), m.group(2) or "0", m.group(3) or ""
    if len(whole) + scale > _MAX_DIGITS:
        raise DecimalError(f"{text!r} has too many digits")
    if len(frac) > scale:
        if frac[scale:].strip("0"):
            raise DecimalError(f"{text!r} has more than {scale} decimal places")
        frac = frac[:scale]
    value = int(whole + frac.ljust(scale, "0"))  # the digits of whole and fraction, exactly
    if most is not None and value > most:
        largest = format_decimal(most, scale) if scale <= 18 else str(most)
        raise DecimalError(f"{text.strip()[:40]!r} is too large: at most {largest}")
    return -value if sign == "-" else value


def format_decimal(value: int, scale: int, places: int | None = None) -> str:
    """Format a scaled integer as a decimal string with ``places`` decimals (default: scale)."""
    if places is None or places == scale:  # the common case, on every price in every answer
        if scale <= 0:
            if scale < 0:
                raise ValueError("scale and places must not be negative")
            return str(value)
        whole, frac = divmod(abs(value), _POWERS[scale] if scale < 19 else 10**scale)
        return f"{'-' if value < 0 else ''}{whole}.{frac:0{scale}d}"
    if scale < 0 or places < 0:
        raise ValueError("scale and places must not be negative")
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    digits = str(frac).rjust(scale, "0") if scale else ""
    if places < scale:
        if digits[places:].strip("0"):
            raise DecimalError(f"{value} at scale {scale} does not fit {places} places")
        digits = digits[:places]
    else:
        digits = digits.ljust(places, "0")
    return f"{sign}{whole}.{digits}" if places else f"{sign}{whole}"


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A tradable instrument.

    ``price_scale``/``qty_scale`` are the number of decimals of the integer units;
    ``tick_size``/``lot_size`` are in those units (tick 1 at price scale 2 = 0.01).
    """

    symbol: str
    tick_size: int = 1
    lot_size: int = 1
    price_scale: int = 2
    qty_scale: int = 0
    status: TradingStatus = TradingStatus.OPEN

    def validate(self) -> str | None:
        """Return why this instrument is malformed, or None."""
        if not _SYMBOL.fullmatch(self.symbol):
            # no dots or spaces: symbols become tokens of bus subjects (md.trades.<symbol>)
            return "symbol must be 1-32 characters of A-Z a-z 0-9 _ - / :"
        if self.tick_size <= 0 or self.lot_size <= 0:
            return "tick and lot size must be positive"
        if not (0 <= self.price_scale <= 18 and 0 <= self.qty_scale <= 18):
            return "scales must be between 0 and 18"
        return None

    def price(self, text: str) -> int:
        """Decimal string -> scaled price, checked against the tick size."""
        value = parse_decimal(text, self.price_scale)
        if value % self.tick_size:
            raise DecimalError(f"price {text} is not a multiple of the tick size")
        return value

    def qty(self, text: str) -> int:
        """Decimal string -> scaled quantity, checked against the lot size."""
        value = parse_decimal(text, self.qty_scale)
        if value % self.lot_size:
            raise DecimalError(f"quantity {text} is not a multiple of the lot size")
        return value

    def format_price(self, value: int) -> str:
        return format_decimal(value, self.price_scale)

    def format_qty(self, value: int) -> str:
        return format_decimal(value, self.qty_scale)
