"""`tether doctor`: every source's own read-only checks, then the rule packs' lint and the
state store, gathered into one report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tether.connector import Check, Connector
from tether.errors import TetherError
from tether.rules.lint import ERROR, lint
from tether.workspace import Workspace

SCHEMA = "tether.doctor/1"


@dataclass
class DoctorReport:
    """Checks by source, then the rule packs and the state store."""

    sources: dict[str, list[Check]]
    rules: list[Check]
    state: list[Check]

    def all(self) -> list[Check]:
        return [c for checks in self.sources.values() for c in checks] + self.rules + self.state

    @property
    def failed(self) -> int:
        return sum(1 for c in self.all() if c.ok is False)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def document(self) -> dict[str, Any]:
        """The `--json` form (schema tether.doctor/1)."""
        return {"schema": SCHEMA,
                "sources": {name: [asdict(c) for c in checks]
                            for name, checks in self.sources.items()},
                "rules": [asdict(c) for c in self.rules],
                "state": [asdict(c) for c in self.state],
                "ok": self.ok}


def run_doctor(ws: Workspace) -> DoctorReport:
    """Diagnose every source, lint the rule packs and open the state store; writes nothing
    to any tracker."""
    sources = {name: diagnose(connector) for name, connector in ws.connectors.items()}
    return DoctorReport(sources, [rules_check(ws)], [store_check(ws)])


def diagnose(connector: Connector) -> list[Check]:
    """``connector.diagnose()``; a plugin that crashes there becomes one failed check."""
    try:
        return list(connector.diagnose())
    except Exception as exc:  # a third-party plugin's bug must not hide the other sources
        return [Check("self-check", False, f"the {connector.type_name} connector's checks "
                      f"crashed ({type(exc).__name__})",
                      "Run `tether plan` to see whether the source works, and report the "
                      "crash to the plugin's authors.")]


def rules_check(ws: Workspace) -> Check:
    """The rule packs lint clean: errors fail, warnings are named but pass."""
    cfg = ws.config
    issues = lint(ws.rules, list(cfg.kpis), [s.name for s in cfg.sources], cfg.rules.disable,
                  str(cfg.file))
    size = (f"{len(ws.rules.mappings)} mapping rules, {len(ws.rules.signals)} signal rules")
    errors = [i for i in issues if i.level == ERROR]
    warnings = len(issues) - len(errors)
    noted = f"; {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    if errors:
        first = errors[0]
        return Check("rules lint", False, f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
                     f"{noted} in {size}", f"Fix {first.where} rule {first.rule_id}: "
                     f"{first.message}. `tether rules lint` lists every issue.")
    if warnings:
        return Check("rules lint", True, f"no errors in {size}{noted} (warnings do not stop a "
                     "sync; `tether rules lint` lists them)")
    return Check("rules lint", True, f"clean: {size}")


def store_check(ws: Workspace) -> Check:
    """The state store opens (it is created, as any run would, when it does not exist)."""
    try:
        with ws.open_store() as store:
            where = store.url
    except TetherError as exc:
        return Check("state store", False, str(exc),
                     "Check state.url in tether.yaml: the database must be reachable, its "
                     "driver installed and its folder writable.")
    return Check("state store", True, f"opens at {where}")
