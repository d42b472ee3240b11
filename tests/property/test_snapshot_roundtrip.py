"""Snapshot/restore at random points, then carrying on, is indistinguishable from not doing it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mercato.domain import Command, Event
from mercato.engine import Engine, encode, restore, state_hash

from .strategies import command_lists


def run(engine: Engine, cmds: list[Command]) -> list[list[Event]]:
    return [engine.process(c) for c in cmds]


@given(cmds=command_lists(), data=st.data())
def test_restore_then_continue_gives_the_same_events_and_state_hash(
    cmds: list[Command], data: st.DataObject
) -> None:
    straight = Engine()
    expected = run(straight, cmds)

    cuts = sorted(data.draw(st.lists(st.integers(0, len(cmds)), min_size=1, max_size=3)))
    engine, got, done = Engine(), [], 0
    for cut in cuts:
        got += run(engine, cmds[done:cut])
        done = cut
        before = state_hash(engine)
        engine = restore(encode(engine))
        assert state_hash(engine) == before
    got += run(engine, cmds[done:])

    assert got == expected
    assert state_hash(engine) == state_hash(straight)
    assert encode(engine) == encode(straight)


@given(cmds=command_lists())
def test_the_same_commands_give_the_same_events_and_state_hash(cmds: list[Command]) -> None:
    a, b = Engine(), Engine()
    assert run(a, cmds) == run(b, cmds)
    assert state_hash(a) == state_hash(b)
