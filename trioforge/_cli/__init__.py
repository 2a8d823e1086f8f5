"""TODO design note."""

from ._main import main as main

__all__ = [
    "main",
]
