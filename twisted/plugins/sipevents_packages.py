"""
The built-in event packages of sipevents as Twisted plugins: C{presence}
(RFC 3856) and C{message-summary} (RFC 3842).

L{sipevents.packages.discoverPackages} finds every module-level object that
provides both L{twisted.plugin.IPlugin} and
L{sipevents.interfaces.IEventPackage} in C{twisted/plugins} folders on
C{sys.path}, ours and third parties' alike. A third-party distribution adds
a package to C{twistd sipevents} by shipping a dropin like this one.

This folder has no C{__init__.py} on purpose (it must not shadow the real
C{twisted} package).
"""

from __future__ import annotations

from sipevents.packages.messagesummary import MessageSummaryPackage
from sipevents.packages.presence import PresencePackage

presence = PresencePackage()
messageSummary = MessageSummaryPackage()
