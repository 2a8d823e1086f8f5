"""Lease owners (``host:pid:token``) and whether one is a dead process of this host.

Pure helpers with no trio and no store: the SQLite adapter and the lease
heartbeat both use them.
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["holder_is_dead", "lease_owner"]


def lease_owner() -> str:
    """A fresh owner name for this process: ``host:pid:token``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_is_dead(owner: str) -> bool:
    """Whether ``owner`` (from :func:`lease_owner`) is a process of this host that has exited.

    False whenever that cannot be known for sure (another host, an owner in
    another format, a live or reused pid, a non-POSIX system).
    """
    if os.name != "posix":
        return False  # os.kill(pid, 0) would terminate the process on Windows
    host, sep, rest = owner.rpartition(":")[0].rpartition(":")
    if not sep or host != socket.gethostname():
        return False
    try:
        pid = int(rest)
    except ValueError:
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False
