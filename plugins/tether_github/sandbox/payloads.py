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

from .world import ROLES, Comment, Hook, Issue, Label, Milestone, Repo, User, World, node_id

# The templated URLs of a repository payload, in the order real payloads list them.
_REPO_URLS = (
    ("archive_url", "/{archive_format}{/ref}"), ("assignees_url", "/assignees{/user}"),
    ("blobs_url", "/git/blobs{/sha}"), ("branches_url", "/branches{/branch}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("comments_url", "/comments{/number}"), ("commits_url", "/commits{/sha}"),
    ("compare_url", "/compare/{base}...{head}"), ("contents_url", "/contents/{+path}"),
    ("contributors_url", "/contributors"), ("deployments_url", "/deployments"),
    ("downloads_url", "/downloads"), ("events_url", "/events"), ("forks_url", "/forks"),
    ("git_commits_url", "/git/commits{/sha}"), ("git_refs_url", "/git/refs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"))
_REPO_URLS_AFTER_GIT = (
    ("issue_comment_url", "/issues/comments{/number}"),
    ("issue_events_url", "/issues/events{/number}"), ("issues_url", "/issues{/number}"),
    ("keys_url", "/keys{/key_id}"), ("labels_url", "/labels{/name}"),
    ("languages_url", "/languages"), ("merges_url", "/merges"),
    ("milestones_url", "/milestones{/number}"),
    ("notifications_url", "/notifications{?since,all,participating}"),
    ("pulls_url", "/pulls{/number}"), ("releases_url", "/releases{/id}"))


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

    def me(self, login: str) -> dict[str, Any]:
        """GET /user: the token's user, with its public profile (private-user shape)."""
        user = self.world.user(login)
        out = self.user(user) or {}
        repos = [r for r in self.world.repos.values() if r.owner == login]
        return {**out, "name": user.name, "company": None, "blog": "", "location": None,
                "email": None, "hireable": None, "bio": None, "twitter_username": None,
                "notification_email": None, "public_repos": 0, "public_gists": 0,
                "followers": 0, "following": 0, "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2020-01-01T00:00:00Z", "private_gists": 0,
                "total_private_repos": len(repos), "owned_private_repos": len(repos),
                "disk_usage": 0, "collaborators": 0, "two_factor_authentication": True,
                "plan": {"name": "pro", "space": 976562499, "private_repos": 9999,
                         "collaborators": 0}}

    def repository(self, repo: Repo, login: str) -> dict[str, Any]:
        """GET /repos/{owner}/{repo} (full-repository shape); ``permissions`` are what
        ``login``'s repository role allows, as GitHub reports the authenticated user's."""
        url = f"{self.api}/repos/{repo.full_name}"
        web = f"{self.web}/{repo.full_name}"
        host = self.web.split("://", 1)[-1]
        items = list(repo.issues.values())
        created = min((i.created for i in items), default=self.world.now())
        updated = max((i.updated for i in items), default=created)
        opened = sum(1 for i in items if i.state == "open")
        rank = ROLES.index(repo.role(login))
        out: dict[str, Any] = {
            "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
            "full_name": repo.full_name, "owner": self.user(repo.owner), "private": True,
            "html_url": web, "description": None, "fork": False, "url": url}
        out.update({key: url + suffix for key, suffix in _REPO_URLS})
        out["git_url"] = f"git://{host}/{repo.full_name}.git"
        out.update({key: url + suffix for key, suffix in _REPO_URLS_AFTER_GIT})
        out.update({
            "ssh_url": f"git@{host}:{repo.full_name}.git", "stargazers_url": f"{url}/stargazers",
            "statuses_url": f"{url}/statuses/{{sha}}", "subscribers_url": f"{url}/subscribers",
            "subscription_url": f"{url}/subscription", "tags_url": f"{url}/tags",
            "teams_url": f"{url}/teams", "trees_url": f"{url}/git/trees{{/sha}}",
            "clone_url": f"{web}.git", "mirror_url": None, "hooks_url": f"{url}/hooks",
            "svn_url": web, "homepage": None, "language": None, "forks_count": 0,
            "stargazers_count": 0, "watchers_count": 0, "size": 0, "default_branch": "main",
            "open_issues_count": opened, "is_template": False, "topics": [],
            "has_issues": True, "has_projects": True, "has_wiki": False, "has_pages": False,
            "has_downloads": True, "has_discussions": False, "archived": False,
            "disabled": False, "visibility": "private", "pushed_at": stamp(updated),
            "created_at": stamp(created), "updated_at": stamp(updated),
            "permissions": {"admin": rank >= 4, "maintain": rank >= 3, "push": rank >= 2,
                            "triage": rank >= 1, "pull": True}})
        if rank >= 2:  # merge settings show only to callers who may write contents
            out.update({"allow_rebase_merge": True, "temp_clone_token": None,
                        "allow_squash_merge": True, "allow_auto_merge": False,
                        "delete_branch_on_merge": False, "allow_merge_commit": True})
        out.update({"allow_forking": False, "web_commit_signoff_required": False,
                    "subscribers_count": 0, "network_count": 0, "license": None, "forks": 0,
                    "open_issues": opened, "watchers": 0})
        return out

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

    # -- webhook payload parts ---------------------------------------------------------------

    def hook(self, repo: Repo, hook: Hook) -> dict[str, Any]:
        """A repository webhook as GET .../hooks/{id} shows it (the secret masked)."""
        url = f"{self.api}/repos/{repo.full_name}/hooks/{hook.id}"
        config: dict[str, Any] = {"content_type": hook.content_type,
                                  "insecure_ssl": hook.insecure_ssl, "url": hook.url}
        if hook.secret:
            config["secret"] = "********"  # GitHub never shows a hook's secret again
        return {
            "type": "Repository", "id": hook.id, "name": "web", "active": hook.active,
            "events": list(hook.events), "config": config,
            "updated_at": stamp(hook.updated), "created_at": stamp(hook.created), "url": url,
            "test_url": f"{url}/test", "ping_url": f"{url}/pings",
            "deliveries_url": f"{url}/deliveries",
            "last_response": {"code": hook.last_code, "status": hook.last_status,
                              "message": hook.last_message},
        }

    def hook_repository(self, repo: Repo) -> dict[str, Any]:
        """The ``repository`` of a webhook payload: the repository without the caller's
        permissions (a delivery has no caller), with its custom properties."""
        out = self.repository(repo, repo.owner)
        for key in ("permissions", "allow_rebase_merge", "temp_clone_token",
                    "allow_squash_merge", "allow_auto_merge", "delete_branch_on_merge",
                    "allow_merge_commit", "allow_forking", "subscribers_count",
                    "network_count"):
            out.pop(key, None)
        out["custom_properties"] = {}
        return out

    def pull(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """A pull request as pull_request webhooks carry it (the pulls API shape)."""
        api = f"{self.api}/repos/{repo.full_name}"
        url = f"{api}/pulls/{issue.number}"
        html = f"{self.web}/{repo.full_name}/pull/{issue.number}"
        assignees = [self.user(login) for login in issue.assignees]
        sha = f"{issue.id:040x}"  # a stand-in commit: Tether never reads the code side

        def ref(name: str) -> dict[str, Any]:
            return {"label": f"{repo.owner}:{name}", "ref": name, "sha": sha,
                    "user": self.user(repo.owner), "repo": self.hook_repository(repo)}

        return {
            "url": url, "id": issue.id, "node_id": node_id("Issue", issue.id),
            "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{issue.number}", "number": issue.number,
            "state": issue.state, "locked": issue.locked, "title": issue.title,
            "user": self.user(issue.user), "body": issue.body,
            "created_at": stamp(issue.created), "updated_at": stamp(issue.updated),
            "closed_at": stamp(issue.closed), "merged_at": stamp(issue.merged),
            "merge_commit_sha": sha if issue.merged else None,
            "assignee": assignees[0] if assignees else None, "assignees": assignees,
            "requested_reviewers": [], "requested_teams": [],
            "labels": self.issue_labels(repo, issue),
            "milestone": self.milestone(repo, repo.milestones.get(issue.milestone or 0)),
            "draft": issue.draft, "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{issue.number}/comments",
            "statuses_url": f"{api}/statuses/{sha}", "head": ref(f"item-{issue.number}"),
            "base": ref("main"),
            "_links": {"self": {"href": url}, "html": {"href": html},
                       "issue": {"href": f"{api}/issues/{issue.number}"},
                       "comments": {"href": f"{api}/issues/{issue.number}/comments"},
                       "review_comments": {"href": f"{url}/comments"},
                       "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                       "commits": {"href": f"{url}/commits"},
                       "statuses": {"href": f"{api}/statuses/{sha}"}},
            "author_association": self.association(repo, issue.user), "auto_merge": None,
            "active_lock_reason": None, "merged": issue.merged is not None,
            "mergeable": None, "rebaseable": None, "mergeable_state": "unknown",
            "merged_by": self.user(issue.closed_by) if issue.merged else None,
            "comments": len(issue.comments), "review_comments": 0,
            "maintainer_can_modify": False, "commits": 1, "additions": 0, "deletions": 0,
            "changed_files": 0,
        }
