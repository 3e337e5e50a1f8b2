"""
Kamailio with its presence module: the foreign notifier that the interop
tests subscribe to (C{tests/test_interop_subscriber.py}) and that the
benchmarks compare sipevents with (C{bench.subscribe}, C{bench.fanout},
through C{bench.harness.kamailioServer}). The one launcher both use.

L{startKamailio} runs C{kamailio -DD -E} (foreground, log on standard error)
with C{tests/kamailio/kamailio.cfg} on a loopback UDP port, one worker
process, subscriptions and publications in memory, and a fresh SQLite file
created in the work directory from Kamailio's own schema (the presence
module checks its table versions at start-up even when it keeps nothing
in the database). L{stopKamailio} stops it by its PID. See the
configuration file for every choice made.

Debian/Ubuntu: C{apt-get install kamailio kamailio-presence-modules
kamailio-sqlite-modules}.

Only the standard library is imported here, so that the benchmarks, which
run outside any test runner, can import this module too.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess

from sipevents.testing import stopProcess

LOOPBACK = "127.0.0.1"

#: The presence server's configuration, beside this module.
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kamailio.cfg")

#: Where distributions put Kamailio's modules and its SQLite schema.
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/*/kamailio/modules",
    "/usr/lib64/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
    "/usr/local/lib/kamailio/modules",
)
SCHEMA_DIRS = (
    "/usr/share/kamailio/db_sqlite",
    "/usr/local/share/kamailio/db_sqlite",
)

#: The modules the configuration loads that a plain C{kamailio} package
#: may lack (the presence and SQLite ones come in their own packages).
MODULES = (
    "tm.so",
    "sl.so",
    "presence.so",
    "presence_xml.so",
    "presence_mwi.so",
    "db_sqlite.so",
)

#: Why L{findKamailio} found nothing, for skip and failure messages.
MISSING = (
    "kamailio with its presence and sqlite modules is not installed "
    "(Debian/Ubuntu: apt-get install kamailio kamailio-presence-modules "
    "kamailio-sqlite-modules)"
)


def findKamailio() -> tuple[str, str, str] | None:
    """
    The Kamailio binary, its module folder and its SQLite schema folder,
    or C{None} when any is missing (Kamailio, or its presence or SQLite
    modules, is not installed).
    """
    binary = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if os.access("/usr/sbin/kamailio", os.X_OK) else None
    )
    if binary is None:
        return None
    moduleDir = None
    for pattern in MODULE_DIRS:
        for candidate in sorted(glob.glob(pattern)):
            if all(os.path.exists(os.path.join(candidate, m)) for m in MODULES):
                moduleDir = candidate
                break
        if moduleDir:
            break
    schemaDir = next(
        (
            d
            for d in SCHEMA_DIRS
            if os.path.exists(os.path.join(d, "presence-create.sql"))
        ),
        None,
    )
    if moduleDir is None or schemaDir is None:
        return None
    return binary, moduleDir, schemaDir


def kamailioVersion(binary: str) -> str:
    """
    The first line of C{kamailio -v}, e.g. C{kamailio 5.6.3 (x86_64/linux)}.
    """
    try:
        out = subprocess.run(
            [binary, "-v"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "kamailio (version unknown)"
    first = out.strip().splitlines()[0] if out.strip() else ""
    return first.replace("version: ", "").strip()


def createDatabase(path: str, schemaDir: str) -> None:
    """
    Create Kamailio's SQLite database at C{path} from its own schema: the
    C{version} table and the presence tables. An existing file is replaced,
    so that every start begins empty.
    """
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    try:
        with db:
            for name in ("standard-create.sql", "presence-create.sql"):
                with open(os.path.join(schemaDir, name)) as f:
                    db.executescript(f.read())
    finally:
        db.close()


def kamailioArguments(
    port: int,
    work: str,
    found: tuple[str, str, str],
    minExpires: int = 60,
    sharedMemoryMB: int = 64,
    publicationCache: int = 1,
) -> list[str]:
    """
    The command line L{startKamailio} runs (see there).
    """
    binary, moduleDir, _ = found
    database = os.path.join(work, "kamailio.sqlite")
    return [
        binary,
        "-f",
        CONFIG,
        "-DD",
        "-E",
        "-L",
        moduleDir,
        "-l",
        f"udp:{LOOPBACK}:{port}",
        "-m",
        str(sharedMemoryMB),
        "-M",
        "64",
        "-P",
        os.path.join(work, "kamailio.pid"),
        "-Y",
        work,
        "-A",
        f'DBURL="sqlite://{database}"',
        "-A",
        f"MINEXPIRES={minExpires}",
        # Its Contact in 200s and NOTIFYs (the presence module's
        # server_address): with the port, so that a subscriber that sends
        # in-dialog requests to the remote target, as RFC 3261 section
        # 12.2.1.1 says, reaches this Kamailio and not port 5060.
        "-A",
        f'SERVERADDRESS="sip:kamailio@{LOOPBACK}:{port}"',
        "-A",
        f"PUBLCACHE={publicationCache}",
    ]


def startKamailio(
    port: int,
    work: str,
    minExpires: int = 60,
    sharedMemoryMB: int = 64,
    found: tuple[str, str, str] | None = None,
    publicationCache: int = 1,
) -> subprocess.Popen[bytes]:
    """
    Start Kamailio's presence server on udp:127.0.0.1:C{port}, logging to
    C{work}/kamailio.log, with a fresh database C{work}/kamailio.sqlite.
    It answers OPTIONS with 200 once it is up (see the configuration), which
    is how a caller knows when to start sending. Stop it with
    L{stopKamailio}.

    @param minExpires: its C{min_expires}: a shorter SUBSCRIBE gets 423.
    @param sharedMemoryMB: its shared memory pool (C{-m}); the benchmarks
        want 1024, since under load every subscription and transaction
        lives there, a test's few subscriptions fit in the default 64.
    @param found: what L{findKamailio} returned; looked up when C{None}.
    @param publicationCache: the presence module's C{publ_cache}: 1 (the
        default) keeps publications in memory and in the database, and
        puts the published state in the first NOTIFY of every new
        subscription; 2 keeps them in memory only, like our memory store,
        but Kamailio 5.6 then sends that first NOTIFY without a body (see
        the configuration file).
    @raise RuntimeError: when Kamailio is not installed.
    """
    found = found or findKamailio()
    if found is None:
        raise RuntimeError(MISSING)
    createDatabase(os.path.join(work, "kamailio.sqlite"), found[2])
    argv = kamailioArguments(
        port, work, found, minExpires, sharedMemoryMB, publicationCache
    )
    with open(os.path.join(work, "kamailio.log"), "wb") as out:
        return subprocess.Popen(
            argv, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )


def stopKamailio(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """
    Stop a Kamailio that L{startKamailio} started, by its PID: SIGTERM,
    which its main process passes on to its workers, then SIGKILL after
    C{grace} seconds. Does nothing when it has already exited.
    """
    stopProcess(process, grace)


def logTail(work: str, lines: int = 40) -> str:
    """
    The last C{lines} lines of C{work}/kamailio.log, for failure messages.
    """
    try:
        with open(os.path.join(work, "kamailio.log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no kamailio.log)"
