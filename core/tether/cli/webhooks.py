"""`tether webhooks install|list|remove`: Tether's webhooks on the trackers, pointing at
`tether serve` (``<url>/webhooks/<source>``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape

from tether.cli.options import config_option, out
from tether.connector import Connector
from tether.serve.service import install_hooks, remove_hooks
from tether.webhook import Hook, HooksByHand
from tether.workspace import Workspace, load_workspace

url_option = click.option(
    "--url", required=True, help="Where tether serve is reached from the trackers, like "
    "https://tether.example.com (each source's hook posts to <url>/webhooks/<source>).")
source_option = click.option("--source", "only", default=None,
                             help="Only this source (default: every source).")


@click.group()
def webhooks() -> None:
    """Tether's webhooks on the trackers, for `tether serve`."""


def _each(ws: Workspace, url: str, only: str | None, verb: str,
          act: Callable[[Connector, str], list[Hook]]) -> None:
    names = [only] if only else list(ws.connectors)
    for name in names:
        connector = ws.connectors.get(name)
        if connector is None:
            raise click.BadParameter(f"no source named '{name}'; the sources are "
                                     f"{', '.join(ws.connectors)}", param_hint="--source")
        target = f"{url.rstrip('/')}/webhooks/{name}"
        try:
            hooks = act(connector, target)
        except HooksByHand as steps:
            out.print(f"[bold]{escape(name)}[/bold]: {escape(str(steps))}", soft_wrap=True)
            continue
        if not hooks:
            out.print(f"[bold]{escape(name)}[/bold]: nothing {verb} ({target}).")
        for hook in hooks:
            out.print(f"[bold]{escape(name)}[/bold]: {verb} hook {escape(hook.id)} on "
                      f"{escape(hook.scope)} -> {escape(hook.url)}", soft_wrap=True)


@webhooks.command("install")
@config_option
@url_option
@source_option
def install(config_path: Path, url: str, only: str | None) -> None:
    """Add Tether's webhook to every scope of each source that lacks one."""
    ws = load_workspace(config_path)
    _each(ws, url, only, "added", lambda c, target: install_hooks(ws, c, target))


@webhooks.command("list")
@config_option
@url_option
@source_option
def list_(config_path: Path, url: str, only: str | None) -> None:
    """List Tether's webhooks on each source."""
    _each(load_workspace(config_path), url, only, "found", lambda c, target: c.hooks(target))


@webhooks.command("remove")
@config_option
@url_option
@source_option
def remove(config_path: Path, url: str, only: str | None) -> None:
    """Remove Tether's webhooks from each source (and the secrets kept for them)."""
    ws = load_workspace(config_path)
    _each(ws, url, only, "removed", lambda c, target: remove_hooks(ws, c, target))
