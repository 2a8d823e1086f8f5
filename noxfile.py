"""Every check trioforge runs; CI calls this file and nothing else."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["lint", "typecheck", "tests", "property", "docs", "bench"]

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
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, its tests (typing_check.py included) and property tests."""
    install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", "--strict", "trioforge", "tests", "property_tests")


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
    session.install("anyio", "dask")
    # Quick mode (CI) writes its tables to a scratch folder so that the committed
    # full results in benchmarks/results.md stay as measured.
    args = session.posargs or ["--quick", "--output-dir", session.create_tmp()]
    session.run("python", "benchmarks/run.py", *args)
