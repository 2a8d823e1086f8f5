"""`nox`, `nox -j` and `trioforge nox` on the same nox sessions: the wall time of each.

    python benchmarks/nox_bench.py                 # this repository's lint typecheck docs
    python benchmarks/nox_bench.py -s lint docs    # other sessions of this noxfile
    python benchmarks/nox_bench.py --quick         # a small diamond noxfile only (~1 min)

Three ways to run the same selection, each as the user would type it:

* ``nox -s S...``: one session after another;
* ``nox -j auto --allow-parallel -s S...``: nox's own parallel mode (2026.8.10+),
  sessions in child processes as their requirements finish;
* ``trioforge nox -s S...``: the sessions as a trioforge run (its store in a
  scratch folder).

The repository's sessions (the default) build virtualenvs and run real tools,
so they are run once each, after one warm-up ``nox`` run that creates or
refreshes their virtualenvs (``reuse_existing_virtualenvs`` is on in the
noxfile): each runner then finds them warm. ``--quick`` instead times a
noxfile written to a scratch folder: ``prep`` is required by ``left`` and
``right``, which ``join`` requires, each sleeping 1 s in a ``venv_backend="none"``
session (issue 13's "done when"), ``--repeats`` times per runner, runners
taking turns, median reported. Every runner uses the same interpreter's nox
(``sys.executable -m nox``; that interpreter's folder first on ``PATH`` for
trioforge's probe). A failed run is reported with its exit status, not hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SESSIONS = ["lint", "typecheck", "docs"]

DIAMOND = '''"""The diamond: prep <- left, right <- join, 1 s each."""

import time

import nox


@nox.session(venv_backend="none")
def prep(session):
    time.sleep(1.0)


@nox.session(venv_backend="none", requires=["prep"])
def left(session):
    time.sleep(1.0)


@nox.session(venv_backend="none", requires=["prep"])
def right(session):
    time.sleep(1.0)


@nox.session(venv_backend="none", requires=["left", "right"])
def join(session):
    time.sleep(1.0)
'''


def runners(sessions: list[str], store: Path) -> dict[str, list[str]]:
    """The three command lines for ``sessions``."""
    nox = [sys.executable, "-m", "nox"]
    return {
        "nox": [*nox, "-s", *sessions],
        "nox -j": [*nox, "-j", "auto", "--allow-parallel", "-s", *sessions],
        "trioforge nox": [
            sys.executable,
            "-m",
            "trioforge",
            "nox",
            "-s",
            *sessions,
            "--store",
            str(store),
            "--log-dir",
            str(store.parent / "logs"),
        ],
    }


def environment() -> dict[str, str]:
    """This interpreter's folder first on PATH, so every runner uses the same nox."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "NO_COLOR": "1"}


def timed(argv: list[str], cwd: Path, log: Path) -> tuple[float, int]:
    """Run ``argv`` in ``cwd`` (output appended to ``log``); its wall time and exit status."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        started = time.perf_counter()
        done = subprocess.run(
            argv, cwd=cwd, env=environment(), stdout=out, stderr=subprocess.STDOUT, check=False
        )
        return time.perf_counter() - started, done.returncode


def measure(
    sessions: list[str], cwd: Path, scratch: Path, repeats: int
) -> dict[str, list[tuple[float, int]]]:
    """Each runner ``repeats`` times, taking turns; the (seconds, exit status) of every run."""
    commands = runners(sessions, scratch / "runs.db")
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            samples[name].append(timed(argv, cwd, scratch / "output.log"))
            print(f"  {name:<14} {samples[name][-1][0]:7.2f} s (exit {samples[name][-1][1]})")
    return samples


def table(title: str, samples: dict[str, list[tuple[float, int]]]) -> str:
    """A Markdown table: runner, every wall time, the median, the exit statuses."""
    lines = [
        f"### {title}",
        "",
        "| runner | wall times (s) | median (s) | exit |",
        "|---|---|---|---|",
    ]
    for name, runs in samples.items():
        walls = ", ".join(f"{wall:.2f}" for wall, _ in runs)
        codes = ",".join(str(code) for _, code in runs)
        median = statistics.median(wall for wall, _ in runs)
        lines.append(f"| `{name}` | {walls} | {median:.2f} | {codes} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-s", "--sessions", nargs="+", default=DEFAULT_SESSIONS, help="this noxfile's sessions"
    )
    parser.add_argument("--quick", action="store_true", help="the diamond noxfile only")
    parser.add_argument("--repeats", type=int, default=None, help="runs per runner")
    parser.add_argument("--json", metavar="FILE", help="write every sample to FILE")
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"bytecode cache {'off' if sys.flags.dont_write_bytecode else 'on'}"
    )
    results: dict[str, dict[str, list[tuple[float, int]]]] = {}
    with tempfile.TemporaryDirectory(prefix="nox-bench-") as tmp:
        scratch = Path(tmp)
        diamond = scratch / "diamond"
        diamond.mkdir()
        (diamond / "noxfile.py").write_text(DIAMOND, encoding="utf-8")
        repeats = args.repeats or 3
        print(f"diamond (-s join), {repeats} runs per runner:")
        results["diamond"] = measure(["join"], diamond, scratch, repeats)
        if not args.quick:
            print(f"warm-up: nox -s {' '.join(args.sessions)} (creates the virtualenvs)")
            wall, code = timed(
                [sys.executable, "-m", "nox", "-s", *args.sessions], ROOT, scratch / "output.log"
            )
            print(f"  warm-up {wall:.2f} s (exit {code})")
            print(f"this repository (-s {' '.join(args.sessions)}), warm virtualenvs:")
            results["repository"] = measure(args.sessions, ROOT, scratch, args.repeats or 1)
        failed = any(code for runs in results.values() for r in runs.values() for _, code in r)
        if failed:
            print((scratch / "output.log").read_text(encoding="utf-8", errors="replace")[-4000:])
    print()
    print(table("diamond noxfile, `-s join`", results["diamond"]))
    if "repository" in results:
        print(table(f"this repository, `-s {' '.join(args.sessions)}`", results["repository"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
