"""Exceptions raised by the core: each one is a bug in the caller or the engine, not bad input
(bad input is answered with a ``Rejected`` event)."""

from __future__ import annotations


class IllegalTransition(RuntimeError):
    """An order was asked to move to a state its current state does not lead to."""


class UnknownCommand(TypeError):
    """The engine was given something that is not a command it knows."""


class InsufficientFunds(ValueError):
    """A withdrawal or transfer larger than the account's balance of that asset."""
