"""The asana connector plugin: connector and sandbox."""

from __future__ import annotations

from tether import hookimpl
from tether.connector import Connector, Sandbox

from .connector import AsanaConnector
from .options import AsanaOptions
from .sandbox import AsanaSandbox

__all__ = ["AsanaConnector", "AsanaOptions", "AsanaSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    return {"asana": AsanaConnector}


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    return {"asana": AsanaSandbox}
