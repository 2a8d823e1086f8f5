"""The ``--help`` texts of the ``trioforge`` commands: a description and examples each."""

__all__ = [
    "DESCRIPTION",
    "EXAMPLES",
    "GRAPH_EXAMPLES",
    "PLAN_EXAMPLES",
    "PRUNE_EXAMPLES",
    "REPORT_EXAMPLES",
    "RUNS_EXAMPLES",
    "RUN_EXAMPLES",
    "VALIDATE_EXAMPLES",
]

DESCRIPTION = """\
Run workflows of shell commands described in YAML: tasks run in parallel as
far as their `needs` allow, with timeouts, retries, rollback and a live view.
"""

EXAMPLES = """\
examples:
  trioforge validate ci.yaml               report every problem in the file
  trioforge plan ci.yaml                   show what would run in parallel
  trioforge run ci.yaml                    run it, with a live view
  trioforge run ci.yaml lint               just lint and what it needs
  trioforge run ci.yaml --only test        just test; what it needs comes from the store
  trioforge run ci.yaml --input python=3.12  a value for ${{ inputs.python }}
  trioforge run ci.yaml --output stream    every task's output, live
  trioforge run ci.yaml --json > run.jsonl audit events as JSON Lines
  trioforge run ci.yaml --dask ADDRESS     the commands on a Dask cluster
  trioforge resume RUN_ID                  finish a failed or killed run
  trioforge runs                           recent runs
  trioforge show RUN_ID                    every task of a run, even while it runs
  trioforge report RUN_ID -o run.html      timeline, critical path and DAG
  trioforge graph ci.yaml --format mermaid the DAG, for a README
  trioforge nox -s lint tests              nox sessions in parallel, durable
  trioforge prune --keep 20                remove all but the newest 20 runs

Runs are recorded in .trioforge/runs.db beside the workflow file (--store
PATH or TRIOFORGE_STORE to put it elsewhere); runs, show, report and resume
look in .trioforge/runs.db in the current folder unless given --store,
TRIOFORGE_STORE or --file FILE.

exit status: 0 success, 1 a task failed, 2 invalid file or usage (or a
refused resume), 124 workflow timeout, 130 interrupted (Ctrl-C), 143
SIGTERM, 129 SIGHUP (128 + the signal's number).
"""

RUN_EXAMPLES = """\
examples:
  trioforge run ci.yaml
  trioforge run ci.yaml --max-parallel 2 --schedule layers
  trioforge run deploy.yaml --timeout 30m --audit-log audit/deploy.jsonl
  trioforge run ci.yaml --keep-going --quiet
  trioforge run ci.yaml lint test          lint, test and what they need
  trioforge run ci.yaml --only test        test alone (needs a completed run)
  trioforge run ci.yaml --output grouped --tail 50
  trioforge run release.yaml --input version=1.2.3
  trioforge run ci.yaml --dask tcp://scheduler:8786

Ctrl-C once stops running tasks (SIGTERM, then SIGKILL after their grace
period) and runs the compensations of completed tasks; twice kills
everything at once. Task logs go to .trioforge/logs/RUN_ID/TASK.log beside
the workflow file.

The run is recorded in .trioforge/runs.db beside the workflow file (or
--store PATH, or $TRIOFORGE_STORE). Its id is printed first; if it does not
succeed, the command that resumes it is printed last.

Task output: --output stream prints every line as it comes, prefixed with
the task id; grouped prints each task's output as one block when it ends
(the default when stdout is not a terminal); quiet prints none (the default
on a terminal, under the live view). When the run ends, old runs are pruned
as the file's `retention:` says (default: keep the newest 100).

exit status: 0 success, 1 a task failed, 2 invalid file or usage,
124 workflow timeout, 130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
"""

RUNS_EXAMPLES = """\
examples:
  trioforge runs
  trioforge runs --limit 5 --json
  trioforge runs --file examples/ci.yaml
"""

REPORT_EXAMPLES = """\
examples:
  trioforge report ci-3f2a9c1b7d4e -o report.html
  trioforge report ci-3f2a9c1b7d4e -o - > report.html
"""

VALIDATE_EXAMPLES = """\
examples:
  trioforge validate ci.yaml
  trioforge validate workflows/*.yaml

Every problem is printed as FILE:LINE:COL: message; exit status 2 if any.
"""

PLAN_EXAMPLES = """\
examples:
  trioforge plan ci.yaml
  trioforge plan ci.yaml --max-parallel 1
"""

PRUNE_EXAMPLES = """\
examples:
  trioforge prune                          keep the newest 100 runs
  trioforge prune --keep 20 --dry-run      say what would go
  trioforge prune --older-than 30d         remove runs started over 30 days ago

A run that is being driven now is never removed. `trioforge run` prunes the
runs of its workflow when it ends, as the file's `retention:` (or
[tool.trioforge] retention in pyproject.toml) says; default keep 100.
"""

GRAPH_EXAMPLES = """\
examples:
  trioforge graph ci.yaml | dot -Tsvg > ci.svg
  trioforge graph ci.yaml --format mermaid
"""
