# ruff: noqa: UP006, UP035, UP045
"""The probe: run in the user's own nox interpreter, it prints the selected sessions as JSON.

This file is never imported by trioforge: :mod:`trioforge._nox._probe` reads
its text and runs it with ``PYTHON -c TEXT NOX_ARGS...``, where PYTHON is the
interpreter that runs the user's nox (which may be older than trioforge's own
Python, so this file sticks to plain Python 3.8 and the standard library).

It loads the noxfile with nox's own machinery, exactly as ``nox`` does
(``load_nox_module``, ``merge_noxfile_options``, ``discover_manifest``,
``filter_manifest``: the same selection, the same ``requires=`` resolution, the
same errors), then describes every session of the resulting queue. Each nox
name it uses is looked up with ``getattr`` and checked (feature detection),
never assumed from one nox version: a name that is missing makes the probe
report ``{"error": "internal"}``, and trioforge falls back to the public
``nox --list --json`` route.

Stdout carries exactly one JSON object (schema :data:`SCHEMA`): file
descriptor 1 is moved aside before the noxfile runs, and whatever the noxfile
prints goes to stderr instead.
"""

import hashlib
import io
import json
import logging
import os
import sys
import traceback
from typing import Any, Dict, List, Optional

SCHEMA = 1


class _Collect(logging.Handler):
    """Keeps the messages nox logs at WARNING and above (its errors)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a bad log call must not hide the real error
            self.messages.append(str(record.msg))


def _where(exc: BaseException, noxfile: str) -> str:
    """``FILE:LINE:COL`` (or ``FILE:LINE``) of the noxfile line that raised ``exc``."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        col = f":{exc.offset}" if exc.offset else ""
        return f"{exc.filename}:{exc.lineno}{col}"
    real = os.path.realpath(noxfile)
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename) == real:
            line = frame.lineno
    return f"{noxfile}:{line}" if line else noxfile


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _selector(session: Any) -> str:
    """The ``-s`` value that selects exactly this session (what ``nox -j`` uses too)."""
    signatures = list(getattr(session, "signatures", None) or [])
    return max(signatures, key=len) if signatures else str(session.name)


def _sha256(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return None


def _nox_version(nox: Any) -> str:
    try:
        from importlib import metadata

        return metadata.version("nox")
    except Exception:
        return str(getattr(nox, "__version__", "unknown"))


def _last(messages: List[str], default: str) -> str:
    """The most specific of nox's error messages: the last one."""
    return messages[-1].strip() if messages else default


def _error(kind: str, message: str, noxfile: Optional[str] = None) -> Dict[str, Any]:
    return {"schema": SCHEMA, "error": kind, "message": message, "noxfile": noxfile}


def _need(module: Any, name: str) -> Any:
    value = getattr(module, name, None)
    if value is None:
        raise LookupError("nox has no {}.{}".format(getattr(module, "__name__", "?"), name))
    return value


def probe(argv: List[str]) -> Dict[str, Any]:
    """Load the noxfile as nox does with ``argv``; describe the selected sessions."""
    try:
        # nox is the user's, not a dependency: absent where trioforge is type-checked.
        import nox  # type: ignore[import-not-found,unused-ignore]
        import nox.sessions  # type: ignore[import-not-found,unused-ignore]
        from nox import _options, tasks  # type: ignore[import-not-found,unused-ignore]
    except Exception as exc:
        return _error("nox-missing", f"cannot import nox in {sys.executable}: {exc}")
    collect = _Collect()
    logging.getLogger("nox").addHandler(collect)
    version = _nox_version(nox)
    try:
        options = _need(_options, "options")
        load = _need(tasks, "load_nox_module")
        merge = _need(tasks, "merge_noxfile_options")
        discover = _need(tasks, "discover_manifest")
        select = _need(tasks, "filter_manifest")
    except LookupError as exc:
        return _error("internal", str(exc))
    stderr, sys.stderr = sys.stderr, io.StringIO()
    try:
        config = options.parse_args(argv)
    except SystemExit:
        text = sys.stderr.getvalue().strip().splitlines()
        line = text[-1] if text else "bad arguments"
        return _error("options", "nox: " + line.split(": error: ", 1)[-1])
    finally:
        sys.stderr = stderr
    features = {
        "no_dependencies": hasattr(config, "no_dependencies"),
        "report": hasattr(config, "report"),
    }
    if not all(features.values()):
        # Before the noxfile loads: a noxfile written for a newer nox may not load here.
        return _error("version", version)
    try:
        module = load(config)
    except Exception as exc:
        noxfile = str(getattr(config, "noxfile", "noxfile.py"))
        return _error("noxfile", f"{_where(exc, noxfile)}: {_describe(exc)}", noxfile)
    noxfile = str(getattr(config, "noxfile", "noxfile.py"))
    if isinstance(module, int):
        return _error("noxfile", _last(collect.messages, "cannot load it"), noxfile)
    try:
        merge(module, config)
        manifest = discover(module, config)
        manifest = select(manifest, config)
    except Exception as exc:
        # A noxfile's own code can raise here too (a session parametrized by
        # a function that fails); nox would show a traceback.
        return _error("noxfile", f"{_where(exc, noxfile)}: {_describe(exc)}", noxfile)
    if isinstance(manifest, int):
        if manifest == 0:  # "No sessions selected": nox lists them and exits 0
            return _error("selection", "no sessions selected", noxfile)
        return _error("selection", _last(collect.messages, "bad selection"), noxfile)
    try:
        sessions = _describe_sessions(nox, manifest, config)
    except Exception as exc:
        return _error("internal", "describing the sessions: " + _describe(exc), noxfile)
    return {
        "schema": SCHEMA,
        "nox_version": version,
        "python": sys.executable,
        "noxfile": os.path.abspath(noxfile),
        "noxfile_sha256": _sha256(noxfile),
        "features": features,
        "sessions": sessions,
    }


def _describe_sessions(nox: Any, manifest: Any, config: Any) -> List[Dict[str, Any]]:
    queue = getattr(manifest, "_queue", None)
    queue = list(queue) if isinstance(queue, list) else list(manifest)
    resolve = getattr(nox.sessions, "resolve_allow_parallel", None)
    queued = {id(session) for session in queue}
    described = []
    for session in queue:
        deps = [
            _selector(dep)
            for dep in _need(session, "get_direct_dependencies")()
            if id(dep) in queued  # under --no-dependencies prerequisites are not queued
        ]
        func = session.func
        if resolve is not None:
            allow_parallel: Optional[bool] = bool(resolve(config, func))
        else:
            allow_parallel = getattr(func, "allow_parallel", None)
        described.append(
            {
                "signature": _selector(session),
                "signatures": list(getattr(session, "signatures", None) or []),
                "name": str(session.name),
                "requires": list(dict.fromkeys(deps)),
                "envdir": os.path.abspath(str(_need(session, "envdir"))),
                "allow_parallel": allow_parallel,
                "tags": list(getattr(session, "tags", None) or []),
                "python": func.python if isinstance(func.python, (str, type(None))) else None,
                "venv_backend": getattr(func, "venv_backend", None),
            }
        )
    return described


def main() -> None:
    """Run the probe on ``sys.argv[1:]``; the JSON goes to the real stdout."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the noxfile's own prints go to stderr
    try:
        result = probe(sys.argv[1:])
    except Exception as exc:  # the host must get JSON for any probe failure
        result = _error("internal", _describe(exc))
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
