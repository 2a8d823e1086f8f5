"""The ``dask:`` mapping of a workflow file: where its shell commands run.

``dask: {address: tcp://scheduler:8786}`` makes ``trioforge run`` connect to
that Dask scheduler and run every shell command of the file on its workers
(``--dask ADDRESS`` overrides the address). Reading it needs nothing of
Dask: the settings are plain data, and only the command line, when it runs
the file, imports the optional ``distributed`` package.
"""

from __future__ import annotations

import attrs

from ._nodes import Node
from ._schema import Checker

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DaskSettings", "read_dask"]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the scheduler when ``connect_timeout`` is not given."""

_KEYS = ("address", "connect_timeout")


@attrs.frozen
class DaskSettings:
    """A workflow file's ``dask:`` mapping.

    Attributes:
        address: the scheduler's address (``tcp://host:8786``), or None when
            only ``--dask ADDRESS`` gives it.
        connect_timeout: seconds to wait for the scheduler before giving up.
    """

    address: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT


def read_dask(check: Checker, node: Node) -> DaskSettings | None:
    """The ``dask:`` mapping at ``node``; None (and problems in ``check``) when it is bad."""
    pairs = check.mapping(node, "dask", _KEYS)
    if pairs is None:
        return None
    address = None
    if "address" in pairs:
        address = check.string(pairs["address"][1], "dask address")
        if address is not None and any(char.isspace() for char in address):
            check.add(pairs["address"][1], f"dask address {address!r} must not hold spaces")
            address = None
    timeout = DEFAULT_CONNECT_TIMEOUT
    if "connect_timeout" in pairs:
        timeout = check.duration(pairs["connect_timeout"][1], "dask connect_timeout") or timeout
    return DaskSettings(address, timeout)
