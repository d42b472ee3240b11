"""Times in files and flags: epoch ms with up to 6 decimals, RFC 3339 to the ns, dates."""

from __future__ import annotations

from datetime import date

import pytest

from mercato.analytics.times import TimeError, day_of, parse_time

S = 1_000_000_000
AUG8 = 1_723_075_200 * S  # 2024-08-08T00:00:00Z


@pytest.mark.parametrize(
    "text, ns",
    [
        ("1723075200000", AUG8),
        ("1723075200000.000001", AUG8 + 1),
        ("1723075200123.456789", AUG8 + 123_456_789),
        ("2024-08-08T00:00:00Z", AUG8),
        ("2024-08-08t00:00:00z", AUG8),
        ("2024-08-08 02:00:00+02:00", AUG8),
        ("2024-08-07T20:00:00.000000001-04:00", AUG8 + 1),
        ("2024-08-08T00:00:00.123456789Z", AUG8 + 123_456_789),
        ("2024-08-08", AUG8),
        ("1969-12-31T23:59:59.5Z", -S // 2),
        (" 0 ", 0),
    ],
)
def test_accepted_forms_are_exact(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1723075200000.0000001",  # finer than a ns
        "2024-08-08T00:00:00",  # RFC 3339 needs its offset
        "2024-02-30",
        "2024-08-08T25:00:00Z",
        "2024-08-08T00:00:00.1234567890Z",
        "1e12",
        "yesterday",
    ],
)
def test_refused_forms(text: str) -> None:
    with pytest.raises(TimeError):
        parse_time(text)


def test_day_of() -> None:
    assert day_of(AUG8) == date(2024, 8, 8)
    assert day_of(AUG8 - 1) == date(2024, 8, 7)
    assert day_of(-1) == date(1969, 12, 31)
