"""The top level loads its rooms on first use, and still looks eager from outside."""

from __future__ import annotations

import subprocess
import sys

import trioforge


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_import_trioforge_loads_no_room() -> None:
    """`import trioforge` imports neither trio nor any private room."""
    code = (
        "import sys, trioforge; "
        "print(sorted(m for m in sys.modules if m == 'trio' or m.startswith('trioforge._')))"
    )
    assert _run(code) == "[]"


def test_the_nox_door_loads_only_the_light_interpreter_modules() -> None:
    """Starting a probe (and a warm nox) needs _interpreter and _spares only: no trio, no core."""
    code = (
        "import sys; from trioforge._nox import start_probe; "
        "print(sorted(m for m in sys.modules if m == 'trio' or m.startswith('trioforge.')))"
    )
    assert _run(code) == (
        "['trioforge._nox', 'trioforge._nox._interpreter', 'trioforge._nox._spares']"
    )


def test_every_public_name_resolves_to_its_room_object() -> None:
    """Each name of __all__ is the object its room defines, and dir() lists it."""
    from trioforge import _core, _executor, _report, _shell, _store, _workflow_file

    rooms = (_core, _executor, _report, _shell, _store, _workflow_file)
    for name in trioforge.__all__:
        homes = [room for room in rooms if name in vars(room)]
        assert [getattr(trioforge, name)] == [vars(homes[0])[name]], name
    assert set(trioforge.__all__) <= set(dir(trioforge))


def test_star_import_binds_every_public_name() -> None:
    """`from trioforge import *` binds exactly the names of __all__."""
    namespace: dict[str, object] = {}
    exec("from trioforge import *", namespace)
    assert set(trioforge.__all__) == set(namespace) - {"__builtins__"}
