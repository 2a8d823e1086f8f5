"""The ``trioforge`` command: the top floor.

What it holds: argument parsing and the commands (``_main``, with the
shared options in ``_args`` and the ``--help`` texts in ``_help``), running
and resuming a file (``_run``), part of a workflow (``_select``), counted
signals (``_signals``), the store commands ``runs``/``show``/``report``
(``_store_commands``) and ``prune`` with the retention (``_prune``), the
views a run feeds (``_views``): the live and plain progress views
(``_progress``), the tasks' output (``_follow``), writer threads
(``_output``); the summary (``_summary``) and the plan (``_plan``).

May import: every room below it. Imported by: ``trioforge.__main__`` and the
``trioforge`` console script only.
"""

from ._main import main as main

__all__ = [
    "main",
]
