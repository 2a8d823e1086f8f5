"""Every check trioforge runs; CI calls this file and nothing else."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["lint", "typecheck", "tests", "property", "lowest", "docs", "bench"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install_package(session: nox.Session) -> None:
    """Install trioforge as a built wheel, so tests run against the installed package."""
    session.install(".")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests, against the installed package."""
    install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "tests"))
    session.run("pytest", "tests", *session.posargs)


@nox.session
def property(session: nox.Session) -> None:
    """Hypothesis property tests (HYPOTHESIS_PROFILE=dev|ci|nightly; ci by default)."""
    install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "tests"))
    env = {"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci")}
    session.run("pytest", "property_tests", *session.posargs, env=env)


@nox.session
def lowest(session: nox.Session) -> None:
    """The tests against the lowest versions of the dependencies that pyproject.toml declares."""
    floors = [
        re.sub(r">=([^,;\s]+).*", r"==\1", dep) for dep in PYPROJECT["project"]["dependencies"]
    ]
    constraints = os.path.join(session.create_tmp(), "floors.txt")
    with open(constraints, "w", encoding="utf-8") as file:
        file.write("\n".join(floors) + "\n")
    session.install("-c", constraints, *floors)
    session.install("--no-deps", ".")
    # nox itself needs a newer attrs, and Dask is an extra: tests/nox and tests/dask run in
    # `tests` only.
    tools = [
        t for t in nox.project.dependency_groups(PYPROJECT, "tests") if not t.startswith("nox")
    ]
    session.install("-c", constraints, *tools)
    # Fail if installing the test tools moved any dependency off its floor.
    check = "; ".join(
        [
            "import importlib.metadata as m, sys",
            "from packaging.version import Version",
            f"pins = [f.split('==') for f in {floors!r}]",
            "now = {n: m.version(n) for n, _ in pins}",
            "wrong = [(n, v, now[n]) for n, v in pins if Version(now[n]) != Version(v)]",
            "sys.exit(f'not at the floor: {wrong}' if wrong else 0)",
        ]
    )
    session.run("python", "-c", check)
    session.run(
        "pytest",
        "tests",
        "property_tests",
        "-q",
        "--ignore=tests/nox",
        "--ignore=tests/dask",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and flake8-async's trio rules on the package."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("flake8", "--select", "ASYNC", "--startable-in-context-manager=watch", "trioforge")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, its tests (typing_check.py included) and property tests."""
    install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "typecheck"))
    # Each conftest.py alone: mypy cannot hold two modules named "conftest" at once.
    conftests = sorted(str(path) for path in Path().glob("*tests/**/conftest.py"))
    session.run(
        "mypy", "--strict", "trioforge", "tests", "property_tests", "--exclude", r"conftest\.py$"
    )
    for conftest in conftests:
        session.run("mypy", "--strict", conftest)


@nox.session
def docs(session: nox.Session) -> None:
    """Sphinx docs; warnings (and broken references) are errors."""
    install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the alternatives (quick mode unless --full is passed)."""
    install_package(session)
    session.install("anyio", "dask", "distributed", "nox")
    # Quick mode (CI) writes its tables to a scratch folder so that the committed
    # full results in benchmarks/results.md stay as measured.
    args = session.posargs or ["--quick", "--output-dir", session.create_tmp()]
    session.run("python", "benchmarks/run.py", *args)
    quick = ["--quick"] if "--full" not in args else []
    session.run("python", "benchmarks/dask_bench.py", *quick)
    # nox, nox -j and trioforge nox: the diamond noxfile (quick), plus this
    # repository's lint, typecheck and docs sessions with warm virtualenvs (--full).
    session.run("python", "benchmarks/nox_bench.py", *quick)
