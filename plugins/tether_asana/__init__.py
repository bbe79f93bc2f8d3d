"""The asana connector plugin: connector and sandbox."""

from __future__ import annotations

from typing import Any

from tether.sdk import Connector, Sandbox, Starter, hookimpl

from .connector import AsanaConnector
from .options import AsanaOptions

__all__ = ["AsanaConnector", "AsanaOptions", "AsanaSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    return {"asana": AsanaConnector}


@hookimpl
def tether_starters() -> list[Starter]:
    """What `tether init` offers for asana."""
    from .starter import AsanaStarter

    return [AsanaStarter()]


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    from .sandbox.serve import AsanaSandbox  # only when a sandbox is asked for

    return {"asana": AsanaSandbox}


def __getattr__(attr: str) -> Any:
    # `from tether_asana import AsanaSandbox` still works, without loading the fake tracker
    # whenever the plugin is.
    if attr == "AsanaSandbox":
        from .sandbox.serve import AsanaSandbox

        return AsanaSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
