# -*- test-case-name: tests.test_testing -*-
"""
Helpers for end-to-end tests over real loopback sockets: a port to give a
server, a users file for it, and stopping a process the test started.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess

__all__ = ["freePort", "htdigestLine", "stopProcess"]


def freePort(host: str = "127.0.0.1") -> int:
    """
    A port on C{host} (a loopback address) that is free for both UDP and
    TCP right now.

    A server is given one fixed port rather than port 0 so that one number
    serves its UDP and TCP listeners alike, as SIP's default port does.
    Another process may take the port before the server binds it; tests
    that bind at once make that unlikely.

    @raise RuntimeError: when 50 tries found no port free for both.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free on {host} for both UDP and TCP")


def stopProcess(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """
    Stop a process this test started, by its PID: SIGTERM (which a server
    such as C{twistd} or Kamailio's main process passes on to its workers),
    then SIGKILL after C{grace} seconds. Does nothing when it has already
    exited.
    """
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def htdigestLine(user: str, realm: str, password: str) -> str:
    """
    One line of a C{twistd sipevents --users} file, as Apache's
    C{htdigest} writes it: C{user:realm:MD5(user:realm:password)} (RFC
    2617 section 3.2.2.2's A1, hashed).
    """
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    return f"{user}:{realm}:{ha1}\n"
