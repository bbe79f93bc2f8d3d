"""JSON payloads of the fake Jira, shaped like the real ones for one API version and flavour.

Cloud shapes follow the v3 OpenAPI examples (accountId users, ADF bodies, hierarchyLevel on
issue types); Data Center shapes are the v2 ones (username/key users, wiki strings). Every
URL points at the sandbox itself, because the ``jira`` library follows ``self`` links."""

from __future__ import annotations

import hashlib
import zlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..markup import adf_to_text
from .state import CATEGORIES, Comment, Issue, Project, User, World

CLOUD_EXPAND = ("operations,versionedRepresentations,editmeta,changelog,customfield_10010."
                "requestTypePractice,renderedFields")
DC_EXPAND = "operations,versionedRepresentations,editmeta,changelog,renderedFields"
NAVIGABLE = ("summary", "description", "issuetype", "status", "assignee", "reporter",
             "project", "labels", "components", "parent", "issuelinks", "created", "updated",
             "resolutiondate", "comment")


def stamp(moment: datetime | None, zone: str) -> str | None:
    """Jira's timestamp format: milliseconds and a +hhmm offset, in the instance time zone."""
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + \
        local.strftime("%z")


def _number(text: str) -> int:
    """A stable number for a name (ids of things the sandbox does not model)."""
    return zlib.crc32(text.encode())


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF doc: one paragraph per blank-line block, hard breaks inside."""
    content = []
    for block in [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]:
        nodes: list[dict[str, Any]] = []
        for n, line in enumerate(block.split("\n")):
            if n:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


class Renderer:
    """Payloads for one request: base URL and REST version fixed."""

    def __init__(self, world: World, base_url: str, version: str):
        self.w = world
        self.base = base_url
        self.v = "2" if version == "latest" else version
        self.cloud = world.flavour == "cloud"
        self.api = f"{base_url}/rest/api/{self.v}"

    def time(self, moment: datetime | None) -> str | None:
        return stamp(moment, self.w.time_zone)

    def avatars(self, kind: str, ident: str) -> dict[str, str]:
        return {f"{n}x{n}": f"{self.base}/secure/{kind}avatar?size={n}&id={ident}"
                for n in (48, 24, 16, 32)}

    def user(self, user: User | None) -> dict[str, Any] | None:
        if user is None:
            return None
        if self.cloud:
            return {"self": f"{self.api}/user?accountId={user.account_id}",
                    "accountId": user.account_id, "emailAddress": user.email,
                    "avatarUrls": self.avatars("user", user.account_id),
                    "displayName": user.display_name, "active": user.active,
                    "timeZone": user.time_zone, "accountType": "atlassian"}
        return {"self": f"{self.api}/user?username={user.name}", "name": user.name,
                "key": f"JIRAUSER{_number(user.name) % 100000}", "emailAddress": user.email,
                "avatarUrls": self.avatars("user", user.name), "displayName": user.display_name,
                "active": user.active, "timeZone": user.time_zone}

    def project(self, project: Project) -> dict[str, Any]:
        out: dict[str, Any] = {"self": f"{self.api}/project/{project.id}", "id": project.id,
               "key": project.key, "name": project.name, "projectTypeKey": "software",
               "avatarUrls": self.avatars("project", project.id)}
        if self.cloud:
            out["simplified"] = False
        return out

    def issuetype(self, name: str) -> dict[str, Any]:
        t = self.w.types[name]
        out: dict[str, Any] = {
            "self": f"{self.api}/issuetype/{t.id}", "id": t.id, "description": t.description,
            "iconUrl": f"{self.base}/images/icons/issuetypes/{t.name.lower()}.svg",
            "name": t.name, "subtask": t.hierarchy < 0, "avatarId": 10300 + int(t.id) % 100}
        if self.cloud:
            out["hierarchyLevel"] = t.hierarchy
        return out

    def status(self, name: str) -> dict[str, Any]:
        s = self.w.statuses[name]
        cid, cname, colour = CATEGORIES[s.category]
        return {"self": f"{self.api}/status/{s.id}", "description": "",
                "iconUrl": f"{self.base}/images/icons/statuses/generic.png", "name": s.name,
                "id": s.id, "statusCategory": {
                    "self": f"{self.api}/statuscategory/{cid}", "id": cid, "key": s.category,
                    "colorName": colour, "name": cname}}

    def priority(self) -> dict[str, Any]:
        return {"self": f"{self.api}/priority/3", "iconUrl":
                f"{self.base}/images/icons/priorities/medium.svg", "name": "Medium", "id": "3"}

    def linked(self, key: str) -> dict[str, Any]:
        """The short form of an issue inside another: links and parent."""
        other = self.w.issues[key]
        return {"id": other.id, "key": other.key, "self": f"{self.api}/issue/{other.id}",
                "fields": {"summary": other.summary, "status": self.status(other.status),
                           "priority": self.priority(),
                           "issuetype": self.issuetype(other.type)}}

    def body(self, body: Any) -> Any:
        """A comment body in this version's form: ADF on v3, a string on v2."""
        if self.v == "3":
            return body if isinstance(body, dict) else text_to_adf(str(body))
        return adf_to_text(body) if isinstance(body, dict) else body

    def comment(self, issue: Issue, c: Comment, properties: bool = False) -> dict[str, Any]:
        """A comment; ``properties`` (expanded, or just set by the request) as EntityProperty
        objects."""
        out: dict[str, Any] = {
            "self": f"{self.api}/issue/{issue.id}/comment/{c.id}", "id": c.id,
            "author": self.user(self.w.users.get(c.author)), "body": self.body(c.body),
            "updateAuthor": self.user(self.w.users.get(c.update_author or c.author)),
            "created": self.time(c.created), "updated": self.time(c.updated)}
        if self.cloud:
            out["jsdPublic"] = True
        if properties:
            out["properties"] = [{"key": k, "value": v} for k, v in c.properties.items()]
        return out

    def field_value(self, issue: Issue, fid: str) -> Any:
        w = self.w
        if fid == "summary":
            return issue.summary
        if fid == "description":
            if not issue.description:
                return None
            return text_to_adf(issue.description) if self.v == "3" else issue.description
        if fid == "issuetype":
            return self.issuetype(issue.type)
        if fid == "status":
            return self.status(issue.status)
        if fid in ("assignee", "reporter"):
            return self.user(w.users.get(getattr(issue, fid) or ""))
        if fid == "project":
            return self.project(w.projects[issue.project])
        if fid == "labels":
            return list(issue.labels)
        if fid == "components":
            return [{"self": f"{self.api}/component/{_number(c) % 90000 + 10000}",
                     "id": str(_number(c) % 90000 + 10000), "name": c}
                    for c in issue.components]
        if fid == "parent":
            return self.linked(issue.parent) if issue.parent in w.issues else None
        if fid == "issuelinks":
            out = []
            for link, side in w.links_of(issue.key):
                t = w.link_types[link.type]
                other = link.target if side == "outwardIssue" else link.source
                out.append({"id": link.id, "self": f"{self.api}/issueLink/{link.id}",
                            "type": {"id": t.id, "name": t.name, "inward": t.inward,
                                     "outward": t.outward,
                                     "self": f"{self.api}/issueLinkType/{t.id}"},
                            side: self.linked(other)})
            return out
        if fid in ("created", "updated"):
            return self.time(getattr(issue, fid))
        if fid == "resolutiondate":
            return self.time(issue.resolved)
        if fid == "comment":
            comments = [self.comment(issue, c) for c in issue.comments]
            return {"comments": comments, "self": f"{self.api}/issue/{issue.id}/comment",
                    "maxResults": len(comments), "total": len(comments), "startAt": 0}
        return issue.custom.get(fid)

    def issue(self, issue: Issue, fields: list[str], properties: list[str] | None
              ) -> dict[str, Any]:
        """An IssueBean with exactly ``fields`` (ids, already expanded) and ``properties``."""
        out: dict[str, Any] = {"expand": CLOUD_EXPAND if self.cloud else DC_EXPAND,
                               "id": issue.id, "self": f"{self.api}/issue/{issue.id}",
                               "key": issue.key}
        out["fields"] = {fid: self.field_value(issue, fid) for fid in fields}
        if properties is not None:
            out["properties"] = {k: issue.properties[k] for k in properties
                                 if k in issue.properties}
        return out

    def expand_fields(self, requested: list[str], default: tuple[str, ...]) -> list[str]:
        """Jira's field selection: ids, ``*all``, ``*navigable``, ``-id`` to drop one."""
        known = list(self.w.fields)
        chosen: list[str] = []
        names = requested or list(default)
        for name in names:
            if name in ("*all", "*navigable"):
                chosen += [f for f in known if name == "*all" or f in NAVIGABLE
                           or f.startswith("customfield_")]
            elif name in self.w.fields:
                chosen.append(name)
        dropped = {n[1:] for n in names if n.startswith("-")}
        return [f for f in dict.fromkeys(chosen) if f not in dropped]

    def field_list(self) -> list[dict[str, Any]]:
        out = []
        for f in self.w.fields.values():
            schema: dict[str, Any] = {"type": f.type}
            if f.items:
                schema["items"] = f.items
            if f.is_custom:
                schema.update(custom=f.custom, customId=int(f.id.split("_")[1]))
            else:
                schema["system"] = f.id
            entry: dict[str, Any] = {"id": f.id, "name": f.name, "custom": f.is_custom,
                                     "orderable": f.id not in ("created", "updated",
                                                               "issuelinks"),
                                     "navigable": True, "searchable": True,
                                     "clauseNames": f.clause_names, "schema": schema}
            if self.cloud:
                entry["key"] = f.id
            out.append(entry)
        return out

    def server_info(self) -> dict[str, Any]:
        now = self.time(self.w.now())
        common = {"baseUrl": self.base, "serverTime": now, "scmInfo":
                  hashlib.sha1(self.w.flavour.encode()).hexdigest(), "serverTitle": "Jira"}
        if self.cloud:
            return {**common, "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                    "deploymentType": "Cloud", "buildNumber": 100284,
                    "buildDate": "2025-11-20T00:00:00.000+0000",
                    "serverTimeZone": self.w.time_zone}
        return {**common, "version": "9.12.15", "versionNumbers": [9, 12, 15],
                "deploymentType": "Server", "buildNumber": 9120015,
                "buildDate": "2024-10-01T00:00:00.000+0000", "databaseBuildNumber": 9120015}

    def myself(self) -> dict[str, Any]:
        me = self.user(self.w.me) or {}
        groups = {"size": 1, "items": []}
        if self.cloud:
            return {**me, "groups": groups, "applicationRoles": {"size": 1, "items": []},
                    "expand": "groups,applicationRoles"}
        return {**me, "locale": "en_US", "groups": groups,
                "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"}

    def project_detail(self, project: Project) -> dict[str, Any]:
        out = self.project(project)
        out.update(expand="description,lead,issueTypes,url,projectKeys,permissions,insight",
                   description="", lead=self.user(self.w.me),
                   issueTypes=[self.issuetype(n) for n in self.w.types],
                   assigneeType="UNASSIGNED", versions=[], components=[],
                   roles={}, properties={})
        if self.cloud:
            out.update(style="classic", isPrivate=False)
        return out
