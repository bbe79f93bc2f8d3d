"""The github connector plugin: issues and pull requests via PyGithub, and a fake GitHub."""

from __future__ import annotations

from typing import Any

from tether.sdk import Connector, Sandbox, Starter, hookimpl

from .connector import GitHubConnector
from .options import GitHubOptions

__all__ = ["GitHubConnector", "GitHubOptions", "GitHubSandbox"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    """The github connector type."""
    return {"github": GitHubConnector}


@hookimpl
def tether_starters() -> list[Starter]:
    """What `tether init` offers for github."""
    from .starter import GitHubStarter

    return [GitHubStarter()]


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    """The fake GitHub for demos and tests."""
    from .sandbox.serve import GitHubSandbox  # only when a sandbox is asked for

    return {"github": GitHubSandbox}


def __getattr__(attr: str) -> Any:
    # `from tether_github import GitHubSandbox` still works, without loading the fake tracker
    # whenever the plugin is.
    if attr == "GitHubSandbox":
        from .sandbox.serve import GitHubSandbox

        return GitHubSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
