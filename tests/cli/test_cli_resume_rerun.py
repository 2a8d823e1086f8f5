"""``trioforge resume --force`` and ``--rerun``: what runs again, what is undone, what is shown.

Every test runs the real command in a fresh folder (the default store).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from cli_helpers import cli

WORKFLOW = textwrap.dedent(
    """\
    name: chain
    tasks:
      setup:
        run: echo "setup $TRIOFORGE_ATTEMPT" >> ran.txt
        compensate: echo "undo setup" >> ran.txt
      lint:
        needs: [setup]
        run: echo "lint $TRIOFORGE_ATTEMPT" >> ran.txt
        compensate: echo "undo lint" >> ran.txt
      build:
        needs: [setup]
        run: |
          sleep 0.5
          echo "build $TRIOFORGE_ATTEMPT" >> ran.txt
          sh ./build.sh
      publish:
        needs: [build, lint]
        run: echo "publish $TRIOFORGE_ATTEMPT" >> ran.txt
    """
)


def _lines(folder: Path) -> list[str]:
    path = folder / "ran.txt"
    return path.read_text().splitlines() if path.exists() else []


def _run(folder: Path, *, broken: bool, workflow: str = WORKFLOW) -> str:
    """Run the chain (``broken``: build fails, and the completed tasks are rolled back)."""
    (folder / "chain.yaml").write_text(workflow)
    (folder / "build.sh").write_text("exit 1\n" if broken else "exit 0\n")
    ran = cli("run", "chain.yaml", cwd=folder)
    assert (1 if broken else 0) == ran.returncode, ran.stderr
    match = re.search(r"^run id: (\S+)$", ran.stdout, re.MULTILINE)
    assert match is not None, ran.stdout
    return match.group(1)


#: The chain without compensations: a failed run keeps what completed.
PLAIN = "\n".join(line for line in WORKFLOW.splitlines() if "compensate:" not in line) + "\n"


def _show(run_id: str, folder: Path) -> list[dict[str, object]]:
    shown = cli("show", run_id, "--json", cwd=folder)
    assert shown.returncode == 0, shown.stderr
    tasks: list[dict[str, object]] = json.loads(shown.stdout)["tasks"]
    return tasks


def test_a_forced_resume_reruns_the_changed_task_and_what_depends_on_it(tmp_path: Path) -> None:
    """`resume --force` after editing a completed task runs it again, then its dependents."""
    run_id = _run(tmp_path, broken=True, workflow=PLAIN)
    before = _lines(tmp_path)
    assert sorted(before) == ["build 1", "lint 1", "setup 1"]
    text = PLAIN.replace('echo "lint $', 'echo "lint changed $')
    (tmp_path / "chain.yaml").write_text(text)
    (tmp_path / "build.sh").write_text("exit 0\n")
    forced = cli("resume", run_id, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    again = _lines(tmp_path)[len(before) :]
    assert {"lint changed 2", "build 2", "publish 1"} == set(again)
    assert "setup 2" not in again


def test_the_refusal_of_a_changed_file_names_the_option_not_the_parameter(
    tmp_path: Path,
) -> None:
    """A refused resume tells the command-line user about --force, not force=True."""
    run_id = _run(tmp_path, broken=True, workflow=PLAIN)
    (tmp_path / "chain.yaml").write_text(PLAIN.replace('"lint $', '"lint changed $'))
    refused = cli("resume", run_id, cwd=tmp_path)
    assert refused.returncode == 2
    (message,) = refused.stderr.splitlines()
    assert "--force" in message
    assert "force=True" not in message


def test_rerun_compensates_then_reruns_the_task_and_everything_downstream(
    tmp_path: Path,
) -> None:
    """`resume --rerun setup` undoes lint then setup (dependents first), then runs all again."""
    run_id = _run(tmp_path, broken=False)
    before = _lines(tmp_path)
    resumed = cli("resume", run_id, "--rerun", "setup", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = _lines(tmp_path)[len(before) :]
    assert again[:3] == ["undo lint", "undo setup", "setup 2"]
    assert {"lint 2", "build 2", "publish 2"} == set(again[3:])
    tasks = _show(run_id, tmp_path)
    assert {"completed"} == {task["state"] for task in tasks}
    assert {False} == {task["compensated"] for task in tasks}


def test_rerun_without_compensation_only_reruns(tmp_path: Path) -> None:
    """`--no-compensate` re-runs the named task and its dependents without undoing anything."""
    run_id = _run(tmp_path, broken=False)
    before = _lines(tmp_path)
    resumed = cli("resume", run_id, "--rerun", "lint", "--no-compensate", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = _lines(tmp_path)[len(before) :]
    assert again == ["lint 2", "publish 2"]


def test_rerun_works_on_a_completed_run(tmp_path: Path) -> None:
    """A completed run can be re-run from a task (it is not 'nothing to resume')."""
    run_id = _run(tmp_path, broken=False)
    before = _lines(tmp_path)
    again = cli("resume", run_id, "--rerun", "publish", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _lines(tmp_path)[len(before) :] == ["publish 2"]


def test_rerun_of_an_unknown_task_is_a_usage_error(tmp_path: Path) -> None:
    """`--rerun nope` exits 2 naming the task, and runs nothing."""
    run_id = _run(tmp_path, broken=False)
    before = _lines(tmp_path)
    refused = cli("resume", run_id, "--rerun", "nope", cwd=tmp_path)
    assert refused.returncode == 2
    assert "'nope'" in refused.stderr
    assert before == _lines(tmp_path)


def test_the_progress_view_counts_what_the_store_restores(tmp_path: Path) -> None:
    """The start line counts only tasks the resume really restores (none, on --rerun setup)."""
    run_id = _run(tmp_path, broken=False)
    resumed = cli("resume", run_id, "--rerun", "setup", "--no-compensate", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    start = next(line for line in resumed.stdout.splitlines() if f"run {run_id}:" in line)
    assert "done before the resume" not in start
    assert "wall time" in resumed.stdout
    summary = resumed.stdout[resumed.stdout.index("task ") :]
    assert sum(" ok " in line for line in summary.splitlines()) == 4


def test_show_lists_rolled_back_tasks_as_rolled_back(tmp_path: Path) -> None:
    """After a failed run's rollback, `show` says "rolled back" for the undone tasks, not done."""
    run_id = _run(tmp_path, broken=True)
    shown = cli("show", run_id, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line for line in shown.stdout.splitlines()[2:] if line.strip()}
    assert "rolled back" in rows["setup"]
    assert "rolled back" in rows["lint"]
    assert "2 rolled back" in shown.stdout
    assert "0 done" in shown.stdout
    compensated = {task["id"]: task["compensated"] for task in _show(run_id, tmp_path)}
    assert compensated == {"setup": True, "lint": True, "build": False, "publish": False}


