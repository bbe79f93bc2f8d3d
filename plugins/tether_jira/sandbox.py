"""The ``jira`` sandbox: a fake Jira site on 127.0.0.1, seeded from a workspace file."""

from __future__ import annotations

from pathlib import Path

from tether.connector import Sandbox
from tether.sandboxkit import SandboxServer

from .sandbox_api import JiraSandboxApi
from .sandbox_state import World
from .seed import load, seed_file


class JiraSandbox(Sandbox):
    """Serves ``<seed>/jira.yaml`` (see ``tether_jira.seed``) at a port the OS picks.

    The returned options point a ``jira`` source at it; put the seed's token (default
    ``good``) in the source's token variable. Nothing is written to ``workdir``: the site
    lives in memory until ``stop``."""

    type_name = "jira"

    def __init__(self) -> None:
        self.server: SandboxServer | None = None
        self.world: World | None = None

    def start(self, seed: Path, workdir: Path) -> dict:
        world, rate_limit = load(seed_file(seed))
        self.world = world
        self.server = SandboxServer(JiraSandboxApi(world, rate_limit)).start()
        options: dict = {"url": self.server.base_url, "flavour": world.flavour}
        if world.flavour == "cloud" and world.me is not None:
            options["email"] = world.me.email
        return options

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
