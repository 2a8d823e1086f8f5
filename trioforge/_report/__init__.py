"""Reports: what a stored run looked like, as one self-contained HTML file.

What it holds: the report's data, computed from a stored run and its events
(``_data``), and the HTML with an inline SVG timeline (``_html``).

May import: ``_core`` and ``_store``. Imported by: the command line and the
public top level (``render_report``).
"""

from ._data import TaskDetail as TaskDetail
from ._html import render_page as render_page
from ._html import render_report as render_report

__all__ = [
    "TaskDetail",
    "render_page",
    "render_report",
]
