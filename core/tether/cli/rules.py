"""`tether rules ...`: the admin's tools to lint, test, explain and diff mapping and drift rules."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from tether.cli.options import as_of_option, config_option, err, json_option, out
from tether.errors import TetherError
from tether.kpi.sources import store_measurements
from tether.model import Finding, Mapping
from tether.pipeline.pull import pull_source
from tether.report.formatting import status_label
from tether.rules.diff import ADDED, CHANGED, REMOVED, Change, RulesDiff, diff_rules, proposed_rules
from tether.rules.explain import RuleVerdict, explain_subject
from tether.rules.fields import TASK_FIELDS
from tether.rules.language import OPERATOR_DOCS
from tether.rules.lint import format_lint, lint
from tether.rules.signals import DRIFT_FIELDS
from tether.rules.testing import format_results, run_rule_tests
from tether.workspace import load_workspace


@click.group()
def rules() -> None:
    """Lint, test, explain and diff mapping and drift rules."""


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
@as_of_option("as pulled now (as last pulled when a tracker is out of reach)")
@click.argument("ref", metavar="SOURCE:KEY|kpi:ID")
def explain_cmd(config_path: Path, as_json: bool, ref: str, as_of: datetime | None) -> None:
    """Show which rules match one item (SOURCE:KEY) or KPI (kpi:ID) and why, condition by
    condition. The whole portfolio is judged as `tether plan` judges it; nothing is written."""
    ws = load_workspace(config_path)
    source, _, key = ref.partition(":")
    is_kpi = source == "kpi" and source not in ws.connectors
    if is_kpi and key not in {k.id for k in ws.config.kpis}:
        known = ", ".join(k.id for k in ws.config.kpis) or "none configured"
        raise TetherError(f"'{ref}' names no KPI; the KPIs are {known}.")
    if not is_kpi and (source not in ws.connectors or not key):
        known = ", ".join(ws.connectors)
        raise TetherError(f"'{ref}' is not SOURCE:KEY with a configured source ({known}) or "
                          "kpi:ID; for example jira:OPS-3.")
    now = as_of or datetime.now(UTC)
    with ws.open_store() as store:
        for name, connector in ws.connectors.items():
            try:  # explain the portfolio as it is now...
                pull_source(connector, store, ws.config.writeback.label_prefix)
            except TetherError as exc:  # ...or, with a tracker out of reach, as last pulled
                err.print(f"[yellow]note[/yellow] {escape(str(exc))}", soft_wrap=True)
                err.print(f"Judging {escape(name)}'s items as they were last pulled.")
        try:  # KPI values as a pass reads them...
            store_measurements(ws.config, ws.plugins, store)
        except TetherError as exc:  # ...or, with a KPI source out of reach, as last read
            err.print(f"[yellow]note[/yellow] {escape(str(exc))}", soft_wrap=True)
            err.print("Judging the KPIs on the values read before.")
        tasks = [t for t in store.load_tasks() if t.source in ws.connectors]
        measurements = store.measurements()
        first_seen = {(f.signal, f.subject, f.rule_id): f.first_seen
                      for f in store.open_findings()}
    if not is_kpi and not any(t.ref == ref for t in tasks):
        raise TetherError(f"No item '{key}' in source '{source}'. Check the key, or re-export.")
    ex = explain_subject(ws, ref, tasks, measurements, now, first_seen)
    if as_json:
        click.echo(json.dumps({
            "schema": "tether.rules-explain/1", "item": ex.subject, "title": ex.title,
            "as_of": ex.as_of.isoformat(), "mappings": _verdicts(ex.mappings),
            "signals": _verdicts(ex.signals),
            "findings": [{"signal": f.signal, "severity": f.severity, "rule_id": f.rule_id,
                          "reason": f.reason, "advice": f.advice,
                          "value_at_risk": f.value_at_risk} for f in ex.findings],
            "facts": ex.facts, "status": ex.status.to_dict() if ex.status else None},
            indent=2, default=_json_value))
        return
    out.print(f"[bold]{escape(ex.subject)}[/bold]  {escape(ex.title)}")
    out.print(f"[dim]Judged with the whole portfolio ({ex.items} items) as of "
              f"{ex.as_of.isoformat(timespec='minutes')}, as `tether plan` judges it.[/dim]",
              soft_wrap=True)
    if ex.status is not None:
        label, reason = status_label(ex.status.status), ex.status.reason
        text = reason if reason.startswith(label) else f"{label}. {reason}"
        out.print(f"Status: {escape(text)}", soft_wrap=True)
    if ex.findings:
        for f in ex.findings:
            out.print(f"Finding: [bold]{escape(f.signal)}[/bold] ({f.severity}): "
                      f"{escape(f.reason)}", soft_wrap=True)
    else:
        out.print("Findings: none.")
    if not is_kpi:
        _print_verdicts("Mapping rules", ex.mappings, lambda r: f"-> {r.kpi} (weight {r.weight:g})")
    _print_verdicts("Signal rules", ex.signals, lambda r: f"-> {r.signal} ({r.severity})")


def _json_value(value: Any) -> Any:
    """Fact values JSON cannot hold as they are: dates as ISO 8601, the rest as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


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


