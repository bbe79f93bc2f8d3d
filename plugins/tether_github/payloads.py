"""World objects rendered as GitHub REST payloads (API version 2022-11-28 shapes).

Every URL points at the sandbox: ``api`` is its API root (with ``/api/v3`` on a GHES-style
sandbox) and ``web`` its host root, like ``https://api.github.com`` and ``https://github.com``.
Key order follows real payloads, so diffs against recordings stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .world import Comment, Issue, Label, Milestone, Repo, User, World, node_id


def stamp(value: datetime | None) -> str | None:
    """GitHub's timestamp form: ``2011-04-22T13:33:48Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass(frozen=True)
class Renderer:
    """Renders world objects with URLs on one API root and web root."""

    world: World
    api: str
    web: str
    api_version: str = "2022-11-28"

    def user(self, user: User | str | None) -> dict[str, Any] | None:
        """A simple-user object (None stays None)."""
        if user is None:
            return None
        if isinstance(user, str):
            user = self.world.user(user)
        base = f"{self.api}/users/{user.login}"
        return {
            "login": user.login, "id": user.id, "node_id": node_id("User", user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "", "url": base, "html_url": f"{self.web}/{user.login}",
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs", "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": "User", "user_view_type": "public", "site_admin": False,
        }

    def label(self, repo: Repo, label: Label) -> dict[str, Any]:
        """A label object."""
        return {
            "id": label.id, "node_id": node_id("Label", label.id),
            "url": f"{self.api}/repos/{repo.full_name}/labels/{quote(label.name, safe='')}",
            "name": label.name, "color": label.color, "default": label.default,
            "description": label.description,
        }

    def issue_labels(self, repo: Repo, issue: Issue) -> list[dict[str, Any]]:
        """The label objects on an issue, in the order they were added."""
        return [self.label(repo, repo.labels[name.lower()]) for name in issue.labels]

    def milestone(self, repo: Repo, milestone: Milestone | None) -> dict[str, Any] | None:
        """A milestone object with its open/closed issue counts (None stays None)."""
        if milestone is None:
            return None
        base = f"{self.api}/repos/{repo.full_name}/milestones/{milestone.number}"
        in_it = [i for i in repo.issues.values() if i.milestone == milestone.number]
        return {
            "url": base, "html_url": f"{self.web}/{repo.full_name}/milestone/{milestone.number}",
            "labels_url": f"{base}/labels", "id": milestone.id,
            "node_id": node_id("Milestone", milestone.id), "number": milestone.number,
            "title": milestone.title, "description": milestone.description,
            "creator": self.user(milestone.creator),
            "open_issues": sum(1 for i in in_it if i.state == "open"),
            "closed_issues": sum(1 for i in in_it if i.state == "closed"),
            "state": milestone.state, "created_at": stamp(milestone.created),
            "updated_at": stamp(milestone.updated), "due_on": stamp(milestone.due_on),
            "closed_at": stamp(milestone.closed),
        }

    def reactions(self, url: str) -> dict[str, Any]:
        """An empty reaction rollup for the object at ``url``."""
        return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
                "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}

    def association(self, repo: Repo, login: str) -> str:
        """author_association: OWNER for the repository owner, else MEMBER."""
        return "OWNER" if login == repo.owner else "MEMBER"

    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """An issue as the issues endpoints list it; pull requests carry ``pull_request``."""
        url = f"{self.api}/repos/{repo.full_name}/issues/{issue.number}"
        kind = "pull" if issue.pull_request else "issues"
        html = f"{self.web}/{repo.full_name}/{kind}/{issue.number}"
        assignees = [self.user(login) for login in issue.assignees]
        out: dict[str, Any] = {
            "url": url, "repository_url": f"{self.api}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments",
            "events_url": f"{url}/events", "html_url": html, "id": issue.id,
            "node_id": node_id("Issue", issue.id), "number": issue.number, "title": issue.title,
            "user": self.user(issue.user), "labels": self.issue_labels(repo, issue),
            "state": issue.state, "locked": issue.locked,
            "assignee": assignees[0] if assignees else None, "assignees": assignees,
            "milestone": self.milestone(repo, repo.milestones.get(issue.milestone or 0)),
            "comments": len(issue.comments), "created_at": stamp(issue.created),
            "updated_at": stamp(issue.updated), "closed_at": stamp(issue.closed),
            "author_association": self.association(repo, issue.user),
            "active_lock_reason": None,
            "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
            "body": issue.body, "closed_by": self.user(issue.closed_by),
            "reactions": self.reactions(url), "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None, "state_reason": issue.state_reason,
            "pinned_comment": None,
        }
        if issue.pull_request:
            pulls = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
            out["draft"] = issue.draft
            out["pull_request"] = {"url": pulls, "html_url": html, "diff_url": f"{html}.diff",
                                   "patch_url": f"{html}.patch", "merged_at": stamp(issue.merged)}
        if self.api_version >= "2026-03-10":
            del out["assignee"]  # that version drops the singular assignee
        return out

    def comment(self, comment: Comment) -> dict[str, Any]:
        """An issue comment object."""
        repo = self.world.repo(comment.repo)
        assert repo is not None
        url = f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}"
        issue = repo.issues[comment.number]
        kind = "pull" if issue.pull_request else "issues"
        return {
            "url": url,
            "html_url": f"{self.web}/{repo.full_name}/{kind}/{comment.number}"
                        f"#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{repo.full_name}/issues/{comment.number}",
            "id": comment.id, "node_id": node_id("IssueComment", comment.id),
            "user": self.user(comment.user), "created_at": stamp(comment.created),
            "updated_at": stamp(comment.updated),
            "author_association": self.association(repo, comment.user), "body": comment.body,
            "reactions": self.reactions(url), "performed_via_github_app": None,
            "minimized": None,
        }
