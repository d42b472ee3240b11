"""Decimal strings <-> scaled integers: exact, or refused with DecimalError."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.domain import DecimalError, format_decimal, parse_decimal


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("101.25", 2, 10125),
        ("101.2", 2, 10120),
        ("101", 2, 10100),
        ("101.", 2, 10100),
        (".5", 2, 50),
        ("0.01", 2, 1),
        ("0", 2, 0),
        ("-0", 2, 0),
        ("+1.5", 1, 15),
        ("-1.5", 1, -15),
        ("-.5", 1, -5),
        ("007", 0, 7),
        ("  3.25  ", 2, 325),
        ("1.2300", 2, 123),  # extra places accepted only when they are zeros
        ("5.000", 0, 5),
        ("123456789012345678", 0, 123456789012345678),
        ("1", 18, 10**18),
    ],
)
def test_parse_decimal_accepts_exact_values(text: str, scale: int, expected: int) -> None:
    assert parse_decimal(text, scale) == expected


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("1.234", 2),  # too many places
        ("1.001", 2),
        ("0.5", 0),
        ("-0.5", 0),
        ("1.0000001", 6),
    ],
)
def test_parse_decimal_refuses_too_many_places(text: str, scale: int) -> None:
    with pytest.raises(DecimalError, match="decimal places"):
        parse_decimal(text, scale)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        ".",
        "-",
        "+",
        "+-1",
        "--1",
        "1.2.3",
        "1,5",
        "1 000",
        "1_000",
        "abc",
        "12a",
        "0x10",
        "nan",
        "NaN",
        "-nan",
        "inf",
        "-inf",
        "Infinity",
        "1e5",
        "1E5",
        "1.5e-2",
        "e5",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: only ASCII digits are decimal digits here
        "\uff11.5",  # FULLWIDTH DIGIT ONE
        "1\u00bd",  # VULGAR FRACTION ONE HALF
        "\u00b2",  # SUPERSCRIPT TWO
    ],
)
def test_parse_decimal_refuses_garbage(text: str) -> None:
    with pytest.raises(DecimalError):
        parse_decimal(text, 2)


def test_parse_decimal_refuses_absurdly_long_numbers_with_decimal_error() -> None:
    with pytest.raises(DecimalError):
        parse_decimal("9" * 5000, 2)


@pytest.mark.parametrize(
    ("value", "scale", "places", "expected"),
    [
        (10125, 2, None, "101.25"),
        (1, 2, None, "0.01"),
        (0, 2, None, "0.00"),
        (-1, 2, None, "-0.01"),
        (-10125, 2, None, "-101.25"),
        (7, 0, None, "7"),
        (-7, 0, None, "-7"),
        (10100, 2, 0, "101"),
        (10120, 2, 1, "101.2"),
        (10125, 2, 4, "101.2500"),
        (7, 0, 2, "7.00"),
        (10**18, 18, None, "1.000000000000000000"),
    ],
)
def test_format_decimal(value: int, scale: int, places: int | None, expected: str) -> None:
    assert format_decimal(value, scale, places) == expected


def test_format_decimal_refuses_to_drop_nonzero_places() -> None:
    with pytest.raises(DecimalError):
        format_decimal(10125, 2, 1)
    with pytest.raises(DecimalError):
        format_decimal(-1, 2, 0)


@given(st.integers(min_value=-(10**20), max_value=10**20), st.integers(min_value=0, max_value=18))
def test_format_then_parse_round_trips(value: int, scale: int) -> None:
    assert parse_decimal(format_decimal(value, scale), scale) == value


@given(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=8),
)
def test_parse_with_more_places_than_needed_is_exact(value: int, scale: int, extra: int) -> None:
    text = format_decimal(value, scale, scale + extra)
    assert parse_decimal(text, scale) == value


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=0, max_value=24))
def test_format_decimal_agrees_with_decimal(value: int, scale: int) -> None:
    """The fast path (places = scale) and the general one print what ``Decimal`` prints."""
    expected = format(Decimal(value).scaleb(-scale, Context(prec=100)), "f")
    assert format_decimal(value, scale) == expected
    assert format_decimal(value, scale, scale) == expected
