"""File connector: Jira CSV exports, `gh issue list --json` output, Tether JSON/CSV."""

from __future__ import annotations

from tether.sdk import Connector, hookimpl

from .connector import FilesConnector, FilesOptions

__all__ = ["FilesConnector", "FilesOptions"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    return {"files": FilesConnector}
