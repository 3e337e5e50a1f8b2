"""
Kamailio with its presence module, as the foreign notifier the benchmarks
compare sipevents with (C{bench/subscribe.py}, C{bench/fanout.py}).

The launcher lives in C{tests/kamailio/__init__.py}, beside the
configuration it runs, and is shared with the interop tests
(C{tests/test_interop_subscriber.py}); this module puts the checkout on
C{sys.path} to import it, and gives Kamailio the large shared memory pool a
load test needs and publications in memory only.

Debian/Ubuntu: C{apt-get install kamailio kamailio-presence-modules
kamailio-sqlite-modules}.
"""

from __future__ import annotations

import subprocess
import sys

from _sipp import ROOT

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.kamailio import (  # noqa: E402
    CONFIG,
    createDatabase,
    findKamailio,
    kamailioVersion,
    stopKamailio,
)
from tests.kamailio import startKamailio as _startKamailio  # noqa: E402

__all__ = [
    "CONFIG",
    "createDatabase",
    "findKamailio",
    "kamailioVersion",
    "startKamailio",
    "stopKamailio",
]

#: Shared memory for a load run (C{-m}): Kamailio's default 64 MB runs out,
#: since every subscription and transaction lives there.
BENCH_SHARED_MEMORY_MB = 1024

#: Publications in memory only (C{publ_cache=2}), like C{twistd sipevents
#: --store memory}: a like-for-like comparison. (It costs Kamailio the
#: body of a new subscription's first NOTIFY, which no benchmark needs:
#: see C{tests/kamailio/kamailio.cfg}.)
BENCH_PUBLICATION_CACHE = 2


def startKamailio(
    port: int,
    work: str,
    minExpires: int = 60,
    sharedMemoryMB: int = BENCH_SHARED_MEMORY_MB,
    found: tuple[str, str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """
    Start Kamailio's presence server on udp:127.0.0.1:C{port} for a load
    run; see L{tests.kamailio.startKamailio}.
    """
    return _startKamailio(
        port, work, minExpires, sharedMemoryMB, found, BENCH_PUBLICATION_CACHE
    )
