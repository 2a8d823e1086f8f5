"""The engine of ``trioforge nox``: a project's nox sessions as a trioforge workflow.

What this room does: ask the user's own nox which sessions are selected and
what each requires (:func:`probe_graph`, a small script run by the Python that
runs their nox, with the public ``nox --list --json`` route as a fallback),
then turn that graph into a :class:`trioforge.Workflow` (:func:`build_workflow`)
whose tasks each run ``nox -s SIGNATURE --no-dependencies --report FILE`` in
their own process group, read the session's outcome from the report, and keep
each session's output in its own log. Sessions that share a virtualenv never
overlap (the core's named resource pools); per-session timeouts and retries
come from ``fnmatch`` patterns.

What it may import: the public ``trioforge`` top level, the standard
library, trio and attrs; the store's ``register_result_type`` (so a
resumed run restores completed sessions' results); and the shell room's
launch step (``ShellTask._launch``, process groups) for the warm spares. Never nox: nox runs in the
user's interpreter, whose version we do not control, and trioforge does not
depend on it.

Who imports it: the command line (``trioforge nox``), which adds the live
view, the run store, resume and the exit codes. The pieces:

* ``_probe_main``: the probe script (text run in the user's interpreter);
* ``_interpreter``: finding nox's interpreter and starting the probe (standard
  library and attrs only: the command line starts it before importing trio);
* ``_probe``, ``_fallback``: collecting the probe's answer, the public route;
* ``_graph_data``: :class:`NoxGraph`, :class:`NoxSession`, :class:`NoxError`;
* ``_session``: :class:`NoxSessionTask` and its result and error;
* ``_spares``, ``_warm_main``, ``_warm``: warm nox interpreters that a
  session's command starts in instead of a fresh process (standard library
  and attrs only, but for ``_warm``'s launch, which uses the shell room's
  process-group handling);
* ``_graph``: :func:`build_workflow`, the per-session limits, and
  :func:`session_pools` (the resource pools that keep shared envdirs apart).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._discover import probe_graph as probe_graph
    from ._graph import SESSIONS_POOL as SESSIONS_POOL
    from ._graph import PerSession as PerSession
    from ._graph import build_workflow as build_workflow
    from ._graph import parse_retries as parse_retries
    from ._graph import parse_timeouts as parse_timeouts
    from ._graph import session_pools as session_pools
    from ._graph_data import MIN_NOX_VERSION as MIN_NOX_VERSION
    from ._graph_data import NoxError as NoxError
    from ._graph_data import NoxGraph as NoxGraph
    from ._graph_data import NoxSession as NoxSession
    from ._interpreter import NoxInterpreter as NoxInterpreter
    from ._interpreter import StartedProbe as StartedProbe
    from ._interpreter import find_nox_python as find_nox_python
    from ._interpreter import probe_argv as probe_argv
    from ._interpreter import refused_nox_arg as refused_nox_arg
    from ._interpreter import start_probe as start_probe
    from ._session import NoxSessionError as NoxSessionError
    from ._session import NoxSessionResult as NoxSessionResult
    from ._session import NoxSessionTask as NoxSessionTask
    from ._spares import Spares as Spares

__all__ = [
    "MIN_NOX_VERSION",
    "SESSIONS_POOL",
    "NoxError",
    "NoxGraph",
    "NoxInterpreter",
    "NoxSession",
    "NoxSessionError",
    "NoxSessionResult",
    "NoxSessionTask",
    "PerSession",
    "Spares",
    "StartedProbe",
    "build_workflow",
    "find_nox_python",
    "parse_retries",
    "parse_timeouts",
    "probe_argv",
    "probe_graph",
    "refused_nox_arg",
    "session_pools",
    "start_probe",
]

# Each name loads its module on first use (PEP 562), so that the command line
# can start the probe (``_interpreter``: no trio, no trioforge) before it
# imports the rest.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("probe_graph",), "._discover"),
    **dict.fromkeys(
        (
            "PerSession",
            "SESSIONS_POOL",
            "build_workflow",
            "parse_retries",
            "parse_timeouts",
            "session_pools",
        ),
        "._graph",
    ),
    **dict.fromkeys(("MIN_NOX_VERSION", "NoxError", "NoxGraph", "NoxSession"), "._graph_data"),
    **dict.fromkeys(
        (
            "NoxInterpreter",
            "StartedProbe",
            "find_nox_python",
            "probe_argv",
            "refused_nox_arg",
            "start_probe",
        ),
        "._interpreter",
    ),
    **dict.fromkeys(("NoxSessionError", "NoxSessionResult", "NoxSessionTask"), "._session"),
    **dict.fromkeys(("Spares",), "._spares"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
