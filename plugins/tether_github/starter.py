"""GitHub's part of `tether init`: a source reading the repositories named."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tether.sdk import InitError, InitOption, InitSource, Starter

_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class GitHubStarter(Starter):
    type_name = "github"
    options = (
        InitOption("--github", "ORG/REPO", "A GitHub repository; repeat for more.", multiple=True),
        InitOption("--github-url", "URL", "GitHub Enterprise Server API root, e.g. "
                   "https://github.example.com/api/v3."),
    )

    def source(self, values: Mapping[str, Any]) -> InitSource | None:
        repos, url = values.get("github") or (), values.get("github_url")
        if not repos:
            return None
        for repo in repos:
            if not _REPO.fullmatch(repo):
                raise InitError("--github", f"'{repo}' is not ORG/REPO (like acme/portal)")
        yaml = ("  - name: github                     # items are referred to as "
                "github:owner/name#123\n    type: github\n    options:\n"
                f"      repos: [{', '.join(repos)}]\n"
                "      token_env: GITHUB_TOKEN        # export GITHUB_TOKEN=<token with Issues: "
                "read and write>")
        if url:
            yaml += f"\n      url: {url}          # GitHub Enterprise Server API root"
        return InitSource(yaml, ("GITHUB_TOKEN",), "github: <login>")
