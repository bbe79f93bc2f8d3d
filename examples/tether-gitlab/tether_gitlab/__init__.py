"""The gitlab connector plugin: GitLab issues via REST API v4, and a fake GitLab for tests."""

from __future__ import annotations

from tether.sdk import Connector, Sandbox, Starter, hookimpl

from .connector import GitLabConnector
from .options import GitLabOptions

__all__ = ["GitLabConnector", "GitLabOptions"]


@hookimpl
def tether_connector_types() -> dict[str, type[Connector]]:
    """The gitlab connector type."""
    return {"gitlab": GitLabConnector}


@hookimpl
def tether_starters() -> list[Starter]:
    """What `tether init` offers for gitlab."""
    from .starter import GitLabStarter

    return [GitLabStarter()]


@hookimpl
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    """The fake GitLab, loaded only when a sandbox is asked for."""
    from .sandbox import GitLabSandbox

    return {"gitlab": GitLabSandbox}
