"""Shell tasks: commands run as workflow tasks, in their own process groups.

What it holds: :class:`ShellTask` (``_shell_task``) and what it returns or
raises (``_result``); command and environment checks with the one
environment-name rule (``_env``); log and output files (``_files``);
``${{ tasks.ID.outputs.KEY }}`` templates (``_templates``); the check that
refuses templates where a program reads code (``_argv_code``); process
groups (``_process_group``) and the watchdog that kills them when the
driving process dies (``_watchdog``). A shell task whose commands run
elsewhere (the Dask room's) replaces ``ShellTask._launch`` only, with what
this door exports for it (``may_start``, ``with_driver``,
``ProcessStartError``, ``start_failure``).

May import: ``_core``, and ``_store``'s codec registry (``ShellResult``
registers itself there). Imported by: the workflow-file front end, the
report, the command line and the public top level.
"""

from ._argv_code import CodeItem as CodeItem
from ._argv_code import code_items as code_items
from ._env import ENV_NAME as ENV_NAME
from ._env import RESERVED_ENV as RESERVED_ENV
from ._env import checked_text as checked_text
from ._env import layered_env as layered_env
from ._env import to_command as to_command
from ._env import to_env as to_env
from ._files import display_path as display_path
from ._files import run_folder as run_folder
from ._files import task_log_path as task_log_path
from ._process_group import ProcessGroups as ProcessGroups
from ._process_group import ProcessStartError as ProcessStartError
from ._process_group import group_stopper as group_stopper
from ._process_group import may_start as may_start
from ._process_group import process_watchdog as process_watchdog
from ._process_group import signal_group as signal_group
from ._process_group import start_failure as start_failure
from ._process_group import with_driver as with_driver
from ._result import ShellCommandError as ShellCommandError
from ._result import ShellResult as ShellResult
from ._shell_task import ShellTask as ShellTask
from ._templates import OPEN as OPEN
from ._templates import MissingOutputError as MissingOutputError
from ._templates import Reference as Reference
from ._templates import scan as scan
from ._watchdog import kill_leftovers as kill_leftovers

__all__ = [
    "ENV_NAME",
    "OPEN",
    "RESERVED_ENV",
    "CodeItem",
    "MissingOutputError",
    "ProcessGroups",
    "ProcessStartError",
    "Reference",
    "ShellCommandError",
    "ShellResult",
    "ShellTask",
    "checked_text",
    "code_items",
    "display_path",
    "group_stopper",
    "kill_leftovers",
    "layered_env",
    "may_start",
    "process_watchdog",
    "run_folder",
    "scan",
    "signal_group",
    "start_failure",
    "task_log_path",
    "to_command",
    "to_env",
    "with_driver",
]