@rules.command("diff")
@config_option
@json_option
@click.option("--against", "against", type=click.Path(path_type=Path), required=True,
              help="The proposed rules: a folder of rule files that takes the place of the "
              "workspace's own packs, or a workspace folder whose tether.yaml names its packs.")
@as_of_option()
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 1 when anything would change (like `git diff --exit-code`), for a CI "
              "check on a pull request to the rules.")
def diff_cmd(config_path: Path, as_json: bool, against: Path, as_of: datetime | None,
             exit_code: bool) -> None:
    """Show which mappings and findings a rule change would add or remove, per item, judging
    the whole portfolio as last pulled. Asks no tracker, writes nothing, records no run."""
    ws = load_workspace(config_path)
    proposed = proposed_rules(ws, against)
    with ws.open_store() as store:
        d = diff_rules(ws, store, proposed, against, as_of or datetime.now(UTC))
    counts = d.counts()
    if as_json:
        click.echo(json.dumps({
            "schema": "tether.rules-diff/1", "as_of": d.as_of.isoformat(),
            "against": str(d.against), "items": d.items,
            "packs": {"current": d.current, "proposed": d.proposed},
            "subjects": [{"subject": s.subject, "title": s.title,
                          "changes": [_change_doc(c) for c in s.changes]} for s in d.subjects],
            "summary": {**counts, "changed": d.changed}}, indent=2))
    else:
        _print_diff(d, counts)
    if exit_code and d.changed:
        sys.exit(1)


def _change_doc(c: Change) -> dict[str, Any]:
    if c.mapping is not None:
        doc: dict[str, Any] = {"change": c.mark, "kind": "mapping", "kpi": c.mapping.kpi,
                               "rule_id": c.mapping.rule_id, "weight": c.mapping.weight}
        if isinstance(c.before, Mapping):
            doc["weight_before"] = c.before.weight
        return doc
    f = c.finding
    assert f is not None
    doc = {"change": c.mark, "kind": "finding", "signal": f.signal, "severity": f.severity,
           "rule_id": f.rule_id, "reason": f.reason, "advice": f.advice}
    if isinstance(c.before, Finding):
        doc["before"] = {"severity": c.before.severity, "reason": c.before.reason,
                         "advice": c.before.advice}
    return doc


_MARK_STYLE = {ADDED: "green", REMOVED: "red", CHANGED: "yellow"}


def _print_diff(d: RulesDiff, counts: dict[str, int]) -> None:
    def packs(p: dict[str, str]) -> str:
        return ", ".join(f"{name} {digest[:8]}" for name, digest in sorted(p.items())) or "none"

    out.print(f"Rules diff on the last pull ({d.items} items), judged as of "
              f"{d.as_of.isoformat(timespec='minutes')}: the workspace's rules ({packs(d.current)})"
              f" against {escape(str(d.against))} ({packs(d.proposed)}).", soft_wrap=True)
    if not d.changed:
        out.print("No difference: the proposed rules map and flag every item as the current "
                  "ones do.", soft_wrap=True)
        return
    for s in d.subjects:
        out.print(f"\n[bold]{escape(s.subject)}[/bold]  [dim]{escape(s.title)}[/dim]",
                  soft_wrap=True)
        for c in s.changes:
            style = _MARK_STYLE[c.mark]
            out.print(f"  [{style}]{c.mark} {escape(_describe_change(c))}[/{style}]",
                      soft_wrap=True)
    n = counts
    on = " and ".join(f"{k} {word}{'s' if k != 1 else ''}" for k, word in (
        (n["items_changed"], "item"), (n["kpis_changed"], "KPI")) if k)
    out.print(f"\nMappings: {n['mappings_added']} added, {n['mappings_removed']} removed, "
              f"{n['mappings_changed']} reweighted; findings: {n['findings_added']} added, "
              f"{n['findings_removed']} removed, {n['findings_changed']} reworded; on {on}. "
              "Nothing was written.", soft_wrap=True)


def _describe_change(c: Change) -> str:
    if c.mapping is not None:
        m = c.mapping
        text = f"serves {m.kpi} (rule {m.rule_id}, weight {m.weight:g})"
        if isinstance(c.before, Mapping):
            text += f", was weight {c.before.weight:g}"
        return text
    f = c.finding
    assert f is not None
    text = f"{f.signal} ({f.severity}, rule {f.rule_id}): {f.reason}"
    if isinstance(c.before, Finding):
        text += f"  [was {c.before.severity}: {c.before.reason}]"
    return text


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
