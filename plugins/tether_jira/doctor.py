"""`tether doctor` for a Jira source: read-only requests that show whether a sync can work.

Requests: serverInfo (on connecting), GET myself, then per configured project GET
project/{key} and GET mypermissions?projectKey=..&permissions=.. (Cloud v3; Data Center
v2, where the parameter is optional but honoured). mypermissions answers what Tether
would otherwise learn by trying a write: Edit Issues, Add Comments, Edit Own Comments, and
whether the user administers the project or Jira, which decides if ``notifyUsers=false``
(quiet edits) is allowed. A JQL-only scope names no project, so those checks are asked in
the global context, which says "in some project" only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from jira.exceptions import JIRAError
from tether.sdk import AUTH, QUIET, RATE, READ, WRITE, Check, rate_headroom, skipped, token_check, words

from .client import FlavourMismatch, JiraClient
from .failures import Context, describe, service_message, status_of
from .options import JiraOptions

# What Tether needs to write, and what each one is for (README "Connecting your trackers").
NEEDED = {"EDIT_ISSUES": ("Edit Issues", "write labels"),
          "ADD_COMMENTS": ("Add Comments", "add its comment"),
          "EDIT_OWN_COMMENTS": ("Edit Own Comments", "edit its comment")}
ADMIN = ("ADMINISTER_PROJECTS", "ADMINISTER")  # either one allows notifyUsers=false
ASKED = ",".join([*NEEDED, *ADMIN])
_NETWORK = (requests.ConnectionError, requests.Timeout)


@dataclass
class Probe:
    """One doctor run's requests: the client, and the headers Jira sent last."""

    client: JiraClient
    headers: Mapping[str, str] = field(default_factory=dict)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self.client.get(path, params)
        self.headers = response.headers
        return response.json()


def diagnose(options: JiraOptions, client: JiraClient) -> list[Check]:
    """The checklist of one Jira source, in order; later checks skip when one they need
    failed."""
    keys = list(options.projects) or ["JQL"]
    scoped = [f"{READ}: {k}" for k in keys] + [f"{WRITE}: {k}" for k in keys] + [RATE, QUIET]
    what = "the API token" if options.flavour == "cloud" else "the personal access token"
    token = token_check(options.token_env, f"{what} of the Jira account Tether acts as")
    if not token.ok:
        return [token, *skipped([AUTH, *scoped], "no token")]
    probe = Probe(client)
    auth, me = _auth(probe, options)
    if not auth.ok:
        return [token, auth, *skipped(scoped, "authentication failed")]
    who = me.get("displayName") or me.get("name") or "the token's user"
    if not options.projects:
        reads, writes, grants = _global(probe, options, who)
    else:
        reads, writes, grants = [], [], {}
        for key in options.projects:
            read = _read(probe, options, key)
            reads.append(read)
            if not read.ok:
                writes += skipped([f"{WRITE}: {key}"], f"project {key} is not readable")
                continue
            write, have = _write(probe, options, key, who)
            writes.append(write)
            if have is not None:
                grants[key] = have
    return [token, auth, *reads, *writes, _rate(probe, options), _quiet(options, grants, who)]


def _auth(probe: Probe, options: JiraOptions) -> tuple[Check, dict[str, Any]]:
    """Connect (serverInfo) and GET myself: who the token acts as."""
    flavour = "Cloud" if options.flavour == "cloud" else "Data Center"
    try:
        me = probe.get("myself")
    except FlavourMismatch as exc:
        return Check(AUTH, False, str(exc).split(";")[0],
                     f"Set options.flavour to {exc.want} for this site."), {}
    except Exception as exc:
        return _auth_failure(exc, options), {}
    account = me.get("emailAddress") or me.get("name") or me.get("accountId") or ""
    return Check(AUTH, True, f"signed in as {me.get('displayName') or account} ({account}) on "
                 f"Jira {flavour} at {options.base_url}"), me


def _auth_failure(exc: Exception, options: JiraOptions) -> Check:
    status = status_of(exc)
    if isinstance(exc, _NETWORK):
        return Check(AUTH, False, f"cannot reach Jira at {options.base_url} "
                     f"({type(exc).__name__})",
                     "Check options.url and the network (proxy, VPN), then run again.")
    if status == 401:
        if options.flavour == "cloud":
            fix = (f"Put an API token of {options.email} in ${options.token_env} (create one "
                   "at id.atlassian.com → Security → API tokens); it must belong to "
                   "options.email. If the site is Jira Data Center, set options.flavour: "
                   "datacenter.")
        else:
            fix = (f"Put a valid personal access token in ${options.token_env} (Profile → "
                   "Personal Access Tokens); it may have expired or been revoked. If the "
                   "site is Jira Cloud, set options.flavour: cloud and options.email.")
        return Check(AUTH, False, "Jira refused the credentials (HTTP 401)", fix)
    if status == 404:
        return Check(AUTH, False, f"no Jira REST API at {options.base_url} (HTTP 404)",
                     "Check options.url: the site's base URL (on Data Center with its "
                     "context path, e.g. https://jira.example.com/jira).")
    return Check(AUTH, False, describe(exc, Context(options)),
                 "Sign in to Jira in a browser as the token's user (Jira may ask for a "
                 "CAPTCHA after failed sign-ins), then run again.")


