"""A loaded workspace: config, plugins, rules, connectors and state store, ready to run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tether.config.load import load_config
from tether.config.model import Config
from tether.connector import Connector
from tether.errors import InvalidInput, Problem, TetherError
from tether.plugins import Plugins
from tether.rules.loader import RuleBook, load_rulebook
from tether.rules.packs import RulePackRef
from tether.store.db import Store


@dataclass
class Workspace:
    config: Config
    plugins: Plugins
    rules: RuleBook
    connectors: dict[str, Connector]
    # Source options load_workspace replaced (the demo's sandboxes): workers load the same.
    overrides: dict[str, dict[str, Any]] | None = None

    def open_store(self) -> Store:
        return Store(self.config.state_url)


def rule_packs(config: Config, plugins: Plugins) -> list[RulePackRef]:
    """Built-in packs (unless switched off) then the config's own, in that order."""
    packs = [p for p in plugins.rule_packs() if p.default] if config.rules.builtin else []
    packs += [RulePackRef(path.name or str(path), path) for path in config.rules.packs]
    return packs


def load_workspace(path: Path, plugins: Plugins | None = None,
                   overrides: dict[str, dict[str, Any]] | None = None) -> Workspace:
    """Load and check everything a run needs; raises InvalidInput before anything is pulled.
    ``overrides`` replace source options by source name (the demo points them at sandboxes)."""
    plugins = plugins or Plugins()
    config = load_config(path, plugins)
    if overrides:
        config = replace(config, sources=tuple(
            replace(s, options=type(s.options).model_validate(
                {**s.options.model_dump(), **overrides.get(s.name, {})}))
            for s in config.sources))
    book = load_rulebook(rule_packs(config, plugins), config.kpis, config.rules.disable,
                         config.rules.params)
    types = plugins.connector_types()
    connectors = {}
    for source in config.sources:
        if source.type not in types:  # config checked it; a plugin may have vanished since
            raise InvalidInput([Problem(str(config.file), 1, 1, "sources",
                                        f"no connector plugin for type '{source.type}'")])
        connectors[source.name] = types[source.type](source.name, source.options, config.base_dir)
    if not connectors:
        raise TetherError(f"{config.file} configures no sources; add one under `sources:`.")
    return Workspace(config, plugins, book, connectors, overrides)
