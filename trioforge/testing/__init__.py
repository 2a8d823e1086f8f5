"""Property-test workflows: hypothesis strategies, fault plans, virtual-time runs, deadlocks.

For your own workflows:

* :class:`FaultPlan` names tasks that fail before their body, fail after it,
  or hang after it, and a virtual time at which to cancel the run;
  :func:`faults` draws them for a workflow (a hypothesis strategy);
* :func:`with_faults` copies a workflow with a plan's faults injected
  around the real task bodies, for any executor and any clock;
* :func:`run_virtual` runs a workflow (optionally ``faults=``) under trio's
  ``MockClock`` with ``autojump_threshold=0``, so sleeps take no real time
  and every time is exact, and raises :class:`Deadlock` instead of hanging;
  :func:`run_in_trio` does the same inside a running trio program (a
  pytest-trio test), and :func:`fail_on_deadlock` is the deadlock check alone,
  around any trio code.

For trioforge's own tests (and for load tests of the scheduler):

* :func:`dag_specs` draws a random DAG with task durations and failures as a
  plain value (:class:`DagSpec`);
* :func:`workflows` draws a ready-to-run :class:`SimulatedWorkflow` whose
  tasks sleep for their drawn duration, fail when drawn to, and record what
  happened in a :class:`Trace`.

Example::

    from hypothesis import given
    from trioforge.testing import faults, run_virtual

    @given(faults(wf))
    def test_nothing_leaks(plan):
        run = run_virtual(wf, faults=plan)
        if run.error is not None:
            assert pool.held == set()

Needs the ``hypothesis`` package (``pip install trioforge[testing]``). The
guide is ``docs/testing.rst``.
"""

from ._deadlock import Deadlock as Deadlock
from ._deadlock import fail_on_deadlock as fail_on_deadlock
from ._faults import FaultPlan as FaultPlan
from ._faults import FaultyTask as FaultyTask
from ._faults import InjectedFault as InjectedFault
from ._faults import with_faults as with_faults
from ._run import VirtualRun as VirtualRun
from ._run import run_in_trio as run_in_trio
from ._run import run_virtual as run_virtual
from ._strategies import DagSpec as DagSpec
from ._strategies import SimulatedFailure as SimulatedFailure
from ._strategies import SimulatedTask as SimulatedTask
from ._strategies import SimulatedWorkflow as SimulatedWorkflow
from ._strategies import TaskSpec as TaskSpec
from ._strategies import Trace as Trace
from ._strategies import dag_specs as dag_specs
from ._strategies import faults as faults
from ._strategies import workflows as workflows

__all__ = [
    "DagSpec",
    "Deadlock",
    "FaultPlan",
    "FaultyTask",
    "InjectedFault",
    "SimulatedFailure",
    "SimulatedTask",
    "SimulatedWorkflow",
    "TaskSpec",
    "Trace",
    "VirtualRun",
    "dag_specs",
    "fail_on_deadlock",
    "faults",
    "run_in_trio",
    "run_virtual",
    "with_faults",
    "workflows",
]
