"""Combinators: tasks built from other tasks.

Each combinator is a :class:`~trioforge.WorkflowTask`, so it can be added to a
workflow or nested in another combinator; see the combinators guide for what they
share. This module is the public face; the implementations live in
``trioforge._combinators`` and ``trioforge._fallback``.
"""

from ._combinators import ConditionalTask as ConditionalTask
from ._combinators import ParallelTasks as ParallelTasks
from ._combinators import RaceTasks as RaceTasks
from ._combinators import SequentialTasks as SequentialTasks
from ._combinators import TryCatchTask as TryCatchTask
from ._fallback import FallbackTask as FallbackTask

__all__ = [
    "ConditionalTask",
    "FallbackTask",
    "ParallelTasks",
    "RaceTasks",
    "SequentialTasks",
    "TryCatchTask",
]
