"""The ``jira`` sandbox: a fake Jira site on 127.0.0.1, seeded from a workspace file."""

from __future__ import annotations

import json
from pathlib import Path

from tether.sandbox import SandboxServer
from tether.sdk import Sandbox, TetherError

from ..markup import adf_to_text
from ..webhooks import COMMENT_EVENTS, ISSUE_EVENTS, LINK_EVENTS
from . import snapshot
from .api import HookDelivery, JiraSandboxApi
from .seed import load, seed_file
from .state import World

STATE_FILE = "jira-sandbox.json"
TOKEN_ENV = "TETHER_SANDBOX_JIRA_TOKEN"  # never a real token's variable, so nothing clashes
HOOK_SECRET_ENV = "TETHER_SANDBOX_JIRA_HOOK_SECRET"
HOOK_SECRET = "tether-sandbox-webhook-secret"  # signs deliveries to loopback only
HOOK_NAME = "Tether"


class JiraSandbox(Sandbox):
    """Serves ``<seed>/jira.yaml`` (see ``tether_jira.sandbox.seed``) at a port the OS picks; its
    state lives in ``<workdir>/jira-sandbox.json``, saved after every write, so a restart
    keeps them."""

    type_name = "jira"

    def __init__(self) -> None:
        self.server: SandboxServer | None = None
        self.world: World | None = None
        self.api: JiraSandboxApi | None = None
        self.env: dict[str, str] = {}

    def start(self, seed: Path, workdir: Path) -> dict:
        """Serve the state a previous run left in ``workdir``, else the seed; return options
        for a jira source: url, flavour, email (Cloud), every project and token_env. ``env``
        then holds the site's token under that variable; nothing is put in ``os.environ``."""
        state = workdir / STATE_FILE
        if state.is_file():
            try:
                world, rate_limit = snapshot.load(json.loads(state.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise TetherError(f"{state}: cannot restore the Jira sandbox ({exc}); "
                                  "delete it to start again from the seed") from None
        else:
            world, rate_limit = load(seed_file(seed))
        snapshot.save(world, rate_limit, state)
        self.world = world
        api = JiraSandboxApi(world, rate_limit,
                             on_change=lambda: snapshot.save(world, rate_limit, state))
        self.api = api
        self.server = SandboxServer(api).start()
        api.deliveries.base_url = self.server.base_url
        self.env = {TOKEN_ENV: world.token, HOOK_SECRET_ENV: HOOK_SECRET}
        options: dict = {"url": self.server.base_url, "flavour": world.flavour,
                         "projects": list(world.projects), "token_env": TOKEN_ENV,
                         "webhook_secret_env": HOOK_SECRET_ENV}
        if world.flavour == "cloud" and world.me is not None:
            options["email"] = world.me.email
        return options

    def comments(self) -> dict[str, list[str]]:
        assert self.world is not None, "start the sandbox first"
        return {key: [adf_to_text(c.body) if isinstance(c.body, dict) else str(c.body)
                      for c in issue.comments] for key, issue in self.world.issues.items()}

    def deliver(self) -> list[HookDelivery]:
        """Post the admin-webhook deliveries queued since the last call (people's edits and
        API writes, to every webhook registered at /rest/webhooks/1.0/webhook that covers
        them), signed as Jira signs them; returns them with the answers. Nothing is sent
        until this is called."""
        assert self.api is not None, "start the sandbox first"
        return self.api.deliver()

    def hook_by_hand(self, url: str, remove: bool = False) -> None:
        """The admin webhook the README's Jira steps make: issue, comment and issue-link
        events, signed with the sandbox's secret."""
        world = self._world()
        for hook in [h for h in world.hooks.values() if h.url == url]:
            del world.hooks[hook.id]
        if not remove:
            world.add_hook(HOOK_NAME, url, [*ISSUE_EVENTS, *COMMENT_EVENTS, *LINK_EVENTS],
                           secret=HOOK_SECRET)

    def close_as_person(self, key: str) -> None:
        world = self._world()
        if key not in world.issues:
            raise TetherError(f"The Jira sandbox has no issue {key}.")
        done = next(s.name for s in world.statuses.values() if s.category == "done")
        person = next(u.account_id for u in world.users.values() if u is not world.me)
        world.edit(key, person, status=done)

    def _world(self) -> World:
        assert self.world is not None, "start the sandbox first"
        return self.world

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
