"""The GitLab sandbox: a fake GitLab on 127.0.0.1, seeded from ``<seed>/gitlab.yaml``."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import yaml
from tether.sandbox import SandboxServer
from tether.sdk import Clock, Sandbox, TetherError

from .api import GitLabApi
from .world import World

SEED_FILE = "gitlab.yaml"
STATE_FILE = "gitlab-sandbox.json"
TOKEN_ENV = "TETHER_SANDBOX_GITLAB_TOKEN"  # never a real token's variable

__all__ = ["GitLabApi", "GitLabSandbox", "World"]


class GitLabSandbox(Sandbox):
    """Serves the seed until :meth:`stop`; the state is saved in ``<workdir>/gitlab-sandbox.json``
    after every write, so a restarted sandbox keeps Tether's labels and notes."""

    type_name = "gitlab"

    def __init__(self) -> None:
        self.server: SandboxServer | None = None
        self.world = World(Clock())
        self.env: dict[str, str] = {}

    def start(self, seed: Path, workdir: Path) -> dict:
        self.world = World(Clock())
        state = workdir / STATE_FILE
        source = state if state.is_file() else seed / SEED_FILE
        try:
            self.world.load(yaml.safe_load(source.read_text(encoding="utf-8")) or {})
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise TetherError(f"{source}: cannot load the GitLab sandbox ({exc})") from None
        if not self.world.projects:
            raise TetherError(f"{source}: the GitLab sandbox needs a project under `projects`")
        save = partial(self._save, state)
        save()
        self.server = SandboxServer(GitLabApi(self.world, on_write=save)).start()
        self.env = {TOKEN_ENV: next(iter(self.world.tokens))}
        project = next(iter(self.world.projects.values()))
        return {"url": self.server.base_url, "project": project.path, "token_env": TOKEN_ENV}

    def _save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.world.dump(), ensure_ascii=False), encoding="utf-8")
        temporary.replace(path)  # a crash leaves the old state or the new one

    def comments(self) -> dict[str, list[str]]:
        project = next(iter(self.world.projects.values()))
        return {str(iid): [n.body for n in issue.notes if not n.system]
                for iid, issue in project.issues.items()}

    def stop(self) -> None:
        """Stop serving; the state file stays."""
        if self.server is not None:
            self.server.stop()
            self.server = None
