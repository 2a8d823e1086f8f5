"""Sphinx configuration for the trioforge documentation."""

from __future__ import annotations

import re

import attrs

import trioforge

project = "trioforge"
author = "trioforge developers"
copyright = "trioforge developers"
release = trioforge.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
html_theme = "alabaster"

autodoc_typehints = "signature"
# Show ``EventType``, not ``trioforge._core._events.EventType``, wherever a type resolves.
python_use_unqualified_type_names = True
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

nitpicky = True

# No network, so no intersphinx: references to objects of other projects and of
# the standard library cannot resolve. Ignore exactly those; every reference to
# a trioforge object must still resolve.
_EXTERNAL = (
    "trio",
    "attrs",
    "rustworkx",
    "hypothesis",
    "collections",
    "typing",
    "datetime",
    "enum",
    "random",
    "os",
    "builtins",
    "pathlib",
    "distributed",
    "dask",
    "tornado",
)
nitpick_ignore_regex = [
    (r"py:.*", rf"(?:{'|'.join(_EXTERNAL)})\..+"),
    # hypothesis.strategies as imported in trioforge.testing (``st.SearchStrategy``);
    # hypothesis' @st.composite wrapper keeps the annotation as an unevaluated string.
    (r"py:.*", r"st\..+"),
    # ShellTask's env type alias (a mapping or (name, value) pairs), private to the shell room.
    (r"py:class", r"EnvLike"),
    # WorkflowFile.dask's type: the file's ``dask:`` mapping, documented in yaml.rst.
    (r"py:class", r"trioforge\._workflow_file\._cluster\.DaskSettings"),
]


def _tidy_signature(app, what, name, obj, options, signature, return_annotation):
    """Make defaults that have no readable repr readable.

    * A class as a default (``TryCatchTask.catch``) reprs as ``<class 'Exception'>``,
      which Sphinx cannot parse, so it would print the whole signature unparsed.
    * attrs shows a ``Factory`` default as ``NOTHING``; show the call instead
      (``list()``).
    """
    if not signature:
        return signature, return_annotation
    signature = re.sub(r"<class '(?:builtins\.)?([\w.]+)'>", r"\1", signature)
    if what in ("class", "exception") and attrs.has(obj):
        for field in attrs.fields(obj):
            default = field.default
            if isinstance(default, attrs.Factory) and not default.takes_self:
                call = f"{getattr(default.factory, '__name__', 'factory')}()"
                signature = re.sub(
                    rf"(\b{re.escape(field.alias)}: (?:(?! = ).)*? = )NOTHING\b",
                    rf"\g<1>{call}",
                    signature,
                )
    return signature, return_annotation


def setup(app):
    """Register the signature clean-up."""
    app.connect("autodoc-process-signature", _tidy_signature)
