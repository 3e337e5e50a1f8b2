"""
Tests for L{sipevents.statetable}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from sipevents.errors import InvalidTransition
from sipevents.statetable import TableEnum, lookup


class _State(TableEnum):
    IDLE = "idle"
    BUSY = "busy"


class _Input(TableEnum):
    START = "start"
    STOP = "stop"


_TABLE = {(_State.IDLE, _Input.START): _State.BUSY}


class _Named:
    def __repr__(self) -> str:
        return "<machine 7>"


class TableEnumTests(SynchronousTestCase):
    def test_identityHash(self) -> None:
        """
        Members hash by identity, as C{object} does, not by name.
        """
        self.assertEqual(hash(_State.IDLE), object.__hash__(_State.IDLE))
        self.assertEqual({_State.IDLE: 1}[_State.IDLE], 1)


class LookupTests(SynchronousTestCase):
    def test_found(self) -> None:
        """
        A pair in the table gives its step.
        """
        self.assertIs(
            lookup(_TABLE, "m", _State.IDLE, _Input.START, "RFC 0"), _State.BUSY
        )

    def test_missing(self) -> None:
        """
        A pair missing from the table raises L{InvalidTransition} naming the
        machine, the state, the input and the section.
        """
        error = self.assertRaises(
            InvalidTransition,
            lookup,
            _TABLE,
            _Named(),
            _State.BUSY,
            _Input.STOP,
            "RFC 0 section 1",
        )
        self.assertEqual(error.machine, "<machine 7>")
        self.assertIs(error.state, _State.BUSY)
        self.assertIs(error.input, _Input.STOP)
        self.assertEqual(
            str(error),
            "<machine 7>: stop is not allowed in state busy (RFC 0 section 1)",
        )
