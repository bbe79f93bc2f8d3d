"""The GitHub sandbox plugin: a fake GitHub on 127.0.0.1 seeded from a workspace file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tether.clock import Clock
from tether.connector import Sandbox
from tether.errors import TetherError
from tether.sandboxkit import SandboxServer

from . import snapshot
from .sandbox_api import GitHubApi
from .seed import find_seed, load_seed, read_seed
from .world import World

STATE_FILE = "github-sandbox.json"
TOKEN_ENV = "TETHER_SANDBOX_GITHUB_TOKEN"  # never a real token's variable, so nothing clashes


class GitHubSandbox(Sandbox):
    """Serves ``<seed>/github.yaml`` until :meth:`stop`; writes persist in ``<workdir>``."""

    type_name = "github"

    def __init__(self) -> None:
        self.server: SandboxServer | None = None
        self.world: World | None = None

    def start(self, seed: Path, workdir: Path) -> dict:
        """Serve the seed (or the state a previous run left in ``workdir``); return options
        for a github source: its url, every seeded repo and a token variable set to a
        token the sandbox accepts."""
        spec = read_seed(find_seed(seed))
        world = World(Clock())
        repos = load_seed(spec, world)
        state = workdir / STATE_FILE
        if state.is_file():
            try:
                snapshot.load(json.loads(state.read_text(encoding="utf-8")), world)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise TetherError(f"{state}: cannot restore the GitHub sandbox ({exc}); "
                                  "delete it to start again from the seed") from None
        api = GitHubApi(world, prefix="/api/v3" if spec.enterprise else "",
                        on_write=lambda: snapshot.save(world, state))
        self.world = world
        self.server = SandboxServer(api).start()
        os.environ.setdefault(TOKEN_ENV, next(iter(spec.tokens)))
        return {"url": self.server.base_url + api.prefix, "repos": repos, "token_env": TOKEN_ENV}

    def stop(self) -> None:
        """Stop serving; the state file in ``workdir`` stays."""
        if self.server is not None:
            self.server.stop()
            self.server = None
