"""TODO design note."""

from ._html import render_report as render_report

__all__ = [
    "render_report",
]
