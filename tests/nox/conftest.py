"""Fixtures for the nox engine tests: a copy of a fixture noxfile's folder, and the interpreter."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from trioforge._nox import NoxInterpreter

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """Copy ``fixtures/NAME`` into tmp (nox writes .nox there) and return the copy."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(FIXTURES / name, tmp_path / name))

    return copy


@pytest.fixture
def interpreter() -> NoxInterpreter:
    """The interpreter running the tests, which has nox 2026.10.20 installed."""
    return NoxInterpreter(sys.executable, "the test interpreter")
