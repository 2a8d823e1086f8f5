"""Files that are not regular files (FIFOs, devices, sockets) never freeze the command (11.6)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from cli_helpers import cli


def test_a_task_that_replaces_its_output_file_with_a_fifo_fails_promptly(tmp_path: Path) -> None:
    """`mkfifo "$TRIOFORGE_OUTPUT"` fails the task with a message naming the FIFO; no freeze."""
    (tmp_path / "w.yaml").write_text(
        "tasks:\n"
        '  evil: {run: \'rm "$TRIOFORGE_OUTPUT"; mkfifo "$TRIOFORGE_OUTPUT"\', retries: 1}\n'
        "  after: {run: 'true', needs: [evil]}\n"
    )
    started = time.monotonic()
    result = cli("run", "w.yaml", "--timeout", "20s", cwd=tmp_path, timeout=30)
    assert time.monotonic() - started < 15
    assert result.returncode == 1, result.stderr
    assert "FIFO (named pipe), not a regular file" in result.stdout + result.stderr


def test_validate_a_fifo_returns_promptly_with_exit_2(tmp_path: Path) -> None:
    """`trioforge validate some-fifo` says what the file is and exits 2 at once."""
    os.mkfifo(tmp_path / "some-fifo")
    result = cli("validate", "some-fifo", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert "some-fifo:1:1: cannot read the file:" in result.stderr
    assert "it is a FIFO (named pipe), not a regular file" in result.stderr


def test_run_of_a_fifo_returns_promptly_with_exit_2(tmp_path: Path) -> None:
    """`trioforge run some-fifo` is refused like `validate`."""
    os.mkfifo(tmp_path / "some-fifo")
    result = cli("run", "some-fifo", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert "FIFO (named pipe), not a regular file" in result.stderr


def test_a_fifo_as_the_store_or_audit_log_is_refused(tmp_path: Path) -> None:
    """A FIFO given as --store or --audit-log is refused with exit 2 before anything runs."""
    (tmp_path / "w.yaml").write_text("tasks:\n  a: {run: 'touch ran'}\n")
    os.mkfifo(tmp_path / "pipe")
    store = cli("run", "w.yaml", "--store", "pipe", cwd=tmp_path, timeout=20)
    assert store.returncode == 2
    assert "pipe is a FIFO (named pipe), not a regular file" in store.stderr
    runs = cli("runs", "--store", "pipe", cwd=tmp_path, timeout=20)
    assert runs.returncode == 2
    assert "FIFO" in runs.stderr
    audit = cli("run", "w.yaml", "--audit-log", "pipe", "--no-store", cwd=tmp_path, timeout=20)
    assert audit.returncode == 2
    assert "it is a FIFO (named pipe) that nobody reads" in audit.stderr
    assert not (tmp_path / "ran").exists()


def test_open_regular_refuses_fifos_devices_sockets_and_folders(tmp_path: Path) -> None:
    """Each kind of non-regular file is refused by name, without blocking."""
    from trioforge._shell._files import NotRegularFileError, open_regular, read_outputs

    os.mkfifo(tmp_path / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        cases = {
            tmp_path / "fifo": "a FIFO (named pipe)",
            Path("/dev/null"): "a character device",
            tmp_path / "sock": "a socket",
            tmp_path: "a folder",
        }
        for path, kind in cases.items():
            for flags in (os.O_RDONLY, os.O_WRONLY):
                if kind == "a folder" and flags == os.O_WRONLY:
                    continue
                with pytest.raises(NotRegularFileError) as caught:
                    open_regular(path, flags)
                assert f"{path} is {kind}, not a regular file" == caught.value.strerror
    with pytest.raises(ValueError, match="FIFO"):
        read_outputs(tmp_path / "fifo")


def test_an_output_too_long_for_an_argument_is_refused_where_it_is_produced(
    tmp_path: Path,
) -> None:
    """A 200 KiB output fails its producer, naming the output, its size and who would use it."""
    (tmp_path / "w.yaml").write_text(
        "tasks:\n"
        "  produce:\n"
        '    run: printf "big=%0204800d\\n" 0 >> "$TRIOFORGE_OUTPUT"\n'
        "  consume:\n"
        "    needs: [produce]\n"
        '    env: {BIG: "${{ tasks.produce.outputs.big }}"}\n'
        "    run: 'true'\n"
    )
    result = cli("run", "w.yaml", "--output", "quiet", cwd=tmp_path)
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "output 'big' is 204,800 bytes" in text
    assert "task 'consume', which uses it, could not be started" in text
    assert "Argument list too long" not in text
    assert "── produce failed" in result.stdout
