"""
Kamailio with its presence module, as the foreign notifier the benchmarks
compare sipevents with (C{bench/subscribe.py}, C{bench/fanout.py}).

L{startKamailio} runs C{kamailio -DD -E} (foreground, log on standard error)
with C{tests/kamailio/kamailio.cfg} on a loopback UDP port, one worker
process, subscriptions and publications in memory, and an SQLite file
created in the work directory from Kamailio's own schema (the presence
module checks its table versions at start-up even when it keeps nothing
in the database). See the configuration file for every choice made.

Debian/Ubuntu: C{apt-get install kamailio kamailio-presence-modules
kamailio-sqlite-modules}.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess

from _sipp import LOOPBACK, ROOT

CONFIG = os.path.join(ROOT, "tests", "kamailio", "kamailio.cfg")

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

#: The modules the configuration loads.
MODULES = (
    "tm.so",
    "sl.so",
    "presence.so",
    "presence_xml.so",
    "presence_mwi.so",
    "db_sqlite.so",
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
    The first line of C{kamailio -v}, e.g. C{version: kamailio 5.6.3 ...}.
    """
    try:
        out = subprocess.run(
            [binary, "-v"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "kamailio (version unknown)"
    first = out.strip().splitlines()[0] if out.strip() else ""
    return first.replace("version: ", "")


def createDatabase(path: str, schemaDir: str) -> None:
    """
    Create Kamailio's SQLite database at C{path} from its own schema: the
    C{version} table and the presence tables.
    """
    with sqlite3.connect(path) as db:
        for name in ("standard-create.sql", "presence-create.sql"):
            with open(os.path.join(schemaDir, name)) as f:
                db.executescript(f.read())
    db.close()


def startKamailio(
    port: int,
    work: str,
    minExpires: int = 60,
    sharedMemoryMB: int = 1024,
    found: tuple[str, str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """
    Start Kamailio's presence server on udp:127.0.0.1:C{port}, logging to
    C{work}/kamailio.log.

    @param minExpires: its C{min_expires}: a shorter SUBSCRIBE gets 423.
    @param sharedMemoryMB: its shared memory pool (C{-m}); the default 64
        MB runs out under a load test, since every subscription and
        transaction lives there.
    @param found: what L{findKamailio} returned.
    @raise RuntimeError: when Kamailio is not installed.
    """
    found = found or findKamailio()
    if found is None:
        raise RuntimeError("kamailio with its presence and sqlite modules is missing")
    binary, moduleDir, schemaDir = found
    database = os.path.join(work, "kamailio.sqlite")
    if os.path.exists(database):
        os.remove(database)
    createDatabase(database, schemaDir)
    argv = [
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
    ]
    with open(os.path.join(work, "kamailio.log"), "wb") as out:
        return subprocess.Popen(
            argv, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
