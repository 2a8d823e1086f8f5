"""The Dask integration behind :mod:`trioforge.dask` (the optional ``trioforge[dask]`` extra).

What lives here: awaiting a ``distributed`` future from trio and cancelling
it (``_remote``), the workflow task whose body runs on a worker (``_task``),
and shell commands run on a worker that the orchestrator can stop
(``_shell``). It imports ``distributed`` and trioforge's public API only;
only :mod:`trioforge.dask` imports it.
"""
