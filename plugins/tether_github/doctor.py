"""`tether doctor` for a GitHub source: read-only requests that show whether a sync can work.

Requests: GET /user (who the token is; a classic token's X-OAuth-Scopes), then GET
/repos/{owner}/{repo} per configured repository, whose ``permissions`` are the token user's
role there. Labels need Write (Tether creates its labels; Triage may only apply existing
ones); comments need read access; a classic token also needs the repo scope. A fine-grained
token's own permissions are shown by no endpoint, so for those doctor can only say what the
user's role allows. The rate limit comes from the last answer's x-ratelimit-* headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from github.GithubException import GithubException
from tether.sdk import (
    AUTH,
    RATE,
    READ,
    WRITE,
    Check,
    Clock,
    rate_headroom,
    skipped,
    token_check,
)

from .client import GitHubClient
from .failures import PRIMARY, message_of, reset_wait, source_error
from .options import GitHubOptions

FINE_GRAINED = "Issues: Read and write and Pull requests: Read and write"
ROLES = "Settings → Collaborators and teams"


@dataclass
class Probe:
    """One doctor run's requests: the client, and the headers GitHub sent last."""

    client: GitHubClient
    headers: Mapping[str, str] = field(default_factory=dict)

    def get(self, path: str) -> Any:
        try:
            headers, data = self.client.fetch(path)
        except GithubException as exc:
            self.headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
            raise
        self.headers = headers
        return data


@dataclass(frozen=True)
class Token:
    """What GET /user showed about the token: whose it is and, if classic, its scopes."""

    login: str
    scopes: tuple[str, ...] | None  # None: a fine-grained token (or an app's), no scopes

    @property
    def kind(self) -> str:
        return "fine-grained token" if self.scopes is None else "classic token"


def diagnose(options: GitHubOptions, client: GitHubClient, clock: Clock) -> list[Check]:
    """The checklist of one GitHub source, in order; later checks skip when one they need
    failed."""
    scoped = ([f"{READ}: {r}" for r in options.repos] + [f"{WRITE}: {r}" for r in options.repos]
              + [RATE])
    present = token_check(options.token_env, "a GitHub token (fine-grained, with "
                               f"{FINE_GRAINED} on {', '.join(options.repos)})")
    if not present.ok:
        return [present, *skipped([AUTH, *scoped], "no token")]
    probe = Probe(client)
    try:
        me = probe.get("/user")
    except Exception as exc:
        if _rate_limited(exc, clock):
            return [present, Check(AUTH, None, "not checked: the rate limit is used up"),
                    *skipped(scoped[:-1], "the rate limit is used up"), _rate(probe, options)]
        return [present, _auth_failure(exc, options, clock),
                *skipped(scoped, "authentication failed")]
    raw = probe.headers.get("x-oauth-scopes")
    token = Token(str(me.get("login", "?")),
                  None if raw is None else tuple(s.strip() for s in raw.split(",") if s.strip()))
    shown = f"; scopes: {', '.join(token.scopes) or 'none'}" if token.scopes is not None else ""
    auth = Check(AUTH, True, f"signed in as {token.login} ({token.kind}{shown}) at {options.url}")
    reads: list[Check] = []
    writes: list[Check] = []
    for repo in options.repos:
        read, payload = _read(probe, options, repo, token, clock)
        reads.append(read)
        writes.append(_write(repo, payload, token) if payload is not None else
                      skipped([f"{WRITE}: {repo}"], f"{repo} is not readable")[0])
    return [present, auth, *reads, *writes, _rate(probe, options)]


def _rate_limited(exc: Exception, clock: Clock) -> bool:
    return isinstance(exc, GithubException) and exc.status in (403, 429) and (
        PRIMARY in message_of(exc).lower() or reset_wait(exc, clock) is not None)


def _auth_failure(exc: Exception, options: GitHubOptions, clock: Clock) -> Check:
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Check(AUTH, False, f"cannot reach GitHub at {options.url} ({type(exc).__name__})",
                     "Check options.url and the network (proxy, VPN), then run again.")
    status = exc.status if isinstance(exc, GithubException) else None
    if isinstance(exc, GithubException) and status == 401:
        return Check(AUTH, False, f"GitHub refused the token (HTTP 401 {message_of(exc)})",
                     f"The token in ${options.token_env} is wrong, expired or revoked: create "
                     f"a new one (fine-grained, with {FINE_GRAINED} on "
                     f"{', '.join(options.repos)}) and export it.")
    if status == 404:
        return Check(AUTH, False, f"no GitHub REST API at {options.url} (HTTP 404)",
                     "Check options.url: https://api.github.com, or https://HOST/api/v3 for "
                     "GitHub Enterprise Server.")
    return Check(AUTH, False, str(source_error(exc, "sign-in", "", options.token_env,
                                               options.url, clock)),
                 "Run again; if it persists, check githubstatus.com or your server.")


