"""The YAML front end: a workflow file in, a :class:`Workflow` out.

What it holds: the file's bytes, read without blocking (``_source``), YAML
nodes with positions (``_nodes``), "did you mean" hints (``_hints``), the
schema checks (``_schema``, ``_reads``), ``inputs:`` (``_inputs``), the
``dask:`` settings (``_cluster``), task specs (``_tasks``), the graph checks
(``_graph``) and the loader (``_loader``) that returns a
:class:`WorkflowFile`: the workflow plus the file's run settings as plain
data (``executor_options``) that the caller hands to the executor. Every
problem names FILE:LINE:COL.

May import: ``_core``, ``_shell`` and the combinators (``FallbackTask``);
never the executor or the command line. Imported by: the command line and
the public top level.
"""

from ._cluster import DaskSettings as DaskSettings
from ._file import WorkflowFile as WorkflowFile
from ._file import WorkflowFileError as WorkflowFileError
from ._loader import load_workflow as load_workflow
from ._loader import load_workflow_file as load_workflow_file
from ._schema import Problem as Problem

__all__ = [
    "DaskSettings",
    "Problem",
    "WorkflowFile",
    "WorkflowFileError",
    "load_workflow",
    "load_workflow_file",
]
