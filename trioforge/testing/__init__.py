"""Helpers for property-testing workflows: hypothesis strategies and virtual-time runs.

* :func:`dag_specs` draws a random DAG with task durations and failures as a
  plain value (:class:`DagSpec`);
* :func:`workflows` draws a ready-to-run :class:`SimulatedWorkflow` whose
  tasks sleep for their drawn duration, fail when drawn to, and record what
  happened in a :class:`Trace`;
* :func:`run_virtual` runs a workflow under trio's ``MockClock`` with
  ``autojump_threshold=0``, so sleeps take no real time and every time is exact.

Example::

    from hypothesis import given
    from trioforge.testing import run_virtual, workflows

    @given(workflows(max_tasks=30))
    def test_dependencies_finish_first(wf):
        run_virtual(wf, mode="dataflow")
        for task_id, deps in wf.spec.dependencies.items():
            for dep in deps:
                assert wf.trace.ends[dep] <= wf.trace.starts[task_id][0]

Needs the ``hypothesis`` package (``pip install trioforge[testing]``).
"""

from ._run import VirtualRun as VirtualRun
from ._run import run_virtual as run_virtual
from ._strategies import DagSpec as DagSpec
from ._strategies import SimulatedFailure as SimulatedFailure
from ._strategies import SimulatedTask as SimulatedTask
from ._strategies import SimulatedWorkflow as SimulatedWorkflow
from ._strategies import TaskSpec as TaskSpec
from ._strategies import Trace as Trace
from ._strategies import dag_specs as dag_specs
from ._strategies import workflows as workflows

__all__ = [
    "DagSpec",
    "SimulatedFailure",
    "SimulatedTask",
    "SimulatedWorkflow",
    "TaskSpec",
    "Trace",
    "VirtualRun",
    "dag_specs",
    "run_virtual",
    "workflows",
]
