"""The session graph as data: :class:`NoxSession`, :class:`NoxGraph`, and :class:`NoxError`.

What the probe (or the public fallback) learned about a noxfile, kept as
frozen values: the graph is made once per run, recorded with it (nox version,
noxfile hash) and turned into a workflow by :func:`build_workflow`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import trioforge

__all__ = [
    "GRAPH_SCHEMA",
    "MIN_NOX_VERSION",
    "NoxError",
    "NoxGraph",
    "NoxSession",
    "envdir_name",
    "parse_version",
]

#: The version of the JSON the probe prints and :meth:`NoxGraph.to_json` writes.
GRAPH_SCHEMA = 1

#: The first nox whose ``-s SIG --no-dependencies --report FILE`` runs one session alone.
MIN_NOX_VERSION = (2026, 8, 10)


class NoxError(trioforge.WorkflowError):
    """Raised when nox cannot give trioforge a session graph; the message is one line.

    Raised for a noxfile that does not load (its file and line in the
    message), an unknown session or tag, a ``requires=`` cycle or missing
    target, bad nox arguments, a nox that is too old or not installed, and a
    probe whose fallback failed too. The command line exits 2 on it.

    Attributes:
        kind: ``"noxfile"``, ``"selection"``, ``"options"``, ``"version"``,
            ``"nox-missing"`` or ``"probe"``.
        noxfile: the noxfile concerned, when known.
    """

    def __init__(
        self, kind: str, message: str, *, noxfile: str | os.PathLike[str] | None = None
    ) -> None:
        self.kind = kind
        self.noxfile = None if noxfile is None else Path(noxfile)
        text = " ".join(message.split())  # one line, whatever nox said
        super().__init__(text)


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"2026.10.20"`` as ``(2026, 10, 20)``; None when it does not start with a number."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def envdir_name(friendly_name: str) -> str:
    """The folder name nox gives a session's virtualenv (``_normalize_path`` without hashing).

    Only for the public fallback, which cannot ask nox for ``envdir``: two
    sessions get the same name here exactly when nox gives them the same
    folder (nox hashes long names, which keeps distinct names distinct).
    """
    path = unicodedata.normalize("NFKD", friendly_name).encode("ascii", "ignore").decode("ascii")
    path = re.sub(r"[^\w\s-]", "-", path).strip().lower()
    path = re.sub(r"[-\s]+", "-", path).strip("-")
    return path or f"#{friendly_name}"


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of str, got {value!r}")
    return tuple(value)


@attrs.frozen
class NoxSession:
    """One selected session, as nox resolved it.

    Attributes:
        signature: the ``-s`` value that selects exactly this session (its
            longest signature, as ``nox -j`` uses); the workflow task id.
        signatures: all of nox's signatures for it.
        name: the session function's name.
        requires: the signatures of its direct prerequisites, all in the graph.
        envdir: its virtualenv folder (absolute), or None when unknown (the
            public fallback).
        allow_parallel: nox's resolved ``allow_parallel``; None when unknown.
        tags: its tags.
    """

    signature: str
    signatures: tuple[str, ...] = attrs.field(converter=_strings)
    name: str
    requires: tuple[str, ...] = attrs.field(converter=_strings)
    envdir: str | None
    allow_parallel: bool | None
    tags: tuple[str, ...] = attrs.field(converter=_strings, factory=tuple)

    @property
    def envdir_key(self) -> str:
        """What two sessions share when they share a virtualenv (``envdir`` or its name)."""
        if self.envdir is not None:
            return self.envdir
        return "name:" + envdir_name(self.signatures[0] if self.signatures else self.name)

    def to_json(self) -> dict[str, Any]:
        """The session as JSON-able data (the probe's own form)."""
        return {
            "signature": self.signature,
            "signatures": list(self.signatures),
            "name": self.name,
            "requires": list(self.requires),
            "envdir": self.envdir,
            "allow_parallel": self.allow_parallel,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoxSession:
        """The session that :meth:`to_json` (or the probe) described.

        Raises:
            TypeError: a field has the wrong type.
            KeyError: a field is missing.
        """
        signature, name, envdir = data["signature"], data["name"], data.get("envdir")
        allow = data.get("allow_parallel")
        if not isinstance(signature, str) or not signature or not isinstance(name, str):
            raise TypeError(f"bad session signature or name: {signature!r}, {name!r}")
        if envdir is not None and not isinstance(envdir, str):
            raise TypeError(f"bad envdir {envdir!r}")
        if allow is not None and not isinstance(allow, bool):
            raise TypeError(f"bad allow_parallel {allow!r}")
        return cls(
            signature=signature,
            signatures=data["signatures"],
            name=name,
            requires=data["requires"],
            envdir=envdir,
            allow_parallel=allow,
            tags=data.get("tags", []),
        )


def _session_tuple(value: Iterable[NoxSession]) -> tuple[NoxSession, ...]:
    return tuple(value)


@attrs.frozen
class NoxGraph:
    """The selected sessions of a noxfile and what they require, in nox's run order.

    Attributes:
        sessions: the sessions, in the order nox would run them.
        noxfile: the noxfile's absolute path.
        noxfile_sha256: the hash of its content (recorded with a run, so a
            resume notices an edited noxfile).
        nox_version: the version of the nox that resolved it.
        python: the interpreter that runs that nox (sessions run as
            ``PYTHON -m nox``).
        source: ``"probe"`` (nox's own objects) or ``"list-json"`` (the public
            fallback: no envdir, no ``allow_parallel``).
    """

    sessions: tuple[NoxSession, ...] = attrs.field(converter=_session_tuple)
    noxfile: Path
    noxfile_sha256: str
    nox_version: str
    python: str
    source: str = "probe"

    def __attrs_post_init__(self) -> None:
        known: set[str] = set()
        for session in self.sessions:
            if session.signature in known:
                raise NoxError(
                    "probe", f"two sessions select as {session.signature!r}", noxfile=self.noxfile
                )
            known.add(session.signature)
        for session in self.sessions:
            for dep in session.requires:
                if dep not in known:
                    raise NoxError(
                        "probe",
                        f"session {session.signature!r} requires {dep!r}, which is not selected",
                        noxfile=self.noxfile,
                    )

    def __getitem__(self, signature: str) -> NoxSession:
        for session in self.sessions:
            if session.signature == signature:
                return session
        raise KeyError(signature)

    @property
    def signatures(self) -> list[str]:
        """The sessions' ``-s`` values, in nox's order."""
        return [session.signature for session in self.sessions]

    def to_json(self) -> dict[str, Any]:
        """The graph as JSON-able data, versioned by :data:`GRAPH_SCHEMA`."""
        return {
            "schema": GRAPH_SCHEMA,
            "source": self.source,
            "nox_version": self.nox_version,
            "python": self.python,
            "noxfile": str(self.noxfile),
            "noxfile_sha256": self.noxfile_sha256,
            "sessions": [session.to_json() for session in self.sessions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str | None = None) -> NoxGraph:
        """The graph :meth:`to_json` (or the probe) described.

        Raises:
            NoxError: another schema, or a field with the wrong type.
        """
        if data.get("schema") != GRAPH_SCHEMA:
            raise NoxError("probe", f"unknown probe schema {data.get('schema')!r}")
        try:
            sessions: Sequence[Mapping[str, Any]] = data["sessions"]
            if not isinstance(sessions, list):
                raise TypeError("sessions is not a list")
            fields = [data[key] for key in ("noxfile", "nox_version", "python")]
            if not all(isinstance(field, str) for field in fields):
                raise TypeError(f"bad noxfile, nox_version or python: {fields!r}")
            return cls(
                sessions=[NoxSession.from_json(session) for session in sessions],
                noxfile=Path(data["noxfile"]),
                noxfile_sha256=str(data.get("noxfile_sha256") or ""),
                nox_version=data["nox_version"],
                python=data["python"],
                source=source if source is not None else str(data.get("source", "probe")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise NoxError("probe", f"malformed probe output: {exc!r}") from exc
