"""Tether's repository webhooks on GitHub: listed, made and removed through the REST API
(the token needs admin on each repository), one per repository, signed with the secret in
``$webhook_secret_env``."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from github import Github
from tether.sdk import Hook, SourceError

from .client import GitHubClient
from .options import GitHubOptions

EVENTS = ("issues", "issue_comment", "pull_request", "label")


def listed(client: GitHubClient, options: GitHubOptions, url: str) -> list[Hook]:
    """The hooks of the source's repositories that post to ``url``."""
    found = []
    for repo in options.repos:
        for hook in client.call(partial(_listed, repo=repo), f"listing the webhooks of {repo}",
                                repo):
            if hook.config.get("url") == url:
                found.append(Hook(str(hook.id), repo, url, tuple(hook.events)))
    return found


def install(client: GitHubClient, options: GitHubOptions, url: str) -> list[Hook]:
    """A JSON webhook posting to ``url`` on each repository that has none yet."""
    secret = os.environ.get(options.webhook_secret_env, "").strip()
    if not secret:
        raise SourceError(f"GitHub: no webhook secret: set ${options.webhook_secret_env} to a "
                          "long random string (the same value tether serve will check)")
    have = {hook.scope for hook in listed(client, options, url)}
    config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
    made = []
    for repo in options.repos:
        if repo in have:
            continue
        hook = client.call(partial(_create, repo=repo, config=config),
                           f"adding a webhook to {repo}", repo)
        made.append(Hook(str(hook.id), repo, url, tuple(hook.events)))
    return made


def remove(client: GitHubClient, options: GitHubOptions, url: str) -> list[Hook]:
    """Delete the hooks posting to ``url``."""
    gone = listed(client, options, url)
    for hook in gone:
        client.call(partial(_delete, hook=hook), f"removing webhook {hook.id} from {hook.scope}",
                    hook.scope)
    return gone


def _listed(gh: Github, repo: str) -> list[Any]:
    return list(gh.get_repo(repo).get_hooks())


def _create(gh: Github, repo: str, config: dict[str, str]) -> Any:
    return gh.get_repo(repo).create_hook("web", config, list(EVENTS), active=True)


def _delete(gh: Github, hook: Hook) -> None:
    gh.get_repo(hook.scope).get_hook(int(hook.id)).delete()