def _read(probe: Probe, options: GitHubOptions, repo: str, token: Token, clock: Clock
          ) -> tuple[Check, dict[str, Any] | None]:
    name = f"{READ}: {repo}"
    try:
        payload = probe.get(f"/repos/{repo}")
    except GithubException as exc:
        if exc.status == 404:
            if token.scopes is not None and not {"repo", "public_repo"} & set(token.scopes):
                fix = (f"The token lacks the repo scope: create a fine-grained token with "
                       f"{FINE_GRAINED} on {repo}, or add the repo scope to this one.")
            elif token.scopes is None:
                fix = (f"Add {repo} to the token's repository access (its settings on GitHub), "
                       "or check the name in options.repos.")
            else:
                fix = (f"Check the name in options.repos, and that {token.login} has access to "
                       f"{repo} ({ROLES}).")
            return Check(name, False, f"{repo} not found, or the token cannot see it "
                         "(HTTP 404)", fix), None
        if exc.status == 403 and "x-github-sso" in probe.headers:
            return Check(name, False, f"{repo}: the organisation requires SAML single sign-on "
                         "for this token (HTTP 403)", "Authorize the token for the "
                         "organisation's SSO (token settings on GitHub → Configure SSO)."), None
        return Check(name, False, str(source_error(exc, repo, repo, options.token_env,
                                                   options.url, clock)),
                     "Run again; if it persists, check the token's access to the repository."
                     ), None
    except Exception as exc:
        return Check(name, False, str(source_error(exc, repo, repo, options.token_env,
                                                   options.url, clock)),
                     "Check options.url and the network, then run again."), None
    opened = payload.get("open_issues_count")
    count = f", {opened} open issues and pull requests" if isinstance(opened, int) else ""
    return Check(name, True, f"readable ({payload.get('visibility', 'private')}{count})"), payload


def _write(repo: str, payload: dict[str, Any], token: Token) -> Check:
    """Whether labels and comments can be written, from the repository and the token."""
    name = f"{WRITE}: {repo}"
    if payload.get("archived"):
        return Check(name, False, f"{repo} is archived, so GitHub takes no writes there",
                     f"Unarchive {repo}, or remove it from options.repos.")
    if payload.get("has_issues") is False:
        return Check(name, False, f"{repo} has Issues turned off",
                     f"Turn Issues on for {repo} (Settings → General → Features), or remove "
                     "it from options.repos.")
    if token.scopes is not None:
        needed = "repo" if payload.get("private", True) else "public_repo"
        if not {"repo", needed} & set(token.scopes):
            return Check(name, False, f"the token lacks the {needed} scope, so it cannot "
                         f"write labels or comments on {repo}",
                         f"The token lacks the {needed} scope: create a fine-grained token with "
                         f"{FINE_GRAINED} on {repo}, or add the {needed} scope to this one.")
    rights = payload.get("permissions") or {}
    if not rights.get("push"):
        role = "Triage" if rights.get("triage") else "Read"
        can = ("apply existing labels and comment, but not create the labels Tether adds"
               if role == "Triage" else "comment, but not label issues")
        return Check(name, False, f"{token.login} has the {role} role on {repo}: it may {can}",
                     f"Give {token.login} the Write role on {repo} ({ROLES}), or use a token "
                     "of an account that has it.")
    if token.scopes is None:
        return Check(name, None, f"{token.login} may write to {repo}, but GitHub shows no "
                     "fine-grained token's own permissions, so doctor cannot tell whether this "
                     f"one has {FINE_GRAINED} on {repo}; check its settings on GitHub")
    return Check(name, True, f"{token.login} may write to {repo} and the token has the repo "
                 "scope: labels and comments can be written")


def _rate(probe: Probe, options: GitHubOptions) -> Check:
    """From the last answer's x-ratelimit-* headers (GHES sends none when limits are off)."""
    headers = probe.headers
    try:
        remaining = int(headers["x-ratelimit-remaining"])
        limit = int(headers["x-ratelimit-limit"])
    except (KeyError, ValueError):
        return Check(RATE, None, f"{options.url} sends no rate-limit headers (rate limits are "
                     "off on this server); Tether honours Retry-After")
    reset = headers.get("x-ratelimit-reset", "")
    when = (datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M UTC")
            if reset.isdigit() else None)
    return rate_headroom(remaining, limit, "GitHub", when)
