"""Fixtures of the nox engine's tests: the interpreter that runs nox, and fixture noxfiles."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from trioforge._nox import NoxInterpreter

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def interpreter() -> NoxInterpreter:
    """The interpreter running the tests, which has nox 2026.10.20 installed."""
    return NoxInterpreter(sys.executable, "the test interpreter")


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """Copy ``fixtures/NAME.py`` to ``tmp/NAME/noxfile.py`` (nox writes .nox there); the folder.

    The fixtures have distinct names so that mypy checks them as distinct
    modules.
    """

    def copy(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        shutil.copyfile(FIXTURES / f"{name}.py", folder / "noxfile.py")
        return folder

    return copy
