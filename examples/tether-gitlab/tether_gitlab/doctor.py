"""`tether doctor` for a GitLab source, from read-only requests: GET /user (who the token
is), GET /personal_access_tokens/self (its scopes, for an access token), GET /projects/:id
(the role there: Reporter or above may label issues) and the last RateLimit-* headers."""

from __future__ import annotations

from typing import Any

import requests
from tether.sdk import AUTH, RATE, READ, WRITE, Check, rate_headroom, skipped, token_check

from .client import GitLabClient, HttpError
from .options import GitLabOptions

REPORTER = 20  # GitLab's access levels: 10 Guest, 20 Reporter, 30 Developer, ...
WHAT = "a GitLab access token with the api scope"


def diagnose(options: GitLabOptions, client: GitLabClient) -> list[Check]:
    project = options.project
    read, write = f"{READ}: {project}", f"{WRITE}: {project}"
    present = token_check(options.token_env, WHAT)
    if not present.ok:
        return [present, *skipped([AUTH, read, write, RATE], "no token")]
    try:
        user = str(_get(client, "/user").get("username", "?"))
    except requests.RequestException as exc:
        return [present, Check(AUTH, False, f"cannot reach GitLab at {options.url} "
                               f"({type(exc).__name__})", "Check options.url and the network."),
                *skipped([read, write, RATE], "authentication failed")]
    except HttpError as exc:
        fix = (f"The token in ${options.token_env} is wrong, expired or revoked: create {WHAT} "
               "and export it." if exc.status == 401 else
               "Check options.url: the GitLab root, like https://gitlab.com.")
        return [present, Check(AUTH, False, f"GitLab at {options.url} answered {exc}", fix),
                *skipped([read, write, RATE], "authentication failed")]
    try:
        scopes = list(_get(client, "/personal_access_tokens/self").get("scopes") or [])
    except (HttpError, requests.RequestException):
        scopes = []  # not an access token, or an older GitLab: cannot tell
    shown = f"; scopes: {', '.join(scopes)}" if scopes else ""
    auth = Check(AUTH, True, f"signed in as {user} at {options.url}{shown}")
    try:
        info = _get(client, client.project)
    except (HttpError, requests.RequestException) as exc:
        return [present, auth, Check(read, False, f"project {project} not found, or the token "
                                     f"cannot see it ({exc})", "Check options.project, and "
                                     f"that {user} is a member of {project}."),
                *skipped([write], f"{project} is not readable"), _rate(client)]
    opened = info.get("open_issues_count")
    readable = Check(read, True, f"readable ({info.get('visibility', 'private')}"
                     f"{f', {opened} open issues' if isinstance(opened, int) else ''})")
    return [present, auth, readable, _write(info, user, scopes, write), _rate(client)]


def _get(client: GitLabClient, path: str) -> dict[str, Any]:
    data, _ = client.send("GET", path)
    return data if isinstance(data, dict) else {}


def _write(info: dict[str, Any], user: str, scopes: list[str], name: str) -> Check:
    project = info.get("path_with_namespace", "the project")
    if info.get("archived") or info.get("issues_enabled") is False:
        return Check(name, False, f"{project} is archived or has issues turned off",
                     f"Unarchive {project}, or turn Issues on (Settings → General).")
    if scopes and "api" not in scopes:
        return Check(name, False, "the token has no api scope, so it cannot write",
                     "Create a token with the api scope.")
    rights = info.get("permissions") or {}
    level = max(int((rights.get(k) or {}).get("access_level") or 0)
                for k in ("project_access", "group_access"))
    if level >= REPORTER:
        return Check(name, True, f"{user} may label issues and write notes on {project}")
    if level:
        return Check(name, False, f"{user} is a Guest on {project}: notes only, no labels",
                     f"Give {user} the Reporter role (or higher) on {project}.")
    return Check(name, None, f"GitLab shows no role of {user} on {project}; it may inherit one")


def _rate(client: GitLabClient) -> Check:
    """From the RateLimit-* headers (GitLab sends none where limits are off)."""
    try:
        remaining = int(client.headers["RateLimit-Remaining"])
        limit = int(client.headers["RateLimit-Limit"])
    except (KeyError, ValueError):
        return Check(RATE, None, "no rate-limit headers (limits are off on this instance); "
                     "Tether honours Retry-After")
    return rate_headroom(remaining, limit, "GitLab", client.headers.get("RateLimit-ResetTime"))
