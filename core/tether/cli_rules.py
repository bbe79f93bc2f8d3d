"""`tether rules ...`: the admin's tools to lint, test and explain mapping and drift rules."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape

from .cli import config_option, err, json_option, out
from .errors import TetherError
from .explain import RuleVerdict, explain_task
from .pipeline.assess import Assessor
from .pipeline.map import Mapper
from .pipeline.pull import pull_source
from .rules.fields import TASK_FIELDS
from .rules.language import OPERATOR_DOCS
from .rules.lint import format_lint, lint
from .rules.signals import DRIFT_FIELDS
from .rules.testing import format_results, run_rule_tests
from .workspace import load_workspace


@click.group()
def rules() -> None:
    """Lint, test and explain mapping and drift rules."""


@rules.command("lint")
@config_option
@json_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 2).")
def lint_cmd(config_path: Path, as_json: bool, strict: bool) -> None:
    """Check every rule: load-time errors, rules that never match, contradictory pairs."""
    ws = load_workspace(config_path)
    cfg = ws.config
    issues = lint(ws.rules, list(cfg.kpis), [s.name for s in cfg.sources], cfg.rules.disable,
                  str(cfg.file))
    if as_json:
        click.echo(json.dumps({"schema": "tether.rules-lint/1", "issues": [
            asdict(i) for i in issues]}, indent=2))
    else:
        out.print(escape(format_lint(issues)), soft_wrap=True)
    if any(i.level == "error" for i in issues) or (strict and issues):
        sys.exit(2)


@rules.command("test")
@config_option
@json_option
def test_cmd(config_path: Path, as_json: bool) -> None:
    """Run the *.test.yaml cases next to the rules; exit 1 when one fails."""
    ws = load_workspace(config_path)
    results = run_rule_tests(ws.rules, list(ws.config.kpis))
    if as_json:
        click.echo(json.dumps({"schema": "tether.rules-test/1", "cases": [
            asdict(r) for r in results]}, indent=2))
    else:
        out.print(escape(format_results(results)), soft_wrap=True)
    if not results and not as_json:
        err.print("No rule tests found: add a *.test.yaml file next to your rules.")
    if any(not r.passed for r in results):
        sys.exit(1)


@rules.command("explain")
@config_option
@json_option
@click.argument("ref")
def explain_cmd(config_path: Path, as_json: bool, ref: str) -> None:
    """Show which rules match one item (SOURCE:KEY) and why, condition by condition."""
    ws = load_workspace(config_path)
    source, _, key = ref.partition(":")
    if source not in ws.connectors or not key:
        known = ", ".join(ws.connectors)
        raise TetherError(f"'{ref}' is not SOURCE:KEY with a configured source ({known}); "
                          "for example jira:OPS-3.")
    with ws.open_store() as store:
        try:  # explain the item as it is now...
            pull_source(ws.connectors[source], store, ws.config.writeback.label_prefix)
        except TetherError as exc:  # ...or, with the tracker out of reach, as last pulled
            err.print(f"[yellow]note[/yellow] {escape(str(exc))}", soft_wrap=True)
            err.print(f"Explaining {escape(ref)} as it was last pulled.")
        task = next((t for t in store.load_tasks(source) if t.key == key), None)
    if task is None:
        raise TetherError(f"No item '{key}' in source '{source}'. Check the key, or re-export.")
    mapper, assessor = Mapper(ws.rules.mappings), Assessor(ws.rules.signals)
    try:
        maps, signals = explain_task(task, mapper, assessor, list(ws.config.kpis),
                                     datetime.now(UTC))
    finally:
        mapper.close()
        assessor.close()
    if as_json:
        click.echo(json.dumps({"schema": "tether.rules-explain/1", "item": task.ref,
                               "title": task.title, "mappings": _verdicts(maps),
                               "signals": _verdicts(signals)}, indent=2))
        return
    out.print(f"[bold]{escape(task.ref)}[/bold]  {escape(task.title)}")
    _print_verdicts("Mapping rules", maps, lambda r: f"-> {r.kpi} (weight {r.weight:g})")
    _print_verdicts("Signal rules", signals, lambda r: f"-> {r.signal} ({r.severity})")


def _verdicts(verdicts: list[RuleVerdict]) -> list[dict]:
    return [{"rule": v.rule.id, "where": v.rule.where, "kpi": v.rule.kpi,
             "signal": v.rule.signal, "matched": v.matched, "agrees": v.agrees,
             "conditions": [{"depth": line.depth, "text": line.text, "result": line.result}
                            for line in v.lines]} for v in verdicts]


def _print_verdicts(title: str, verdicts: list[RuleVerdict], target) -> None:
    matched = sum(v.matched for v in verdicts)
    out.print(f"\n{title}: {matched} of {len(verdicts)} matched")
    for v in sorted(verdicts, key=lambda v: not v.matched):
        mark = "[green]MATCH[/green]" if v.matched else "[dim]no[/dim]   "
        out.print(f"  {mark} {escape(v.rule.id)} {escape(target(v.rule))}  "
                  f"[dim]{escape(v.rule.where)}[/dim]", soft_wrap=True)
        if not v.agrees:
            out.print("    [red]The engine and the reference semantics disagree on this rule; "
                      "please report it with this output.[/red]")
        if v.matched or len(verdicts) <= 20:
            for line in v.lines:
                ok = "[green]yes[/green]" if line.result else "[red]no[/red] "
                out.print(f"      {'  ' * line.depth}{ok} {escape(line.text)}", soft_wrap=True)


@rules.command("fields")
@json_option
def fields_cmd(as_json: bool) -> None:
    """List the fields and operators rules can use."""
    if as_json:
        click.echo(json.dumps({"schema": "tether.rules-fields/1",
                               "task_fields": {f.name: {"kind": f.kind, "doc": f.doc}
                                               for f in TASK_FIELDS.values()},
                               "link_fields": {f.name: {"kind": f.kind, "doc": f.doc}
                                               for f in DRIFT_FIELDS.values()},
                               "operators": OPERATOR_DOCS}, indent=2))
        return
    out.print("[bold]Task fields[/bold] (mapping and signal rules)")
    for f in TASK_FIELDS.values():
        out.print(f"  {f.name:<16} {f.kind:<8} {escape(f.doc)}")
    out.print("  custom.<name>    any      a custom field, by its name in the tracker")
    out.print("[bold]Link fields[/bold] (signal rules only)")
    for f in DRIFT_FIELDS.values():
        out.print(f"  {f.name:<16} {f.kind:<8} {escape(f.doc)}")
    out.print("[bold]Operators[/bold]")
    for op, doc in OPERATOR_DOCS.items():
        out.print(f"  {op:<16} {escape(doc)}")
