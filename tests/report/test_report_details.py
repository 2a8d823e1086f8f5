"""A report you can share: errors, log excerpts, outputs and log links of failed tasks (14.4)."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

from cli_helpers import cli

FLAKY = """\
name: share
tasks:
  flaky:
    retries: 1
    run: |
      echo "first line of flaky"
      echo "retry=$TRIOFORGE_ATTEMPT" >> "$TRIOFORGE_OUTPUT"
      test "$TRIOFORGE_ATTEMPT" -ge 2
  broken:
    needs: [flaky]
    run: |
      echo "start of broken"
      for i in $(seq 1 40); do echo "noise $i"; done
      echo "<script>alert(1)</script> & done"
      echo "half=written" >> "$TRIOFORGE_OUTPUT"
      exit 7
"""


def _report(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    (tmp_path / "w.yaml").write_text(FLAKY)
    run = cli("run", "w.yaml", "--output", "quiet", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    (run_id,) = re.findall(r"trioforge resume (\S+)", run.stderr)
    out = tmp_path / "shared" / "report.html"
    result = cli("report", run_id, "-o", "shared/report.html", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return out.read_text(), out


def test_failed_and_retried_tasks_show_error_tail_outputs_and_a_relative_log_link(
    tmp_path: Path,
) -> None:
    """Each failed or retried task has its error, escaped log tail, outputs and a log link."""
    html, out = _report(tmp_path)
    root = ET.fromstring(html)  # still well-formed XML
    assert root.find(".//{*}script") is None
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; done" in html
    assert "task &#x27;broken&#x27; exited with status 7" in html
    assert "half" in html
    assert "written" in html
    assert "retry" in html
    links = [a.get("href") for a in root.findall(".//{*}a") if a.get("href")]
    assert len(links) == 2
    for link in links:
        assert link is not None
        assert link.startswith("../.trioforge/logs/")
        assert (out.parent / link).is_file()
    assert "start of broken" not in html  # only the last lines, without --logs


def test_report_logs_embeds_whole_logs_without_javascript(tmp_path: Path) -> None:
    """`report --logs` puts the whole log in a <details> element; no script anywhere."""
    html, _out = _report(tmp_path, "--logs")
    root = ET.fromstring(html)
    assert root.find(".//{*}script") is None
    assert "start of broken" in html
    assert len(root.findall(".//{*}details")) == 2


def test_report_of_a_run_with_an_unknown_event_type_says_so(tmp_path: Path) -> None:
    """An event type this version does not know gives a clear error and exit 2, not a crash."""
    (tmp_path / "w.yaml").write_text("tasks:\n  t: {run: 'true'}\n")
    run = cli("run", "w.yaml", "--output", "quiet", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    (run_id,) = re.findall(r"run id: (\S+)", run.stderr)
    with sqlite3.connect(tmp_path / ".trioforge" / "runs.db") as conn:
        conn.execute(
            "INSERT INTO log (run_id, events, times) VALUES (?, ?, ?)",
            (
                run_id,
                json.dumps(
                    [[], [-1], [["WorkflowFromTheFuture", run_id, None, None, None, None, None]]]
                ),
                bytes(24),
            ),
        )
    result = cli("report", run_id, "-o", "r.html", cwd=tmp_path)
    assert result.returncode == 2
    assert "internal error" not in result.stderr
    assert "has a type this version of trioforge does not know" in result.stderr
    assert "WorkflowFromTheFuture" in result.stderr
