"""`tether doctor`: a checklist of what a sync needs, with a fix for each failed check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from tether.cli.options import config_option, json_option, out
from tether.connector import Check
from tether.doctor.run import DoctorReport, run_doctor
from tether.workspace import load_workspace

MARKS = {True: "[green]✓[/green]", False: "[red]✗[/red]", None: "[dim]–[/dim]"}


@click.command()
@config_option
@json_option
def doctor(config_path: Path, as_json: bool) -> None:
    """Check each source (token, sign-in, read and write access, rate limit), the rules and
    the state store. Reads only: nothing is written to any tracker. Exit 1 if a check fails."""
    ws = load_workspace(config_path)  # config problems are reported as usual (exit 2)
    report = run_doctor(ws)
    if as_json:
        click.echo(json.dumps(report.document(), indent=2))
    else:
        types = {name: c.type_name for name, c in ws.connectors.items()}
        out.print(f"Checking {escape(str(ws.config.file))}; nothing is written to any tracker.",
                  soft_wrap=True)
        print_report(report, types)
    if not report.ok:
        sys.exit(1)


def print_report(report: DoctorReport, types: dict[str, str]) -> None:
    """The checklist grouped by source, then the workspace's own checks, then the verdict."""
    for name, checks in report.sources.items():
        kind = types.get(name, "")
        _group(f"{name} ({kind})" if kind and kind != name else name, checks)
    _group("workspace", report.rules + report.state)
    failed = report.failed
    unknown = sum(1 for c in report.all() if c.ok is None and not c.detail.startswith("skipped"))
    out.print()
    if failed:
        out.print(f"[red]{failed} check{'s' if failed != 1 else ''} failed[/red]: fix "
                  f"{'them' if failed != 1 else 'it'} and run `tether doctor` again.")
    else:
        note = (f" {unknown} could not be checked; the – line{'s' if unknown != 1 else ''} "
                "say why." if unknown else "")
        out.print(f"[green]All checks passed.[/green]{note}")


def _group(title: str, checks: list[Check]) -> None:
    out.print(f"\n[bold]{escape(title)}[/bold]")
    for check in checks:
        out.print(f"  {MARKS[check.ok]} {escape(check.name)}: {escape(check.detail)}",
                  soft_wrap=True)
        if check.ok is not True and check.fix:
            out.print(f"      {'Fix' if check.ok is False else 'To do'}: {escape(check.fix)}",
                      soft_wrap=True)
