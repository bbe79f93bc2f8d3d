"""`tether report`: one file from the config and the state store (no tracker requests):
KPI status, trends and forecasts, alignment, effort vs weight, findings and runs."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape

from tether.cli.options import as_of_option, config_option, out
from tether.errors import TetherError
from tether.report.formats import FORMATS, render_report
from tether.store.db import Store
from tether.workspace import Workspace, load_workspace

DEFAULT_NAME = "tether-report"


@click.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="html",
              show_default=True, help="html: one self-contained page with charts; json: a stable "
              "document; csv: the findings; md: for a status e-mail or a wiki.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to write it ('-' for standard output). Default: "
              "tether-report.<format> next to tether.yaml.")
@as_of_option()
def report(config_path: Path, fmt: str, output: Path | None, as_of: datetime | None) -> None:
    """Write a report of KPIs, findings, alignment and runs from the state store; nothing is
    pulled from or written to any tracker."""
    ws = load_workspace(config_path)
    with ws.open_store() as store:
        if output is not None and str(output) == "-":
            sys.stdout.write(render_report(ws, store, fmt, as_of or datetime.now(UTC))[0])
        else:
            write_report(ws, store, fmt, output, as_of or datetime.now(UTC))


def write_report(ws: Workspace, store: Store, fmt: str, output: Path | None,
                 as_of: datetime) -> Path:
    """Write the report to ``output`` (default: next to tether.yaml), say where, return it."""
    target = output or ws.config.file.parent / f"{DEFAULT_NAME}.{fmt}"
    if not target.parent.is_dir():
        raise TetherError(f"cannot write the report to {target}: the folder {target.parent} "
                          "does not exist; create it or pass another --output")
    text, data = render_report(ws, store, fmt, as_of)
    try:
        # newline="": written as rendered, without Windows' newline translation.
        target.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise TetherError(f"cannot write the report to {target}: {exc.strerror or exc}; "
                          "pass another --output") from None
    size = target.stat().st_size
    out.print(f"Wrote report to {escape(str(target))} ({_size(size)}; {len(data.kpis)} KPIs, "
              f"{len(data.findings)} findings, as of {data.as_of.date().isoformat()}).",
              soft_wrap=True)
    return target


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"
