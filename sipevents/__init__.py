"""
sipevents: SIP-Specific Event Notification (RFC 6665) on Twisted.

A notifier (server) and subscriber (client) framework for SUBSCRIBE/NOTIFY and
PUBLISH, built on a sans-I/O SIP core wrapped by thin Twisted protocols.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
