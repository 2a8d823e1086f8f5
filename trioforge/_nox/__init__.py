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
library, trio and attrs; and the store's ``register_result_type`` (so a
resumed run restores completed sessions' results). Never nox: nox runs in the
user's interpreter, whose version we do not control, and trioforge does not
depend on it.

Who imports it: the command line (``trioforge nox``), which adds the live
view, the run store, resume and the exit codes. The pieces:

* ``_probe_main``: the probe script (text run in the user's interpreter);
* ``_probe``, ``_fallback``: finding nox's interpreter, running the probe, the public route;
* ``_graph_data``: :class:`NoxGraph`, :class:`NoxSession`, :class:`NoxError`;
* ``_session``: :class:`NoxSessionTask` and its result and error;
* ``_graph``: :func:`build_workflow`, the per-session limits, and
  :func:`session_pools` (the resource pools that keep shared envdirs apart).
"""

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
from ._probe import NoxInterpreter as NoxInterpreter
from ._probe import find_nox_python as find_nox_python
from ._session import NoxSessionError as NoxSessionError
from ._session import NoxSessionResult as NoxSessionResult
from ._session import NoxSessionTask as NoxSessionTask

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
    "build_workflow",
    "find_nox_python",
    "parse_retries",
    "parse_timeouts",
    "probe_graph",
    "session_pools",
]
