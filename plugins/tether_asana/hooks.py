"""Tether's webhooks on Asana: one per project of the source, posting to
``<url>?hook=<project gid>``. Asana makes it only once its handshake to that URL is
answered, so `tether serve` must be running there (it keeps the secret)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tether.sdk import Hook

from .client import AsanaClient
from .failures import Where
from .options import AsanaOptions


def target(url: str, project: str) -> str:
    """Where the webhook of ``project`` posts: the service's URL naming the webhook."""
    return f"{url}?hook={project}"


def listed(client: AsanaClient, options: AsanaOptions, url: str) -> list[Hook]:
    """The webhooks on the source's projects that post to ``url``."""
    where = Where(f"workspace {options.workspace or '?'}", "workspace not found; check "
                  "options.workspace", "webhooks:read")
    found = []
    for hook in client.pages("/webhooks", {"workspace": options.workspace or ""}, where):
        aimed = str(hook.get("target") or "")
        project = str((hook.get("resource") or {}).get("gid") or "")
        if project in options.projects and aimed.split("?", 1)[0] == url and (
                parse_qs(urlsplit(aimed).query).get("hook") == [project]):
            found.append(Hook(str(hook["gid"]), project, aimed))
    return found


def install(client: AsanaClient, options: AsanaOptions, url: str) -> list[Hook]:
    """A webhook on each project without one; Asana shakes hands with ``url`` first."""
    have = {hook.scope for hook in listed(client, options, url)}
    made = []
    for project in options.projects:
        if project in have:
            continue
        where = Where(f"project {project}", f"project {project} not found; check "
                      "options.projects", "webhooks:write")
        body = client.call("POST", "/webhooks", where,
                           data={"resource": project, "target": target(url, project)})
        made.append(Hook(str(body["data"]["gid"]), project, target(url, project)))
    return made


def remove(client: AsanaClient, options: AsanaOptions, url: str) -> list[Hook]:
    """Delete the webhooks posting to ``url``."""
    gone = listed(client, options, url)
    for hook in gone:
        client.call("DELETE", f"/webhooks/{hook.id}", Where(
            f"project {hook.scope}", f"webhook {hook.id} not found", "webhooks:write"))
    return gone
