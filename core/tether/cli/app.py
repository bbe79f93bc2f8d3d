"""The `tether` group and its pass commands (plan, sync, demo, plugins, config); the other
command groups live in their own modules and are added here. Exit codes: 0 ok, 1 run
failed, 2 config or rules invalid."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from tether import __version__
from tether.cli.demo import DEMO_EXAMPLE, Demo, start_demo
from tether.cli.doctor import doctor
from tether.cli.init import init
from tether.cli.kpi import kpi
from tether.cli.log import log
from tether.cli.options import as_of_option, config_option, err, full_option, json_option, out
from tether.cli.progress import pull_progress
from tether.cli.report import report, write_report
from tether.cli.rules import rules
from tether.cli.serve import serve
from tether.cli.webhooks import webhooks
from tether.cli.work import status, worker
from tether.errors import InvalidInput, TetherError
from tether.model import KPI, Finding, OpKind, WriteOp
from tether.pipeline.run import RunResult, run_pass
from tether.plugins import Plugins
from tether.report.document import run_document
from tether.report.formatting import finding_units, natural, risk
from tether.workspace import Workspace, load_workspace

# Below this many columns (a pipe or a log is 80) the findings are listed one block each:
# a table that narrow wraps each reason one word per line.
FINDINGS_TABLE_WIDTH = 120


class TetherGroup(click.Group):
    """Turns Tether's own errors into short messages and documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInput as exc:
            for problem in exc.problems:
                err.print(f"[red]error[/red] {escape(str(problem))}", soft_wrap=True)
            n = len(exc.problems)
            err.print(f"Fix the {n} problem{'s' if n != 1 else ''} above and run again. "
                      "Nothing was pulled or written.")
            sys.exit(2)
        except TetherError as exc:
            err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True)
            sys.exit(exc.exit_code)


PARTIAL = 3  # exit code: a source could not be read; the others were judged and written


@click.group(cls=TetherGroup)
@click.version_option(__version__, prog_name="tether")
def main() -> None:
    """Tether tracker work to strategic KPIs and flag where it drifts."""


def _pass(config_path: Path, mode: str, as_json: bool, as_of: datetime | None,
          full: bool = False, wait: bool = True) -> RunResult:
    ws = load_workspace(config_path)
    if as_of is not None and mode == "sync" and as_of > datetime.now(UTC):
        raise TetherError(f"--as-of {as_of.date().isoformat()} is in the future: a sync records "
                          "its findings and prunes history as of that date. Use `tether plan "
                          "--as-of` to look ahead; nothing was pulled or written.")
    clock = (lambda: as_of) if as_of is not None else (lambda: datetime.now(UTC))
    with ws.open_store() as store, pull_progress(ws.connectors, err, not as_json):
        result = run_pass(ws, store, mode, clock, full=full, wait=wait,
                          on_wait=lambda said: err.print(escape(said[0].upper() + said[1:] + "."),
                                                          soft_wrap=True))
    if as_json:
        click.echo(json.dumps(run_document(result), indent=2))
    else:
        if as_of is not None:
            out.print(f"Judged as of {as_of.isoformat(timespec='minutes')}.")
        print_result(result, ws.config.kpis)
    if result.status != "ok":
        sys.exit(PARTIAL if result.status == "partial" else 1)
    return result


@main.command()
@config_option
@json_option
@as_of_option("as pulled now")
@full_option
def plan(config_path: Path, as_json: bool, as_of: datetime | None, full: bool) -> None:
    """Show the writes a sync would make. Writes nothing to any tracker."""
    _pass(config_path, "plan", as_json, as_of, full)


@main.command()
@config_option
@json_option
@click.option("--dry-run", is_flag=True, help="Same as `tether plan`: write nothing.")
@as_of_option("as pulled now")
@full_option
@click.option("--no-wait", is_flag=True,
              help="If another sync holds the store's run lock, stop at once and say who "
                   "holds it (exit 1) instead of waiting for it.")
def sync(config_path: Path, as_json: bool, dry_run: bool, as_of: datetime | None,
         full: bool, no_wait: bool) -> None:
    """Pull, map, assess, and write labels and comments back to the trackers."""
    _pass(config_path, "plan" if dry_run else "sync", as_json, as_of, full, not no_wait)


