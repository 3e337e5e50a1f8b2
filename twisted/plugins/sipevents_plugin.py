"""
The C{twistd sipevents} plugin: only a L{ServiceMaker}, which imports
L{sipevents.app.tap} when the command is used, so scanning plugins stays cheap.

This folder has no C{__init__.py} on purpose (it must not shadow the real
C{twisted} package); Twisted finds dropins in C{twisted/plugins} on
C{sys.path}.
"""

from __future__ import annotations

from twisted.application.service import ServiceMaker

sipeventsServiceMaker = ServiceMaker(
    "sipevents",
    "sipevents.app.tap",
    "A SIP event notification server (RFC 6665 SUBSCRIBE/NOTIFY, RFC 3903 PUBLISH).",
    "sipevents",
)