def _read(probe: Probe, options: JiraOptions, key: str) -> Check:
    name = f"{READ}: {key}"
    try:
        project = probe.get(f"project/{key}")
    except JIRAError as exc:
        if exc.status_code == 404:
            return Check(name, False, f"project {key} not found, or the token's user cannot "
                         "browse it (HTTP 404)",
                         f"Check that {key} is a project key in options.projects, and give "
                         f"the token's user 'Browse Projects' in {key} (Project settings → "
                         "Permissions).")
        return Check(name, False, describe(exc, Context(options, project=key)),
                     "Run again; if it persists, check the site's status.")
    except Exception as exc:
        return Check(name, False, describe(exc, Context(options, project=key)),
                     "Check options.url and the network, then run again.")
    title = project.get("name") or key
    return Check(name, True, f"{title} is readable" if title != key else f"{key} is readable")


def _permissions(probe: Probe, project: str | None) -> dict[str, bool]:
    """mypermissions for ``project`` (None: the global context), key -> havePermission."""
    params = {"permissions": ASKED}
    if project is not None:
        params["projectKey"] = project
    answer = probe.get("mypermissions", params).get("permissions") or {}
    return {key: bool((answer.get(key) or {}).get("havePermission")) for key in [*NEEDED, *ADMIN]}


def _write(probe: Probe, options: JiraOptions, key: str, who: str
           ) -> tuple[Check, dict[str, bool] | None]:
    """Whether the token's user may write labels and comments in ``key`` (asked, not tried)."""
    name = f"{WRITE}: {key}"
    try:
        have = _permissions(probe, key)
    except Exception as exc:
        said = service_message(exc) if isinstance(exc, JIRAError) else type(exc).__name__
        return Check(name, None, f"could not ask Jira for the permissions in {key} ({said})",
                     ), None
    missing = [k for k in NEEDED if not have[k]]
    if not missing:
        return Check(name, True, f"{who} may edit issues, add comments and edit own comments "
                     f"in {key}"), have
    names = words([f"'{NEEDED[k][0]}'" for k in missing], "and")
    uses = words([NEEDED[k][1] for k in missing], "or")
    return Check(name, False, f"{who} lacks {names} in project {key}, so Tether cannot "
                 f"{uses} there",
                 f"Give the token's user {names} in project {key} (Project settings → "
                 "Permissions), or use another token."), have


def _global(probe: Probe, options: JiraOptions, who: str
            ) -> tuple[list[Check], list[Check], dict[str, dict[str, bool]]]:
    """Read and write checks for a JQL-only scope: in the global context, Jira says whether
    the user has a permission in some project, never which."""
    hint = "List the projects under options.projects so doctor can check each one."
    try:
        have = _permissions(probe, None)
    except Exception as exc:
        check = _auth_failure(exc, options)
        return [Check(f"{READ}: JQL", False, check.detail, check.fix)], \
            skipped([f"{WRITE}: JQL"], "the permissions could not be read"), {}
    read = Check(f"{READ}: JQL", None, "the scope is a JQL query, which names no project: "
                 f"doctor cannot tell which projects it reads. {hint}")
    missing = [k for k in NEEDED if not have[k]]
    if missing:
        names = words([f"'{NEEDED[k][0]}'" for k in missing], "and")
        return [read], [Check(f"{WRITE}: JQL", False, f"{who} lacks {names} in every project",
                              f"Give the token's user {names} in the projects the JQL "
                              "selects (Project settings → Permissions).")], {}
    return [read], [Check(f"{WRITE}: JQL", None, f"{who} may edit issues and comment in some "
                          f"project, but Jira does not say which. {hint}")], {"JQL": have}


def _rate(probe: Probe, options: JiraOptions) -> Check:
    """From the last answer's headers: Data Center's token bucket, Cloud's near-limit flag."""
    headers = probe.headers
    remaining, limit = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Limit")
    if str(headers.get("X-RateLimit-NearLimit", "")).lower() == "true":
        return Check(RATE, False, "Jira Cloud says fewer than 20% of its burst budget is left",
                     "Run again in a minute, and check that no other job shares this token.")
    if remaining is not None and limit is not None:
        try:
            return rate_headroom(int(remaining), int(limit), "Jira")
        except ValueError:
            pass
    return Check(RATE, None, "Jira sends no quota headers to this token; Tether honours "
                 "Retry-After when it is throttled")


def _quiet(options: JiraOptions, grants: dict[str, dict[str, bool]], who: str) -> Check:
    """Whether Jira will take notifyUsers=false: the user administers Jira or each project."""
    if not grants:
        return skipped([QUIET], "the permissions could not be read")[0]
    if "JQL" in grants and not options.projects:  # the global context: "in some project"
        have = grants["JQL"]
        if have["ADMINISTER"]:
            return Check(QUIET, True, f"{who} administers Jira: edits go with "
                         "notifyUsers=false")
        if have["ADMINISTER_PROJECTS"]:
            return Check(QUIET, None, f"{who} administers some project, but Jira does not say "
                         "which; list the projects under options.projects to check each one")
        grants = {"the projects the JQL selects": have}
    plain = [key for key, have in grants.items() if not any(have[k] for k in ADMIN)]
    where = words(list(grants))
    if plain:
        listed = words(plain)
        # Not a failure: syncs work, they only notify watchers.
        return Check(QUIET, None, f"{who} administers neither Jira nor {listed}: Jira "
                     "refuses notifyUsers=false, so Tether's edits will notify watchers",
                     f"Make the token's user a project admin of {listed} (Project settings → "
                     "People, role Administrators) to keep Tether's edits quiet.")
    if options.flavour == "cloud":
        return Check(QUIET, True, f"{who} administers {where}: edits go with "
                     "notifyUsers=false and notify nobody")
    return Check(QUIET, True, f"{who} administers {where}: label edits go with "
                 "notifyUsers=false; Data Center's comment edits notify watchers regardless")
