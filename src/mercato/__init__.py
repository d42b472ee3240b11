"""Mercato: a trading platform."""

__version__ = "0.1.0"
