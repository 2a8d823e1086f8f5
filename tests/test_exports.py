"""The public API: exactly the documented names, each with a docstring."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from pathlib import Path

import pytest

import trioforge as tf
import trioforge.combinators
import trioforge.store
import trioforge.testing

DOCS = Path(__file__).resolve().parent.parent / "docs"
_DIRECTIVE = re.compile(
    r"^\.\. (?:(module|currentmodule|automodule)|auto(?:class|function|exception|data))::\s*(\S+)",
    re.M,
)
PUBLIC_MODULES = [tf, trioforge.store, trioforge.combinators, trioforge.testing]

# The names the issues pin; a change here is an API change.
PINNED = {
    "trioforge": {
        "Task",
        "TaskContext",
        "TaskFailedError",
        "TaskTimeoutError",
        "Workflow",
        "WorkflowCancelledError",
        "WorkflowError",
        "WorkflowExecutor",
        "WorkflowTask",
        "WorkflowTimeoutError",
        "load_workflow",
    },
    "trioforge.store": {
        "RunLockedError",
        "RunNotFoundError",
        "RunRecord",
        "RunStore",
        "RunStoreError",
        "SQLiteRunStore",
        "StoredRun",
        "TaskRecord",
    },
    "trioforge.testing": {"run_virtual", "workflows"},
}


def documented_names() -> dict[str, set[str]]:
    """Each module's names as the API docs list them (``auto*`` directives under its module)."""
    names: dict[str, set[str]] = {}
    for rst in sorted(DOCS.glob("*.rst")):
        module = None
        for match in _DIRECTIVE.finditer(rst.read_text(encoding="utf-8")):
            kind, target = match.groups()
            if kind in ("module", "currentmodule"):
                module = target
            elif kind == "automodule":
                names.setdefault(target, set()).update(sys.modules[target].__all__)
            else:
                assert module is not None, f"{rst.name}: {target} documented before a module"
                names.setdefault(module, set()).add(target.rpartition(".")[2])
    return names


def test_each_public_module_exports_exactly_what_the_docs_list() -> None:
    """``__all__`` of every public module equals the names its API docs document."""
    documented = documented_names()
    for module in PUBLIC_MODULES:
        assert set(module.__all__) == documented.get(module.__name__, set()), module.__name__


def test_pinned_names_are_exported() -> None:
    """Every name an issue pins is public where it was pinned, and importable."""
    for module in PUBLIC_MODULES:
        assert PINNED.get(module.__name__, set()) <= set(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_plumbing_is_not_public() -> None:
    """Lease and recorder plumbing are private: not in any public module's ``__all__``."""
    plumbing = {
        "RunRecorder",
        "hold_lease",
        "keep_lease",
        "lease_owner",
        "definition_hash",
        "definition_snapshot",
    }
    for module in PUBLIC_MODULES:
        assert plumbing.isdisjoint(module.__all__), module.__name__
    assert {"Lease", "SQLiteRunStore", "default_store_path"}.isdisjoint(tf.__all__)


def test_moved_names_still_import_with_a_warning() -> None:
    """A store name the old docs showed at the top level still imports, with a warning."""
    with pytest.warns(DeprecationWarning, match=r"trioforge\.store\.SQLiteRunStore"):
        moved = tf.SQLiteRunStore
    assert moved is trioforge.store.SQLiteRunStore
    with pytest.warns(DeprecationWarning, match="no longer public"):
        assert callable(tf.hold_lease)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = tf.no_such_name


def test_all_is_sorted_and_unique() -> None:
    """__all__ lists each name once, sorted, in every public module."""
    for module in PUBLIC_MODULES:
        assert list(module.__all__) == sorted(set(module.__all__)), module.__name__


def test_errors_share_one_root() -> None:
    """Every exported error derives from WorkflowError."""
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Exception) and name.endswith("Error"):
                assert issubclass(obj, tf.WorkflowError), name


def _public_members(obj: object) -> list[tuple[str, object]]:
    members: list[tuple[str, object]] = []
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or isinstance(member, property):
            members.append((name, member))
    return members


def test_every_public_item_has_a_docstring() -> None:
    """Each exported class, function, method and property is documented."""
    modules = PUBLIC_MODULES
    missing = []
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if typing.get_origin(obj) is not None:
                continue  # a type alias: documented in the API docs' text
            if not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
            if isinstance(obj, type):
                for member_name, member in _public_members(obj):
                    if not inspect.getdoc(member):
                        missing.append(f"{module.__name__}.{name}.{member_name}")
    assert missing == []


def test_event_type_names() -> None:
    """Every event name the issue pins exists with exactly that spelling."""
    pinned = {
        "WorkflowStarted",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "WorkflowTaskFailed",
        "WorkflowTaskTimedOut",
        "WorkflowTaskCancelled",
        "WorkflowTaskParallelStarted",
        "WorkflowTaskParallelCompleted",
        "WorkflowTaskCompensated",
        "WorkflowTaskCompensationFailed",
        "WorkflowCancelled",
        "WorkflowTimedOut",
        "WorkflowCompleted",
        "WorkflowFailed",
        "WorkflowTaskSkipped",
    }
    assert pinned <= {str(t) for t in tf.EventType}
