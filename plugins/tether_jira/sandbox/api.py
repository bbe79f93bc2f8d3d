"""The HTTP face of the fake Jira: real paths, status codes, error bodies and headers.

Cloud serves REST v2 and v3 with the enhanced search ``/search/jql`` (token paging, no
total) and answers the removed ``/search`` with 410; Data Center serves v2 only, with
``/search`` paged by ``startAt`` and a server-side cap on ``maxResults``. ``mypermissions``
answers what the caller may do (Tether's doctor asks it instead of trying a write). Admin
webhooks are registered at ``/rest/webhooks/1.0/webhook`` and their deliveries queued in
``deliveries`` (see hooks.py), posted when a test or the demo calls ``deliver()``."""

from __future__ import annotations

from collections.abc import Callable

from tether.sandbox import Request, Response

from .hooks import Deliveries, HookDelivery, HookRoutes
from .http import RateLimit
from .issues import NOT_ADF, IssueRoutes, adf_problem
from .permissions import PermissionRoutes
from .search import REMOVED_SEARCH, UNBOUNDED, SearchRoutes
from .state import World

__all__ = ["NOT_ADF", "REMOVED_SEARCH", "UNBOUNDED", "HookDelivery", "JiraSandboxApi",
           "RateLimit", "adf_problem"]


class JiraSandboxApi(SearchRoutes, IssueRoutes, PermissionRoutes, HookRoutes):
    """One fake Jira site over HTTP: ``JiraSandboxApi(world, rate_limit=None)``."""

    name = "jira"

    def __init__(self, world: World, rate_limit: RateLimit | None = None,
                 on_change: Callable[[], None] | None = None):
        super().__init__(world, rate_limit, on_change)
        self.deliveries = Deliveries.of(world)

    def dispatch(self, req: Request) -> Response:
        self.deliveries.base_url = req.base_url  # payload URLs point where callers reach us
        return super().dispatch(req)

    def deliver(self) -> list[HookDelivery]:
        """Post the webhook deliveries queued since the last call (see hooks.Deliveries)."""
        return self.deliveries.deliver()
