"""File connector: Jira CSV exports, `gh issue list --json` output, Tether JSON/CSV."""

from __future__ import annotations

from tether import hookimpl
from tether.connector import Connector, Sandbox

from .connector import FilesConnector, FilesOptions
from .sandbox import FilesSandbox

__all__ = ["FilesConnector", "FilesOptions", "FilesSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    return {"files": FilesConnector}


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    return {"files": FilesSandbox}
