"""The ``asana`` sandbox: a fake Asana API on 127.0.0.1, seeded from the seed folder and
kept in the work folder, so a second demo run sees what the first one wrote."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from tether.sandbox import SandboxServer
from tether.sdk import Clock, Sandbox, TetherError

from .api import AsanaApi
from .hooks import HookDelivery
from .seed import SeedError, load_seed, seed_file
from .state import AsanaState
from .views import API

STATE_FILE = "asana-sandbox.json"
TOKEN_ENV = "TETHER_SANDBOX_ASANA_TOKEN"  # never a real token's variable, so nothing clashes


def serve(state: AsanaState, on_change: Callable[[], None] | None = None,
          rate_limit: int = 1500) -> SandboxServer:
    """Start serving ``state``; the API's base URL is ``server.base_url + API``."""
    return SandboxServer(AsanaApi(state, rate_limit, on_change)).start()


class AsanaSandbox(Sandbox):
    """Serves ``<seed>/asana.yaml`` (format in tether_asana.sandbox.seed); its state lives in
    ``<workdir>/asana-sandbox.json``, saved after every write, so a restart keeps them."""

    type_name = "asana"

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()
        self.server: SandboxServer | None = None
        self.state: AsanaState | None = None
        self.env: dict[str, str] = {}

    def start(self, seed: Path, workdir: Path) -> dict:
        """Serve the saved state in ``workdir`` if any, else the seed; return source options
        (url, projects, workspace, token_env). ``env`` then holds a token the sandbox accepts
        under that variable; nothing is put in ``os.environ``."""
        saved = workdir / STATE_FILE
        if saved.is_file():
            try:
                state = AsanaState.from_json(json.loads(saved.read_text(encoding="utf-8")),
                                             self.clock)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise TetherError(f"{saved}: cannot restore the Asana sandbox ({exc}); "
                                  "delete it to start again from the seed") from None
        else:
            path = seed_file(seed)
            if path is None:
                raise TetherError(f"The Asana sandbox needs {seed}/asana.yaml (see the seed "
                                  "format in tether_asana/sandbox/seed.py).")
            state = AsanaState(self.clock)
            try:
                load_seed(path, state)
            except SeedError as exc:
                raise TetherError(str(exc)) from None
        workdir.mkdir(parents=True, exist_ok=True)
        self.state = state
        _save(state, saved)
        self.server = serve(state, on_change=lambda: _save(state, saved))
        mine = [token for token, user in state.tokens.items() if user == state.me]
        self.env = {TOKEN_ENV: (mine or list(state.tokens) or ["good"])[0]}
        return {"url": self.server.base_url + API, "projects": list(state.projects),
                "workspace": state.workspace["gid"], "token_env": TOKEN_ENV}

    def deliver(self) -> list[HookDelivery]:
        """Send the webhooks made on this sandbox (POST /webhooks) the events of every change
        since the last call, signed as Asana signs them; synchronous, never on a timer."""
        return self._api().deliver()

    def heartbeat(self) -> list[HookDelivery]:
        """Send each webhook the signed empty ``events`` Asana sends idle ones."""
        return self._api().heartbeat()

    def _api(self) -> AsanaApi:
        assert self.server is not None, "start the sandbox first"
        api = self.server.api
        assert isinstance(api, AsanaApi)
        return api

    def close_as_person(self, key: str) -> None:
        assert self.state is not None, "start the sandbox first"
        state = self.state
        if key not in state.tasks:
            raise TetherError(f"The Asana sandbox has no task {key}.")
        person = next(gid for gid in state.users if gid != state.me)
        state.set_completed(state.tasks[key], True, person)

    def comments(self) -> dict[str, list[str]]:
        assert self.state is not None, "start the sandbox first"
        stories = self.state.stories
        return {gid: [stories[s]["text"] for s in task.get("stories", [])
                      if stories[s]["resource_subtype"] == "comment_added"]
                for gid, task in self.state.tasks.items()}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _save(state: AsanaState, path: Path) -> None:
    """Write the state atomically, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state.to_json(), out, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