@main.command()
@click.option("--dir", "workdir", type=click.Path(path_type=Path), default=Path("tether-demo"),
              show_default=True, help="Where the demo workspace lives (kept between runs).")
@click.option("--example", default=DEMO_EXAMPLE, show_default=True,
              help="Which shipped example to run (northwind-trackers, files-only).")
@click.option("--keep-running", is_flag=True,
              help="Keep the sandboxes serving after the sync, to browse them; Ctrl-C stops.")
@click.option("--serve", "serve_too", is_flag=True,
              help="Then run `tether serve` on the demo: the sandboxes send it signed "
                   "webhooks, and a person's edit shows the loop; Ctrl-C stops.")
@json_option
def demo(workdir: Path, example: str, keep_running: bool, serve_too: bool,
         as_json: bool) -> None:
    """Run a real sync on sandbox trackers seeded with an example: no credentials needed."""
    plugins = Plugins()
    running = start_demo(workdir, plugins, example)
    try:
        ws = running.workspace
        with ws.open_store() as store, pull_progress(ws.connectors, err, not as_json):
            result = run_pass(ws, store, "sync", running.now)
            if as_json:
                click.echo(json.dumps(run_document(result), indent=2))
            else:
                print_result(result, ws.config.kpis)
                write_report(ws, store, "html", workdir / "tether-report.html", running.now())
                _demo_hints(workdir, running, result)
        if serve_too:
            from tether.cli.demo_serve import serve_demo

            serve_demo(workdir, running, result.findings, plugins, threading.Event())
        elif keep_running:
            err.print("Sandboxes are serving; press Ctrl-C to stop.")
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


def _demo_hints(workdir: Path, running: Demo, result: RunResult) -> None:
    if running.today:
        out.print(f"The example is set on {running.today.date().isoformat()}: the demo judges "
                  "it as of that day.")
    out.print(f"\nThe demo workspace is [bold]{workdir}/[/bold] (tether.yaml, KPIs, rules); "
              f"open {workdir}/tether-report.html in a browser for the report.")
    for name, url in running.urls.items():
        out.print(f"  {name}: sandbox at {url} (state kept in {workdir}/.sandbox/{name}/)")
    out.print("Run `tether demo` again: it writes nothing, because nothing changed. "
              "`tether demo --keep-running` leaves the sandboxes up, to browse their JSON "
              "(for example the URLs above plus /rest/api/3/search/jql?jql=, "
              "/repos/<owner>/<repo>/issues, /tasks?project=<gid>).", soft_wrap=True)
    item = next((f.subject for f in sorted(result.findings, key=lambda f: -f.value_at_risk)
                 if not f.subject.startswith("kpi:")), "<source>:<key>")
    out.print(f"Then try `tether rules explain -c {workdir} {item}`, `tether log -c {workdir} "
              f"{item}` or `tether rules test -c {workdir}`.", soft_wrap=True)


