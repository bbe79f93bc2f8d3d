"""Jira's part of `tether init`: a Cloud or Data Center source from the site's URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from tether.sdk import InitError, InitOption, InitSource, Starter

_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]+")


class JiraStarter(Starter):
    type_name = "jira"
    options = (
        InitOption("--jira", "URL", "Jira site, e.g. https://acme.atlassian.net (Cloud) or your "
                   "Data Center URL."),
        InitOption("--jira-project", "KEY", "A Jira project key to read; repeat for more. "
                   "Default: OPS.", multiple=True),
    )

    def source(self, values: Mapping[str, Any]) -> InitSource | None:
        url, projects = values.get("jira"), values.get("jira_project") or ()
        if not url:
            return None
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InitError("--jira", f"'{url}' is not a URL; use e.g. https://acme.atlassian.net")
        for key in projects:
            if not _PROJECT_KEY.fullmatch(key):
                raise InitError("--jira-project", f"'{key}' is not a Jira project key (like OPS)")
        cloud = parsed.netloc.endswith(".atlassian.net")
        auth = ("      email: ${JIRA_EMAIL}           # the Atlassian account the API token "
                "belongs to\n      token_env: JIRA_TOKEN          # export JIRA_TOKEN=<API token "
                "from id.atlassian.com>" if cloud else
                "      token_env: JIRA_TOKEN          # export JIRA_TOKEN=<personal access token>")
        yaml = (f"  - name: jira                       # items are referred to as jira:<KEY>, "
                f"e.g. jira:OPS-3\n    type: jira\n    options:\n      url: {url.rstrip('/')}\n"
                f"      flavour: {'cloud' if cloud else 'datacenter'}\n{auth}\n"
                f"      projects: [{', '.join(projects or ('OPS',))}]   # project keys to read")
        if cloud:
            return InitSource(yaml, ("JIRA_TOKEN", "JIRA_EMAIL"), "jira: <accountId>")
        return InitSource(yaml, ("JIRA_TOKEN",), "jira: <username>")
