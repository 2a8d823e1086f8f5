"""The Dask integration behind :mod:`trioforge.dask` (the optional ``trioforge[dask]`` extra).

What lives here: awaiting a ``distributed`` future from trio and cancelling
it (``_remote``), the workflow task whose body runs on a worker (``_task``),
and shell commands run on a worker that the orchestrator can stop
(``_shell``). It imports ``distributed`` and trioforge's public API only;
only :mod:`trioforge.dask` imports it.

One addition: ``_shell_task`` turns a workflow file's shell tasks into
tasks whose commands run through ``_shell`` (``trioforge run --dask``). It
builds on the shell room and the workflow file's task classes (``_shell``,
``_workflow_file._pooled``, ``_fallback``), and only the command line
imports it, lazily, so that the command line works without ``distributed``.
"""
