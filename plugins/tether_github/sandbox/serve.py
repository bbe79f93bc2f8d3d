"""The GitHub sandbox plugin: a fake GitHub on 127.0.0.1 seeded from a workspace file."""

from __future__ import annotations

import json
from pathlib import Path

from tether.sandbox import SandboxServer
from tether.sdk import Clock, Sandbox, TetherError

from ..normalise import split_key
from . import snapshot
from .api import GitHubApi
from .hooks import HookDelivery
from .seed import find_seed, load_seed, read_seed
from .world import World

STATE_FILE = "github-sandbox.json"
TOKEN_ENV = "TETHER_SANDBOX_GITHUB_TOKEN"  # never a real token's variable, so nothing clashes
HOOK_SECRET_ENV = "TETHER_SANDBOX_GITHUB_HOOK_SECRET"
HOOK_SECRET = "tether-sandbox-webhook-secret"  # signs deliveries to loopback only


class GitHubSandbox(Sandbox):
    """Serves ``<seed>/github.yaml`` until :meth:`stop`; its state lives in
    ``<workdir>/github-sandbox.json``, saved after every write, so a restart keeps them."""

    type_name = "github"

    def __init__(self) -> None:
        self.server: SandboxServer | None = None
        self.world: World | None = None
        self.api: GitHubApi | None = None
        self.env: dict[str, str] = {}

    def start(self, seed: Path, workdir: Path) -> dict:
        """Serve the state a previous run left in ``workdir``, else the seed; return options
        for a github source (url, every repo, token_env). ``env`` then holds a token the
        sandbox accepts under that variable; nothing is put in ``os.environ``."""
        world = World(Clock())
        state = workdir / STATE_FILE
        if state.is_file():
            try:
                enterprise = snapshot.load(json.loads(state.read_text(encoding="utf-8")), world)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise TetherError(f"{state}: cannot restore the GitHub sandbox ({exc}); "
                                  "delete it to start again from the seed") from None
        else:
            spec = read_seed(find_seed(seed))
            load_seed(spec, world)
            enterprise = spec.enterprise
        if not world.tokens:
            raise TetherError("The GitHub sandbox would accept no token: list one under "
                              f"`tokens` in the seed (and delete {state} if it exists)")
        snapshot.save(world, state, enterprise)
        api = GitHubApi(world, prefix="/api/v3" if enterprise else "",
                        on_write=lambda: snapshot.save(world, state, enterprise))
        self.world = world
        self.api = api
        self.server = SandboxServer(api).start()
        api.deliveries.base_url = self.server.base_url
        writer = next((t for t, tok in world.tokens.items() if tok.write), None)
        self.env = {TOKEN_ENV: writer or next(iter(world.tokens)), HOOK_SECRET_ENV: HOOK_SECRET}
        repos = [repo.full_name for repo in world.repos.values()]
        return {"url": self.server.base_url + api.prefix, "repos": repos, "token_env": TOKEN_ENV,
                "webhook_secret_env": HOOK_SECRET_ENV}

    def comments(self) -> dict[str, list[str]]:
        assert self.world is not None, "start the sandbox first"
        world = self.world
        return {f"{repo.full_name}#{number}": [world.comments[c].body for c in issue.comments]
                for repo in world.repos.values() for number, issue in repo.issues.items()}

    def deliver(self) -> list[HookDelivery]:
        """Post the webhook deliveries queued since the last call (people's edits and API
        writes, to every hook registered on their repository), signed as GitHub signs them;
        returns them with the answers. Nothing is sent until this is called."""
        assert self.api is not None, "start the sandbox first"
        return self.api.deliveries.deliver()

    def close_as_person(self, key: str) -> None:
        assert self.world is not None, "start the sandbox first"
        world = self.world
        name, number = split_key(key)
        repo = world.repo(name)
        if repo is None or number not in repo.issues:
            raise TetherError(f"The GitHub sandbox has no issue {key}.")
        tether = world.tokens[self.env[TOKEN_ENV]].login
        person = next(login for login in world.users if login != tether and "/" not in login)
        world.edit_issue(repo.issues[number], by=person, state="closed")

    def stop(self) -> None:
        """Stop serving; the state file in ``workdir`` stays."""
        if self.server is not None:
            self.server.stop()
            self.server = None
