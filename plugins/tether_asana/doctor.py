"""`tether doctor` for an Asana source: read-only requests that show whether a sync can work.

Requests: GET /users/me (who the token is, and its workspaces), then per configured
project GET /projects/{gid} and GET /projects/{gid}/project_memberships?user=me, whose
``access_level`` says what the token's user may do there: admins and editors may tag
tasks and comment, commenters may only comment, viewers neither. Asana sends no quota
headers, so the rate limit is described, not measured."""

from __future__ import annotations

from typing import Any

import requests
from tether.sdk import AUTH, RATE, READ, WRITE, Check, skipped, token_check

from .client import AsanaClient
from .failures import AsanaHTTPError
from .options import AsanaOptions

SHARE = "the project's Share menu"
LABELS = {"tags": "tag tasks", "custom_field": "set the labels field"}


def diagnose(options: AsanaOptions, client: AsanaClient) -> list[Check]:
    """The checklist of one Asana source, in order; later checks skip when one they need
    failed."""
    scoped = ([f"{READ}: {p}" for p in options.projects]
              + [f"{WRITE}: {p}" for p in options.projects] + [RATE])
    present = token_check(options.token_env, "an Asana personal access token (Developer "
                          "console → Personal access tokens)")
    if not present.ok:
        return [present, *skipped([AUTH, *scoped], "no token")]
    try:
        me = client.fetch("/users/me", {"opt_fields": "name,email,workspaces,workspaces.name"})
    except Exception as exc:
        return [present, _auth_failure(exc, options), *skipped(scoped, "authentication failed")]
    user = me.get("data") or {}
    who = user.get("name") or "the token's user"
    auth = _auth(options, user, who)
    reads: list[Check] = []
    writes: list[Check] = []
    for gid in options.projects:
        read, name = _read(client, gid, who)
        reads.append(read)
        writes.append(_write(client, options, gid, name, who) if read.ok else
                      skipped([f"{WRITE}: {gid}"], f"project {gid} is not readable")[0])
    rate = Check(RATE, None, "Asana sends no quota headers; it allows 150 requests a minute "
                 "per token on free plans and 1,500 on paid ones, and Tether honours "
                 "Retry-After when it is throttled")
    return [present, auth, *reads, *writes, rate]


def _auth(options: AsanaOptions, user: dict[str, Any], who: str) -> Check:
    """Signed in; with tags, the workspace Tether keeps them in must be one of the user's."""
    email = f" ({user['email']})" if user.get("email") else ""
    spaces = {str(w.get("gid")): w.get("name") for w in user.get("workspaces") or []}
    if options.workspace and spaces and options.workspace not in spaces:
        listed = ", ".join(f"{g} ({n})" for g, n in spaces.items())
        return Check(AUTH, False, f"signed in as {who}{email}, who is not in workspace "
                     f"{options.workspace}", f"Set options.workspace to the gid of the "
                     f"projects' workspace; {who} is in {listed}.")
    return Check(AUTH, True, f"signed in as {who}{email} at {options.api}")


def _auth_failure(exc: Exception, options: AsanaOptions) -> Check:
    if isinstance(exc, AsanaHTTPError) and exc.status == 401:
        return Check(AUTH, False, f"Asana refused the token (HTTP 401 {exc.message})",
                     f"The token in ${options.token_env} is wrong or revoked: create a personal "
                     "access token (Developer console → Personal access tokens) and export it.")
    if isinstance(exc, requests.RequestException):
        return Check(AUTH, False, f"cannot reach Asana at {options.api} ({type(exc).__name__})",
                     "Check options.url and the network (proxy, VPN), then run again.")
    said = exc.message if isinstance(exc, AsanaHTTPError) else type(exc).__name__
    return Check(AUTH, False, f"Asana did not sign the token in ({said})",
                 "Run again; if it persists, check status.asana.com.")


def _read(client: AsanaClient, gid: str, who: str) -> tuple[Check, str]:
    """GET the project; its name for the later checks."""
    name = f"{READ}: {gid}"
    try:
        found = client.fetch(f"/projects/{gid}", {"opt_fields": "name"})
    except AsanaHTTPError as exc:
        if exc.status in (400, 404):
            return Check(name, False, f"project {gid} not found (HTTP {exc.status} "
                         f"{exc.message})", "Check options.projects: each entry is the number "
                         "in the project's URL."), gid
        if exc.status == 403:
            return Check(name, False, f"{who} cannot see project {gid} (HTTP 403)",
                         f"Add {who} to project {gid} ({SHARE}), or use another account's "
                         "token."), gid
        return Check(name, False, f"Asana answered HTTP {exc.status} for project {gid} "
                     f"({exc.message})", "Run again later."), gid
    except requests.RequestException as exc:
        return Check(name, False, f"cannot reach Asana ({type(exc).__name__})",
                     "Check options.url and the network, then run again."), gid
    title = (found.get("data") or {}).get("name") or gid
    return Check(name, True, f"{title} is readable"), str(title)


def _write(client: AsanaClient, options: AsanaOptions, gid: str, title: str, who: str
           ) -> Check:
    """What the token's own membership of the project allows (no write is tried)."""
    name = f"{WRITE}: {gid}"
    try:
        found = client.fetch(f"/projects/{gid}/project_memberships",
                             {"user": "me", "opt_fields": "access_level,member.name"})
    except (AsanaHTTPError, requests.RequestException) as exc:
        said = exc.message if isinstance(exc, AsanaHTTPError) else type(exc).__name__
        return Check(name, None, f"could not read the memberships of project {gid} ({said})")
    levels = [m.get("access_level") for m in found.get("data") or []]
    level = next((lvl for lvl in levels if lvl), None)
    labels = LABELS[options.label_mode]
    where = f"project {title} ({gid})"
    fix = (f"Give {who} Editor access to {where} ({SHARE}), or use the token of an account "
           "that has it.")
    if level in ("admin", "editor"):
        return Check(name, True, f"{who} is {_a(level)} {level} of {where}: it may {labels} "
                     "and comment")
    if level == "commenter":
        return Check(name, False, f"{who} is a commenter of {where}: it may comment but not "
                     f"{labels}", fix)
    if level == "viewer":
        return Check(name, False, f"{who} is a viewer of {where}: it may neither {labels} nor "
                     "comment", fix)
    return Check(name, None, f"{who} has no membership of its own in {where}; its access "
                 "comes through the team or workspace, which doctor cannot read. Make it a "
                 f"project member with Editor access to be sure ({SHARE}).")


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
