"""The jira connector plugin: connector and sandbox."""

from __future__ import annotations

from tether import hookimpl
from tether.connector import Connector, Sandbox

from .connector import JiraConnector
from .options import JiraOptions
from .sandbox import JiraSandbox

__all__ = ["JiraConnector", "JiraOptions", "JiraSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    return {"jira": JiraConnector}


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    return {"jira": JiraSandbox}
