"""The report's formats, and rendering the report in one of them (for `tether report` and
the service's live report)."""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

from tether.store.db import Store
from tether.workspace import Workspace

# Each format (also its file suffix) and the module in tether.report that renders it.
FORMATS = {"html": "html", "json": "jsondoc", "csv": "csvfile", "md": "markdown"}


def render_report(ws: Workspace, store: Store, fmt: str, as_of: datetime) -> tuple[str, Any]:
    """The report in ``fmt`` as of ``as_of``, and the data it shows."""
    # Imported here, not at the top: plotly takes a second to import, and every other
    # tether command would pay for it at start-up.
    from tether.report.data import gather

    data = gather(ws, store, as_of)
    return importlib.import_module(f"tether.report.{FORMATS[fmt]}").render(data), data
