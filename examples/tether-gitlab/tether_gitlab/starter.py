"""GitLab's part of `tether init`: a source reading one project's issues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from tether.sdk import InitError, InitOption, InitSource, Starter

from .options import PROJECT


class GitLabStarter(Starter):
    type_name = "gitlab"
    options = (
        InitOption("--gitlab", "GROUP/PROJECT", "A GitLab project to read: its path or id."),
        InitOption("--gitlab-url", "URL", "A self-managed GitLab, e.g. https://gitlab.example.com "
                   "(default: https://gitlab.com)."),
    )

    def source(self, values: Mapping[str, Any]) -> InitSource | None:
        project, url = values.get("gitlab"), values.get("gitlab_url")
        if not project:
            return None
        if not PROJECT.fullmatch(project):
            raise InitError("--gitlab", f"'{project}' is not a project path or id (like "
                            "acme/widgets or 42)")
        parsed = urlparse(url or "https://gitlab.com")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InitError("--gitlab-url", f"'{url}' is not a URL; use e.g. "
                            "https://gitlab.example.com")
        yaml = ("  - name: gitlab                     # items are referred to as gitlab:<iid>, "
                "e.g. gitlab:12\n    type: gitlab\n    options:\n"
                f"      project: {project}\n"
                "      token_env: GITLAB_TOKEN        # export GITLAB_TOKEN=<token with the api "
                "scope>")
        if url:
            yaml += f"\n      url: {url.rstrip('/')}"
        return InitSource(yaml, ("GITLAB_TOKEN",), "gitlab: <username>")