def test_show_lists_a_task_cancelled_in_its_backoff_as_cancelled(tmp_path: Path) -> None:
    """A task whose last events are a failure, a retry and a cancellation shows as cancelled."""
    from trioforge._core._events import AuditEvent, EventType
    from trioforge._store._database import SQLiteDatabase
    from trioforge._store._records import RunRecord

    t0 = 1_700_000_000.0
    definition = {"name": "w", "tasks": [{"id": "flaky", "depends_on": []}]}
    db = SQLiteDatabase(tmp_path / "runs.db")
    try:
        db.create_run(RunRecord.start("w-1", definition, started_at=t0))
        kinds = [
            EventType.WORKFLOW_STARTED,
            EventType.TASK_STARTED,
            EventType.TASK_FAILED,
            EventType.TASK_RETRYING,
            EventType.TASK_CANCELLED,
            EventType.WORKFLOW_FAILED,
        ]
        events = [
            AuditEvent(kind, "w-1", float(i), t0 + i, None if i in (0, 5) else "flaky")
            for i, kind in enumerate(kinds)
        ]
        db.commit("w-1", events, {})
    finally:
        db.close()
    shown = cli("show", "w-1", "--store", str(tmp_path / "runs.db"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    (row,) = [line for line in shown.stdout.splitlines() if line.startswith("flaky")]
    assert "cancelled" in row
    assert "interrupted" not in shown.stdout


def test_a_task_whose_dependency_was_rolled_back_is_not_shown_as_done(tmp_path: Path) -> None:
    """Lint completed, but setup (its need) was rolled back: the resume runs lint, and says so.

    The progress view used to apply its own restore rule, without "its
    dependencies are restored too", and counted lint done before the resume
    and again when it ran.
    """
    workflow = WORKFLOW.replace('    compensate: echo "undo lint" >> ran.txt\n', "")
    assert "undo lint" not in workflow
    run_id = _run(tmp_path, broken=True, workflow=workflow)
    (tmp_path / "build.sh").write_text("exit 0\n")
    resumed = cli("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    start = next(line for line in resumed.stdout.splitlines() if f"run {run_id}:" in line)
    assert "done before the resume" not in start
    assert "lint 2" in _lines(tmp_path)
