"""The plugin manager, wrapped in a typed facade so callers use methods, not hook strings."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any, cast

import pluggy

from tether import hookspecs
from tether.connector import Connector, KpiSource, Sandbox, Starter
from tether.errors import TetherError
from tether.rules.packs import RulePackRef

ENTRY_POINT_GROUP = "tether"
# A comma-separated list of entry-point names: only these plugins load (hermetic tests).
LOAD_ENV = "TETHER_LOAD_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    module: str
    distribution: str  # "name version", or "" for a plugin registered in code
    hooks: tuple[str, ...]


class Plugins:
    """Loads entry-point plugins once and answers the registry questions the engine asks."""

    def __init__(self, autoload: bool = True):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._dists: dict[str, str] = {}
        if autoload:
            self._load_entry_points()
        self.pm.check_pending()

    def _load_entry_points(self) -> None:
        only = os.environ.get(LOAD_ENV)
        wanted = {n.strip() for n in only.split(",") if n.strip()} if only is not None else None
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if wanted is not None and ep.name not in wanted:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            self.pm.register(ep.load(), name=ep.name)
            dist = ep.dist
            self._dists[ep.name] = f"{dist.name} {dist.version}" if dist else ""

    def register(self, plugin: Any, name: str) -> None:
        """Register a plugin object in code (tests, embedding applications)."""
        self.pm.register(plugin, name=name)
        self.pm.check_pending()

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)

    def _merged(self, hook: pluggy.HookCaller, what: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for impl in hook.get_hookimpls():  # registration order
            # pluggy types a hook function as returning object; this hook's spec returns a dict.
            provided = cast("dict[str, Any]", impl.function() or {})
            for type_name, cls in provided.items():
                if type_name in merged:
                    raise TetherError(
                        f"Plugins '{owner[type_name]}' and '{impl.plugin_name}' both provide the "
                        f"{what} type '{type_name}'. Uninstall one, or set {LOAD_ENV} to choose."
                    )
                merged[type_name], owner[type_name] = cls, impl.plugin_name
        return merged

    def connector_types(self) -> dict[str, type[Connector]]:
        return self._merged(self.pm.hook.tether_connector_types, "connector")

    def kpi_source_types(self) -> dict[str, type[KpiSource]]:
        return self._merged(self.pm.hook.tether_kpi_source_types, "KPI source")

    def sandbox_types(self) -> dict[str, type[Sandbox]]:
        return self._merged(self.pm.hook.tether_sandbox_types, "sandbox")

    def starters(self) -> list[Starter]:
        """Every plugin's `tether init` part, in registration order; flags are unique."""
        found = [s for result in reversed(self.pm.hook.tether_starters()) for s in result]
        flags: dict[str, str] = {}
        for starter in found:
            for option in starter.options:
                if option.flag in flags:
                    raise TetherError(f"The {flags[option.flag]} and {starter.type_name} starters "
                                      f"both offer `tether init {option.flag}`; uninstall one, "
                                      f"or set {LOAD_ENV} to choose.")
                flags[option.flag] = starter.type_name
        return found

    def rule_packs(self) -> list[RulePackRef]:
        packs = [p for result in reversed(self.pm.hook.tether_rule_packs()) for p in result]
        seen: set[str] = set()
        for pack in packs:
            if pack.name in seen:
                raise TetherError(f"Two plugins ship a rule pack named '{pack.name}'; rename one.")
            seen.add(pack.name)
        return packs

    def describe(self) -> list[PluginInfo]:
        """What is loaded and from where, for ``tether plugins``."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            module = getattr(plugin, "__name__", type(plugin).__name__)
            out.append(PluginInfo(name, module, self._dists.get(name, ""), hooks))
        return sorted(out, key=lambda p: p.name)
