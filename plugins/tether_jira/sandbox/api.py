"""The HTTP face of the fake Jira: real paths, status codes, error bodies and headers.

Cloud serves REST v2 and v3 with the enhanced search ``/search/jql`` (token paging, no
total) and answers the removed ``/search`` with 410; Data Center serves v2 only, with
``/search`` paged by ``startAt`` and a server-side cap on ``maxResults``. ``mypermissions``
answers what the caller may do (Tether's doctor asks it instead of trying a write)."""

from __future__ import annotations

from .http import RateLimit
from .issues import NOT_ADF, IssueRoutes, adf_problem
from .permissions import PermissionRoutes
from .search import REMOVED_SEARCH, UNBOUNDED, SearchRoutes

__all__ = ["NOT_ADF", "REMOVED_SEARCH", "UNBOUNDED", "JiraSandboxApi", "RateLimit", "adf_problem"]


class JiraSandboxApi(SearchRoutes, IssueRoutes, PermissionRoutes):
    """One fake Jira site over HTTP: ``JiraSandboxApi(world, rate_limit=None)``."""

    name = "jira"
