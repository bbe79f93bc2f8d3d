"""Tether's own plugin: the built-in rule packs. Registered through the entry point."""

from __future__ import annotations

from importlib.resources import files

from .hookspecs import hookimpl
from .rulepack import RulePackRef


@hookimpl
def tether_rule_packs() -> list[RulePackRef]:
    return [RulePackRef("drift", files("tether.rulepacks") / "drift", default=True)]
