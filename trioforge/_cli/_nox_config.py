"""``trioforge nox``'s settings that do not come from argparse alone.

``[tool.trioforge.nox]`` in the ``pyproject.toml`` beside the noxfile
(:func:`project_defaults`), and the ``NAME=N`` values of ``--resource``
(:func:`resource_option`, also used by ``trioforge run``).
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from .._shell import display_path
from ._store_commands import UsageError

__all__ = ["project_defaults", "resource_option"]


def resource_option(text: str) -> tuple[str, int]:
    """``--resource NAME=N`` (of ``trioforge run`` and ``resume``) as ``(NAME, N)``."""
    name, sep, number = text.rpartition("=")
    try:
        units = int(number)
    except ValueError:
        units = 0
    if not sep or not name or units < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=N with N >= 1, got {text!r}")
    return name, units


def _values(config: dict[str, Any], key: str, path: Path) -> list[str]:
    value = config.get(key)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise UsageError(
                f"{display_path(path)}: [tool.trioforge.nox] {key} must be a number, a "
                f"'PATTERN=VALUE' string or a list of them, got {item!r}"
            )
    return [str(item) for item in items]


def project_defaults(folder: Path) -> tuple[list[str], list[str], int | None]:
    """``(timeouts, retries, max_parallel)`` from ``[tool.trioforge.nox]`` in ``folder``.

    Raises:
        UsageError: an unreadable ``pyproject.toml`` or a bad value, naming the file.
    """
    path = folder / "pyproject.toml"
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return [], [], None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{display_path(path)}: {exc}") from None
    config = data.get("tool", {}).get("trioforge", {}).get("nox", {})
    if not isinstance(config, dict):
        raise UsageError(f"{display_path(path)}: [tool.trioforge.nox] must be a table")
    unknown = sorted(set(config) - {"timeout", "retries", "max-parallel"})
    if unknown:
        raise UsageError(
            f"{display_path(path)}: [tool.trioforge.nox] has unknown keys {unknown} "
            "(known: timeout, retries, max-parallel)"
        )
    limit = config.get("max-parallel")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(
            f"{display_path(path)}: [tool.trioforge.nox] max-parallel must be a whole number "
            f">= 1, got {limit!r}"
        )
    return _values(config, "timeout", path), _values(config, "retries", path), limit
