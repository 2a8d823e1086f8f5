"""The public names of ``trioforge.dask`` are the documented ones."""

from __future__ import annotations

import re
from pathlib import Path

import trioforge.dask

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dask.rst"


def test_exports_are_the_documented_names() -> None:
    """``__all__`` lists exactly what docs/dask.rst documents, and each name exists."""
    documented = set(re.findall(r"^\.\. auto\w+:: (\w+)", DOCS.read_text(), flags=re.M))
    assert set(trioforge.dask.__all__) == documented
    assert all(hasattr(trioforge.dask, name) for name in trioforge.dask.__all__)
