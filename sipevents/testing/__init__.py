# -*- test-case-name: tests.test_testing,tests.test_transport -*-
"""
Public test doubles for code built on sipevents.

Use them from C{twisted.trial} tests so that a whole exchange runs without
sockets and with a L{twisted.internet.task.Clock}:

    - L{connectedPair}: our notifier and our subscriber connected in
      memory over one clock, every message going through bytes
      (L{ConnectedPair}, L{MemoryWire}).
    - L{subscribeRequest}, L{notifyRequest}, L{publishRequest},
      L{optionsRequest}, L{sipRequest}, L{responseTo}: messages as a peer
      sends them, parsed from their wire form; L{reparse} puts any message
      through bytes.
    - L{FakeSIPConnection}: an L{ISIPConnection} that records what is sent.
    - L{MemoryReceiver}: an L{IMessageReceiver} that records what arrives.
    - L{RecordingTransportLayer}: what a L{sipevents.sip.useragent.UserAgent}
      sends, recorded.
    - L{buildRequest}, L{buildResponse}: well-formed messages in one call,
      with fresh tags and Call-ID.
    - L{MemoryUDPReactor}: L{twisted.internet.testing.MemoryReactorClock}
      with C{listenUDP}, whose ports are L{MemoryDatagramTransport}s that
      record the datagrams written.
    - L{connectStream}: a stream protocol from a factory, connected to a
      L{twisted.internet.testing.StringTransport}.
    - L{makeCertificates}, L{writeCertificates}: a throw-away certificate
      authority and a server certificate it signed, for TLS over loopback.

    - L{freePort}, L{htdigestLine}, L{stopProcess}: a loopback port free
      for UDP and TCP, a line of a C{--users} file, and stopping by PID a
      server the test started.

Addresses default to loopback, so nothing built here names a real host.
C{docs/testing.rst} shows them at work.
"""

from __future__ import annotations

from sipevents.testing.doubles import (
    FakeSIPConnection,
    MemoryDatagramTransport,
    MemoryReceiver,
    MemoryUDPReactor,
    RecordingTransportLayer,
    buildRequest,
    buildResponse,
    connectStream,
    makeCertificates,
    newBranch,
    newTag,
    writeCertificates,
)
from sipevents.testing.messages import (
    NOTIFIER_CONTACT,
    RESOURCE,
    WATCHER,
    WATCHER_CONTACT,
    notifyRequest,
    optionsRequest,
    publishRequest,
    reparse,
    responseTo,
    sipRequest,
    subscribeRequest,
)
from sipevents.testing.pair import (
    ConnectedPair,
    MemoryWire,
    Transmission,
    WireTransportLayer,
    connectedPair,
)
from sipevents.testing.processes import freePort, htdigestLine, stopProcess

__all__ = [
    "ConnectedPair",
    "FakeSIPConnection",
    "MemoryDatagramTransport",
    "MemoryReceiver",
    "MemoryUDPReactor",
    "MemoryWire",
    "NOTIFIER_CONTACT",
    "RESOURCE",
    "RecordingTransportLayer",
    "Transmission",
    "WATCHER",
    "WATCHER_CONTACT",
    "WireTransportLayer",
    "buildRequest",
    "buildResponse",
    "connectStream",
    "connectedPair",
    "freePort",
    "htdigestLine",
    "makeCertificates",
    "newBranch",
    "newTag",
    "notifyRequest",
    "optionsRequest",
    "publishRequest",
    "reparse",
    "responseTo",
    "sipRequest",
    "stopProcess",
    "subscribeRequest",
    "writeCertificates",
]
