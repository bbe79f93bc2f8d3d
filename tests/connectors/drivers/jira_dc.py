"""Suite driver for Jira Data Center: REST v2, offset search, bearer PAT, wiki comments."""

from __future__ import annotations

from pathlib import Path

from .jira_cloud import JiraDriver


def make_driver(tmp_path: Path) -> JiraDriver:
    return JiraDriver(tmp_path, "datacenter")
