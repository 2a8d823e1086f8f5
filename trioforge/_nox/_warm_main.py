# ruff: noqa: UP045
"""A warm nox: an interpreter that imported nox ahead and waits to run one session.

Like ``_probe_main``, this file is never imported by trioforge:
:mod:`trioforge._nox._spares` runs its text with ``PYTHON -c TEXT`` in the
interpreter of the user's nox, in a new session (its own process group),
with stdin a pipe from trioforge and stdout and stderr ``/dev/null``. It
sticks to plain Python 3.8 and the standard library.

What it does:

1. imports nox's command line (the slow part of starting ``python -m nox``:
   about 70 ms) while trioforge is still busy elsewhere;
2. reads one line from stdin: a JSON object ``{"args": [...], "env": {...},
   "log": PATH}``; end of file (trioforge closed it, or died) ends the
   process quietly, having run nothing;
3. becomes exactly what ``PYTHON -m nox ARGS`` started by trioforge would be:
   stdout and stderr appended to the session's log, stdin ``/dev/null``, the
   environment replaced by ``env``, ``sys.argv`` and ``__main__`` set by
   :func:`runpy.run_module` as ``-m`` sets them, ``sys.path[0]`` the working
   folder; then runs nox's ``__main__``, whose exit status is the process's.

An error importing nox is kept and shown in the session's log as a plain
``python -m nox`` would show it (exit status 1).
"""

import json
import os
import runpy
import sys
import traceback
from typing import Optional


def main() -> None:
    """Import nox, wait for the session's order, run it (see the module notes)."""
    failure: Optional[str] = None
    try:
        import nox._cli  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except Exception:  # shown in the session's log once there is one
        failure = traceback.format_exc()
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return  # trioforge needs no more sessions (or is gone)
    order = json.loads(line.decode("utf-8"))
    log = os.open(order["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ.clear()
    os.environ.update(order["env"])
    if failure is not None:
        sys.stderr.write(failure)
        sys.stderr.flush()
        sys.exit(1)
    sys.argv = ["-m", *order["args"]]
    sys.path[0] = os.getcwd()
    runpy.run_module("nox", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
