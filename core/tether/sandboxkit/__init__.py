"""The shared toolkit behind every tracker sandbox: a loopback HTTP server with routing,
auth checks, pagination helpers, a request log and fault injection."""

from .api import Request, Response, SandboxApi, json_response, route
from .faults import Fault, FaultPlan
from .paging import page_size
from .server import LoggedRequest, SandboxServer

__all__ = ["Fault", "FaultPlan", "LoggedRequest", "Request", "Response", "SandboxApi",
           "SandboxServer", "json_response", "page_size", "route"]
