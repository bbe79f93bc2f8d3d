"""The options of a ``jira`` source, as written under ``sources[].options`` in tether.yaml."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator
from tether.sdk import Options, variable_name

CLOUD_STORY_POINTS = "customfield_10016"  # "Story point estimate", the Cloud default
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]+")


class JiraOptions(Options):
    """Where the Jira site is, how to authenticate, and which issues are in scope."""

    url: str = Field(description=(
        "Base URL of the Jira site, e.g. https://your-domain.atlassian.net (Cloud) or "
        "https://jira.example.com (Data Center, with its context path if any). Jira has no "
        "single public URL, so there is no default."))
    flavour: Literal["cloud", "datacenter"] = Field("cloud", description=(
        "cloud: Jira Cloud, REST v3, ADF comments, basic auth with email + API token. "
        "datacenter: Jira Server/Data Center, REST v2, wiki-markup comments, personal access "
        "token sent as a bearer token."))
    email: str | None = Field(None, description=(
        "Cloud only: the Atlassian account email the API token belongs to."))
    token_env: str = Field("JIRA_TOKEN", description=(
        "Name of the environment variable holding the API token (Cloud) or personal access "
        "token (Data Center). The token itself never goes in tether.yaml."))
    projects: list[str] = Field(default_factory=list, description=(
        "Project keys in scope, e.g. [OPS, WEB]. Combined with `jql` (AND) when both are set; "
        "at least one of the two is required."))
    jql: str | None = Field(None, description=(
        "A JQL restriction selecting the issues in scope, e.g. 'project = OPS AND type != "
        "Epic'. A trailing ORDER BY is ignored: Tether orders results itself."))
    story_points_field: str | None = Field(None, description=(
        "Field id (or name) holding story points, read into Task.estimate. Default: "
        f"{CLOUD_STORY_POINTS} on Cloud; on Data Center the field named 'Story Points'."))
    epic_link_field: str | None = Field(None, description=(
        "Data Center: id (or name) of the Epic Link custom field, read into Task.epic. "
        "Default: discovered from /rest/api/2/field by its Jira Software type."))
    custom_fields: dict[str, str] = Field(default_factory=dict, description=(
        "Extra fields to pull into Task.custom, as {name rules use: field id or field name}, "
        "e.g. {team: customfield_10050}."))
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for each HTTP response.")
    webhook_secret_env: str = Field("JIRA_WEBHOOK_SECRET", description=(
        "Name of the environment variable holding the secret of the Jira admin webhook that "
        "sends this source's events to `tether serve` (the webhook's Secret field); "
        "deliveries not signed with it are refused. Never put the secret itself here."))

    @field_validator("projects")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        bad = [k for k in keys if not _PROJECT_KEY.fullmatch(k)]
        if bad:
            raise ValueError(f"not Jira project keys (upper-case, like OPS): {', '.join(bad)}")
        return keys

    @field_validator("webhook_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return variable_name(value, "JIRA_WEBHOOK_SECRET")

    @model_validator(mode="after")
    def _scope_and_auth(self) -> JiraOptions:
        if not self.projects and not (self.jql or "").strip():
            raise ValueError("set `projects` (a list of project keys) or `jql` to choose the "
                             "issues in scope")
        if self.flavour == "cloud" and not self.email:
            raise ValueError("Jira Cloud needs `email`: the account the API token belongs to")
        return self

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def api_version(self) -> str:
        """REST v3 on Cloud (ADF bodies), v2 on Data Center (the only version it has)."""
        return "3" if self.flavour == "cloud" else "2"

    @property
    def scope(self) -> str:
        """The scope in words, for error messages."""
        parts = []
        if self.projects:
            parts.append(("project " if len(self.projects) == 1 else "projects ")
                         + ", ".join(self.projects))
        if self.jql:
            parts.append(f"JQL '{self.jql.strip()}'")
        return " and ".join(parts)
