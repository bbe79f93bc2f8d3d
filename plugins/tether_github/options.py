"""Options of a ``github`` source, as written under ``sources:`` in tether.yaml."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from tether.sdk import Options, variable_name

_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9_.-]+")
_COLOR = r"^[0-9a-fA-F]{6}$"


class GitHubOptions(Options):
    """Where the issues are and how Tether may treat them."""

    url: str = Field("https://api.github.com", description=(
        "REST API base URL: https://api.github.com, or https://HOST/api/v3 for GitHub "
        "Enterprise Server."))
    repos: list[str] = Field(min_length=1, description=(
        "Repositories to pull, as owner/name; at least one."))
    token_env: str = Field("GITHUB_TOKEN", min_length=1, description=(
        "Name of the environment variable holding the token (a fine-grained token with "
        "Issues: read and write, or a classic token with the repo scope)."))
    include_pull_requests: bool = Field(True, description=(
        "Also pull pull requests (GitHub lists them among issues); false keeps issues only."))
    state: Literal["open", "closed", "all"] = Field("all", description=(
        "Which items to pull: open, closed or all."))
    kpi_label_color: str = Field("0e8a16", pattern=_COLOR, description=(
        "Colour (6 hex digits) of the KPI labels Tether creates, e.g. tether:kpi:nps."))
    signal_label_color: str = Field("d93f0b", pattern=_COLOR, description=(
        "Colour (6 hex digits) of the drift-signal labels Tether creates, e.g. "
        "tether:untethered."))
    webhook_secret_env: str = Field("GITHUB_WEBHOOK_SECRET", description=(
        "Name of the environment variable holding the secret of the repository webhooks "
        "that send this source's events to `tether serve` (the hook's Secret field); "
        "deliveries not signed with it are refused. Never put the secret itself here."))
    max_rate_limit_wait: float = Field(3600.0, ge=0, description=(
        "Longest wait in seconds for an exhausted rate limit to reset before giving up "
        "(GitHub's primary window is one hour)."))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"https?://[^/]+", value):
            raise ValueError("must start with https:// (or http://), e.g. https://api.github.com")
        return value.rstrip("/")

    @field_validator("repos")
    @classmethod
    def _repos(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if not _REPO.fullmatch(r)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: write each repository as owner/name")
        dupes = sorted({r for r in value if [x.lower() for x in value].count(r.lower()) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed more than once")
        return value

    @field_validator("webhook_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return variable_name(value, "GITHUB_WEBHOOK_SECRET")
