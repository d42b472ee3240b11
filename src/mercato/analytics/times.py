"""Times as people write them in files and on the command line, parsed exactly to epoch ns.

Accepted (``docs/analytics.md``):

- epoch **milliseconds** as a decimal number with up to 6 decimals (``1723075200123``,
  ``1723075200123.456789``): the unit of the candle CSV's ``start``, and exact to the ns;
- RFC 3339 with its offset (``2024-08-08T00:00:00Z``, ``2024-08-08 02:00:00.5+02:00``),
  up to 9 fractional digits, exact (``datetime.fromisoformat`` would drop the ns);
- a bare date ``YYYY-MM-DD``: midnight UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from mercato.domain.instrument import DecimalError, parse_decimal

__all__ = ["TimeError", "day_of", "parse_time"]

NS = 1_000_000_000
DAY_NS = 86_400 * NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MS = re.compile(r"-?\d+(?:\.\d+)?")


class TimeError(ValueError):
    """A time that is none of the accepted forms."""


def parse_time(text: str) -> int:
    """Epoch ns of ``text`` (epoch ms with up to 6 decimals, RFC 3339, or a UTC date)."""
    s = text.strip()
    if _MS.fullmatch(s):
        try:
            return parse_decimal(s, 6)  # ms with 6 decimals = ns
        except DecimalError:
            raise TimeError(f"{text!r}: epoch milliseconds take at most 6 decimals") from None
    try:
        if _DATE.fullmatch(s):
            d = date.fromisoformat(s)
            return (d - _EPOCH.date()).days * DAY_NS
        m = _RFC3339.fullmatch(s)
        if m is None:
            raise TimeError(
                f"not a time: {text!r} (epoch ms, RFC 3339 such as 2024-08-08T00:00:00Z, "
                "or YYYY-MM-DD)"
            )
        day, hh, mm, ss, frac, zone = m.groups()
        offset = "+00:00" if zone in ("Z", "z") else zone
        whole = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}{offset}")
    except ValueError as e:  # a date or time out of range (2024-02-30, 25:00)
        if isinstance(e, TimeError):
            raise
        raise TimeError(f"not a valid time: {text!r} ({e})") from None
    seconds = (whole - _EPOCH) // timedelta(seconds=1)
    return seconds * NS + int((frac or "").ljust(9, "0"))


def day_of(ts: int) -> date:
    """The UTC day of an epoch-ns time."""
    return _EPOCH.date() + timedelta(days=ts // DAY_NS)
