"""The ``trioforge`` command: the top floor.

What it holds: argument parsing and the commands (``_main``), running and
resuming a file (``_run``), counted signals (``_signals``), the store
commands ``runs``/``show``/``report`` (``_store_commands``), the live and
plain progress views (``_progress``), the summary (``_summary``) and the
plan (``_plan``).

May import: every room below it. Imported by: ``trioforge.__main__`` and the
``trioforge`` console script only.
"""

from ._main import main as main

__all__ = [
    "main",
]