def print_result(r: RunResult, kpis: Iterable[KPI] = ()) -> None:
    """The human view of a pass: what was pulled, what was found, what is (or was) written."""
    pulled = ", ".join(f"{name} {n}" for name, n in r.pulled.items())
    out.print(f"Pulled {sum(r.pulled.values())} items ({pulled}).")
    for name, unread in r.unread.items():
        out.print(f"[bold]{escape(name)} could not be read[/bold]: {escape(unread.error)} Its items were "
                  f"judged on the snapshot kept since {unread.since.isoformat(timespec='minutes')}"
                  f"; nothing was read from or written to {name}, so this pass is partial. The "
                  "next pass that reaches it catches up; `tether doctor` checks it now.",
                  soft_wrap=True)
    out.print(f"Mapped {r.totals.linked} of {r.items} items to KPIs "
              f"({sum(r.totals.links.values())} links); {r.totals.findings} findings, "
              f"{len(r.new_findings)} new, {len(r.cleared)} cleared.")
    if r.judged == 0 < r.items:
        out.print("Nothing changed since the last pass: every item kept its verdict. `--full` "
                  "judges every item.")
    elif r.judged < r.items:
        out.print(f"Judged again only the {r.judged} items that changed (or aged a day); the "
                  f"other {r.items - r.judged} kept their verdicts. `--full` judges every item.")
    if not r.listed and r.findings:
        out.print("Below: the findings on the items judged again, and on the KPIs; "
                  "`tether report` shows them all.")
    if r.findings:
        titles = {t.ref: t.title for t in r.tasks}
        units = finding_units(r.findings, r.mappings, kpis, r.kpi_statuses)
        ranked = sorted(r.findings, key=lambda f: (-f.value_at_risk, natural(f.subject)))
        rows = [(f, risk(f.value_at_risk, units.get(f.subject, ""))) for f in ranked]
        if out.width >= FINDINGS_TABLE_WIDTH:
            _findings_table(rows, titles)
        else:
            _findings_blocks(rows, titles)
        if any(u for u in units.values()):
            out.print("[dim]Value at risk: money in the KPI's currency (stake x shortfall); "
                      "wt = priority weight x shortfall, for KPIs without a stake.[/dim]")
    if r.interrupted:
        out.print(f"{len(r.interrupted)} writes of an earlier run were cut short; their items "
                  "were re-read from the trackers, so nothing is written twice.")
    if r.not_annotated:
        out.print(f"{r.not_annotated} items last updated before writeback.since are left alone.")
    if not r.ops and not r.held:
        out.print("Nothing to write: every item already shows its verdict.")
        return
    later = {id(op) for op in r.deferred}
    titles = {t.ref: t.title for t in r.tasks}
    if r.ops:
        out.print(f"\n{'Planned' if r.mode == 'plan' else 'Writes'} "
                  f"({len(r.ops)} on {len({o.task for o in r.ops})} items), by tracker and item:")
    _print_ops(r.ops + r.held, later, {id(op) for op in r.held}, titles)
    if r.deferred:
        out.print(f"{len(r.deferred)} writes are over the write budget ({r.budget} per run) and "
                  "wait for the next run; the highest value at risk goes first.")
    if not r.ops:
        out.print("Nothing else to write: every item shows its verdict.")
        return
    if r.mode == "plan":
        out.print("\nNothing was written. Run `tether sync` to apply these writes.")
        return
    a = r.applied
    assert a is not None
    out.print(f"\nWrote {a.applied} of {len(r.ops)}: {a.failed} failed, "
              f"{len(a.deferred)} left for the next run.")
    for res in a.results:
        if not res.ok:
            err.print(f"[red]failed[/red] {res.op.task} {res.op.kind.value}: {res.error}",
                      soft_wrap=True)
    for notice in r.notices:
        out.print(f"[yellow]note[/yellow] {escape(notice)}", soft_wrap=True)


def _print_ops(ops: list[WriteOp], later: set[int], held: set[int], titles: dict[str, str]
               ) -> None:
    """Ops grouped by tracker, then item, each with its reason and what becomes of it."""
    by_source: dict[str, dict[str, list[WriteOp]]] = defaultdict(lambda: defaultdict(list))
    for op in sorted(ops, key=lambda o: natural(o.task)):
        by_source[op.source][op.task].append(op)
    for source, items in by_source.items():
        out.print(f"  [bold]{escape(source)}[/bold]")
        for task, group in items.items():
            title = titles.get(task, "")
            out.print(f"    {escape(task)}  [dim]{escape(title[:60])}[/dim]")
            for op in group:
                mark = ("  [yellow]held[/yellow]" if id(op) in held else
                        "  [yellow]next run[/yellow]" if id(op) in later else "")
                out.print(f"      {_describe(op.kind, op.value)}  [dim]({escape(op.reason)})"
                          f"[/dim]{mark}", soft_wrap=True)


def _findings_table(rows: list[tuple[Finding, str]], titles: dict[str, str]) -> None:
    table = Table(title="Findings, by value at risk", title_justify="left")
    for col in ("at risk", "signal", "item", "title", "severity", "reason"):
        table.add_column(col, overflow="fold", justify="right" if col == "at risk" else "left",
                         no_wrap=col in ("at risk", "signal", "severity"),
                         ratio=3 if col == "reason" else None)
    for f, at_risk in rows:
        table.add_row(at_risk, f.signal, f.subject, escape(titles.get(f.subject, "")),
                      f.severity, escape(f.reason))
    out.print(table)


_SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def _findings_blocks(rows: list[tuple[Finding, str]], titles: dict[str, str]) -> None:
    """One finding per block, for a narrow terminal or a log: severity, signal, item and value
    at risk on one line, the title, reason and advice indented below it."""
    out.print("[bold]Findings, by value at risk[/bold]")
    width = max(out.width, 40)
    for f, at_risk in rows:
        style = _SEVERITY_STYLE.get(f.severity)
        severity = f"{escape(f.severity):<8}"
        head = (f"{f'[{style}]{severity}[/{style}]' if style else severity}  "
                f"[bold]{escape(f.signal)}[/bold]  {escape(f.subject)}")
        out.print("\n" + head + (f"  {at_risk} at risk" if at_risk != "-" else ""), soft_wrap=True)
        lines = [f"[dim]{escape(line)}[/dim]" for line in _indented(titles.get(f.subject, ""), width)]
        lines += [escape(line) for line in _indented(f.reason, width)]
        if f.advice:
            lines += [escape(line) for line in _indented(f"What to do: {f.advice}", width)]
        for line in lines:
            out.print(line, soft_wrap=True)


def _indented(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="    ",
                         break_long_words=False, break_on_hyphens=False)


def _describe(kind: OpKind, value: str) -> str:
    if kind is OpKind.ADD_LABEL:
        return f"+ label {value}"
    if kind is OpKind.REMOVE_LABEL:
        return f"- label {value}"
    lines = value.count("\n") + 1
    return f"{'+ comment' if kind is OpKind.CREATE_COMMENT else '~ comment'} ({lines} lines)"


@main.command()
@json_option
def plugins(as_json: bool) -> None:
    """List the loaded plugins, where they come from, and what they provide."""
    registry = Plugins()
    if as_json:
        click.echo(json.dumps({
            "schema": "tether.plugins/1",
            "plugins": [{"name": i.name, "module": i.module, "distribution": i.distribution,
                         "hooks": list(i.hooks)} for i in registry.describe()],
            "connectors": sorted(registry.connector_types()),
            "kpi_sources": sorted(registry.kpi_source_types()),
            "sandboxes": sorted(registry.sandbox_types()),
            "rule_packs": [p.name for p in registry.rule_packs()]}, indent=2))
        return
    table = Table()
    for col in ("plugin", "module", "distribution", "hooks"):
        table.add_column(col)
    for info in registry.describe():
        table.add_row(info.name, info.module, info.distribution or "(in code)", ", ".join(info.hooks))
    out.print(table)
    out.print("connectors: " + ", ".join(sorted(registry.connector_types())))
    out.print("KPI sources: " + ", ".join(sorted(registry.kpi_source_types())))
    out.print("sandboxes: " + ", ".join(sorted(registry.sandbox_types())))
    out.print("rule packs: " + ", ".join(p.name for p in registry.rule_packs()))


@main.group()
def config() -> None:
    """Check tether.yaml, or print its JSON Schema for editors."""


@config.command("schema")
def config_schema_cmd() -> None:
    """Print the JSON Schema of tether.yaml (for editor completion and CI checks)."""
    from tether.config.schema import config_schema

    click.echo(json.dumps(config_schema(Plugins()), indent=2))


@config.command("check")
@config_option
@json_option
def config_check(config_path: Path, as_json: bool) -> None:
    """Check tether.yaml, its KPIs and its rules; pull nothing."""
    ws: Workspace = load_workspace(config_path)
    if as_json:
        click.echo(json.dumps({
            "schema": "tether.config-check/1", "file": str(ws.config.file), "ok": True,
            "sources": [s.name for s in ws.config.sources],
            "kpis": [k.id for k in ws.config.kpis],
            "mapping_rules": len(ws.rules.mappings), "signal_rules": len(ws.rules.signals)},
            indent=2))
        return
    out.print(f"{ws.config.file}: OK. {len(ws.config.sources)} sources, {len(ws.config.kpis)} KPIs, "
              f"{len(ws.rules.mappings)} mapping rules, {len(ws.rules.signals)} signal rules.")


main.add_command(rules)
main.add_command(kpi)
main.add_command(init)
main.add_command(log)
main.add_command(report)
main.add_command(doctor)
main.add_command(serve)
main.add_command(webhooks)
main.add_command(worker)
main.add_command(status)
