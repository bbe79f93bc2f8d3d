"""The github connector plugin: issues and pull requests via PyGithub, and a fake GitHub."""

from __future__ import annotations

from tether import hookimpl
from tether.connector import Connector, Sandbox

from .connector import GitHubConnector
from .options import GitHubOptions
from .sandbox import GitHubSandbox

__all__ = ["GitHubConnector", "GitHubOptions", "GitHubSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    """The github connector type."""
    return {"github": GitHubConnector}


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    """The fake GitHub for demos and tests."""
    return {"github": GitHubSandbox}
