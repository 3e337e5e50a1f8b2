"""
What every declared state table of sipevents shares: the transactions of
L{sipevents.sip.transaction} (RFC 3261 section 17), the notifier's
subscriptions of L{sipevents.notifier.states} (RFC 6665 section 4.2.2) and
the subscriber's of L{sipevents.subscriber.states} (RFC 6665 section
4.1.2).

A table maps C{(state, input)} to what the step does; L{lookup} finds the
step or raises L{InvalidTransition}, so a pair missing from a table is
always refused the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

from sipevents.errors import InvalidTransition

__all__ = ["TableEnum", "lookup"]

_State = TypeVar("_State", bound=Enum)
_Input = TypeVar("_Input", bound=Enum)
_Step = TypeVar("_Step")


class TableEnum(Enum):
    """
    The states, inputs, actions and timers of a declared table.

    Members are singletons compared by identity, so they are hashed by
    identity too: C{Enum}'s own C{__hash__} is a Python call on every
    lookup in a transition table.
    """

    __hash__ = object.__hash__


def lookup(
    table: Mapping[tuple[_State, _Input], _Step],
    machine: object,
    state: _State,
    input: _Input,
    section: str,
) -> _Step:
    """
    The step C{input} makes from C{state} in C{table}.

    @param machine: what is looked up for, named in the error by its
        C{str}: a name, or an object whose C{repr} names it (only computed
        when the step is missing).
    @param section: the specification the table follows, for the error.
    @raise InvalidTransition: when the table has no such step.
    """
    step = table.get((state, input))
    if step is None:
        raise InvalidTransition(str(machine), state, input, section)
    return step
