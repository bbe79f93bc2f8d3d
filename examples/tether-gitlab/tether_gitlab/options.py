"""Options of a ``gitlab`` source, as written under ``sources:`` in tether.yaml."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from pydantic import Field, field_validator
from tether.sdk import Options

# A numeric project id, or a path: group[/subgroup...]/project.
PROJECT = re.compile(r"\d+|[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+")


class GitLabOptions(Options):
    """Which project's issues, on which GitLab, with which token."""

    url: str = Field(default="https://gitlab.com", description=(
        "Base URL of the GitLab instance (https://gitlab.com, or your self-managed host); "
        "the connector adds /api/v4."))
    project: str = Field(description=(
        "The project: its numeric id, or its path like group/subgroup/project "
        "(URL-encoded or not)."))
    token_env: str = Field(default="GITLAB_TOKEN", min_length=1, description=(
        "Name of the environment variable holding a personal, group or project access token "
        "with the api scope and at least the Reporter role; sent as PRIVATE-TOKEN, never "
        "logged."))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"https?://[^/]+", value):
            raise ValueError("must start with https:// (or http://), e.g. https://gitlab.com")
        return value.rstrip("/").removesuffix("/api/v4")

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        plain = unquote(value).strip("/")
        if not PROJECT.fullmatch(plain):
            raise ValueError(f"{value!r}: write the project as its id (like 42) or its path "
                             "(like acme/widgets)")
        return plain

    @property
    def project_ref(self) -> str:
        """The project as the API's ``:id`` takes it: the id, or the URL-encoded path."""
        return quote(self.project, safe="")
