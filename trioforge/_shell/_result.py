"""ShellResult and ShellCommandError: what a shell task gives back, or raises.

ShellResult registers itself with the run store's codec, so stored results
of shell tasks come back as equal ShellResults on resume.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._core import WorkflowError
from .._store import register_result_type
from ._files import display_path

__all__ = ["ShellCommandError", "ShellResult"]


class ShellCommandError(WorkflowError):
    """Raised when a shell task's command fails: non-zero exit, killed, or not startable.

    Attributes:
        task_id: the workflow task the command belongs to.
        returncode: the exit status (``-N``: killed by signal N), or None if
            the command never ran or failed after exiting 0 (bad outputs).
        log_path: the task's log file.
    """

    def __init__(
        self, task_id: str, message: str, *, returncode: int | None, log_path: Path
    ) -> None:
        super().__init__(f"{message} (log: {display_path(log_path)})")
        self.task_id = task_id
        self.returncode = returncode
        self.log_path = log_path


def _copy(mapping: Mapping[str, str]) -> dict[str, str]:
    return dict(mapping)


@attrs.frozen
class ShellResult:
    """What a successful shell task produced; this is the task's result.

    Attributes:
        task_id: the workflow task.
        returncode: always 0 for a result (failures raise :class:`ShellCommandError`).
        outputs: the ``key=value`` pairs the command wrote to ``$TRIOFORGE_OUTPUT``.
        log_path: the task's log file.
        duration: seconds the command ran (``trio.current_time()``).
        attempt: which attempt succeeded.
        fallback: True when this is the result of the task's ``fallback`` command.
    """

    task_id: str
    returncode: int
    outputs: Mapping[str, str] = attrs.field(converter=_copy)
    log_path: Path
    duration: float
    attempt: int
    fallback: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-able data; :meth:`from_json` makes an equal result of it."""
        return {
            "task_id": self.task_id,
            "returncode": self.returncode,
            "outputs": dict(self.outputs),
            "log_path": os.fspath(self.log_path),
            "duration": self.duration,
            "attempt": self.attempt,
            "fallback": self.fallback,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShellResult:
        """The result that :meth:`to_json` described (e.g. restored from a run store).

        Raises:
            KeyError: a field is missing.
        """
        return cls(
            task_id=data["task_id"],
            returncode=data["returncode"],
            outputs=data["outputs"],
            log_path=Path(data["log_path"]),
            duration=data["duration"],
            attempt=data["attempt"],
            fallback=data.get("fallback", False),
        )


_PATH = type(Path())  # what from_json makes of a stored log path (PosixPath here)


def _restores(result: ShellResult) -> bool:
    """Whether ``result`` comes back equal from its JSON, by its fields' types alone.

    True when every field has the very type :meth:`ShellResult.from_json`
    gives back (JSON's ``str``, ``int``, ``float`` and ``bool``, a ``dict``
    of strings, a concrete :class:`~pathlib.Path`, already normalized): the
    run store then need not decode the result again to know. A float that
    JSON cannot hold (NaN, infinity) never gets here: encoding it fails first.
    """
    outputs = result.outputs
    return (
        type(result.task_id) is str
        and type(result.returncode) is int
        and type(result.duration) is float
        and type(result.attempt) is int
        and type(result.fallback) is bool
        and type(result.log_path) is _PATH
        and type(outputs) is dict
        and all(type(key) is str and type(value) is str for key, value in outputs.items())
    )


register_result_type("ShellResult", ShellResult, restores=_restores)
