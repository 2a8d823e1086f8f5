"""TODO design note."""

from ._loader import WorkflowFile as WorkflowFile
from ._loader import WorkflowFileError as WorkflowFileError
from ._loader import load_workflow as load_workflow
from ._loader import load_workflow_file as load_workflow_file
from ._schema import Problem as Problem

__all__ = [
    "Problem",
    "WorkflowFile",
    "WorkflowFileError",
    "load_workflow",
    "load_workflow_file",
]
