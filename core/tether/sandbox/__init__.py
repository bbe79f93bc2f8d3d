"""The shared toolkit behind every tracker sandbox: a loopback HTTP server with routing,
auth checks, pagination helpers, a request log, fault injection and posting webhooks."""

from tether.sandbox.api import Request, Response, SandboxApi, json_response, route
from tether.sandbox.faults import Fault, FaultPlan
from tether.sandbox.outbound import post
from tether.sandbox.paging import page_size
from tether.sandbox.server import LoggedRequest, SandboxServer

__all__ = ["Fault", "FaultPlan", "LoggedRequest", "Request", "Response", "SandboxApi",
           "SandboxServer", "json_response", "page_size", "post", "route"]
