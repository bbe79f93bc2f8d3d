"""The jira connector plugin: connector and sandbox."""

from __future__ import annotations

from typing import Any

from tether.sdk import Connector, Sandbox, Starter, hookimpl

from .connector import JiraConnector
from .options import JiraOptions

__all__ = ["JiraConnector", "JiraOptions", "JiraSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    return {"jira": JiraConnector}


@hookimpl
def tether_starters() -> list[Starter]:
    """What `tether init` offers for jira."""
    from .starter import JiraStarter

    return [JiraStarter()]


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    from .sandbox.serve import JiraSandbox  # only when a sandbox is asked for

    return {"jira": JiraSandbox}


def __getattr__(attr: str) -> Any:
    # `from tether_jira import JiraSandbox` still works, without loading the fake tracker
    # whenever the plugin is.
    if attr == "JiraSandbox":
        from .sandbox.serve import JiraSandbox

        return JiraSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
