"""`tether init`: a commented starter workspace (tether.yaml, kpis.yaml, rules) for the
trackers named, with every secret left to the environment. Each connector plugin offers its
own options and its `sources:` entry (the `tether_starters` hook); core names no tracker."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import jinja2

from tether.cli.options import json_option, out
from tether.connector import InitError, InitSource, Starter
from tether.plugins import Plugins

FILES = {"tether.yaml": "tether.yaml.j2", "kpis.yaml": "kpis.yaml.j2",
         "rules/mapping.yaml": "mapping.yaml.j2", "rules/mapping.test.yaml": "mapping.test.yaml.j2"}


def _with_starter_options(starters: list[Starter]) -> Callable[[Callable], Callable]:
    def decorate(command: Callable) -> Callable:
        for starter in reversed(starters):
            for option in reversed(starter.options):
                command = click.option(option.flag, option.key, metavar=option.metavar,
                                       help=option.help, multiple=option.multiple)(command)
        return command
    return decorate


STARTERS = Plugins().starters()


@click.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@_with_starter_options(STARTERS)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@json_option
def init(folder: Path, force: bool, as_json: bool, **values: Any) -> None:
    """Write a commented starter tether.yaml, KPI file and rule pack into FOLDER."""
    sources = _sources(values)
    if not sources:
        flags = " or ".join(f"{s.options[0].flag} {s.options[0].metavar}" for s in STARTERS)
        raise click.UsageError(f"Name at least one tracker: {flags}.")
    existing = [name for name in FILES if (folder / name).exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} already exist in {folder}; "
                                   "use --force to overwrite them.")
    today = datetime.now(UTC).date()
    env = jinja2.Environment(loader=jinja2.PackageLoader("tether.cli", "starter"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    for name, template in FILES.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(template).render(
            sources="\n".join(s.yaml for s in sources), today=today.isoformat(),
            handles=[s.owner_handle for s in sources if s.owner_handle],
            year=today.year).rstrip() + "\n", encoding="utf-8")
    needed = list(dict.fromkeys(v for s in sources for v in s.environment))
    if as_json:
        click.echo(json.dumps({"schema": "tether.init/1", "folder": str(folder),
                               "files": list(FILES), "environment": needed}, indent=2))
        return
    out.print(f"Wrote {', '.join(FILES)} in {folder}.")
    out.print(f"Next: export {', '.join(needed)}; edit kpis.yaml and rules/mapping.yaml; "
              f"then run `tether doctor -c {folder}` and `tether plan -c {folder}`.",
              soft_wrap=True)


def _sources(values: dict[str, Any]) -> list[InitSource]:
    """Each starter's source for the values given, in plugin order; a bad value is a usage
    error on its option, before anything is written."""
    found = []
    for starter in STARTERS:
        mine = {o.key: values.get(o.key) for o in starter.options}
        try:
            source = starter.source(mine)
        except InitError as exc:
            raise click.BadParameter(str(exc), param_hint=exc.flag) from None
        if source is not None:
            found.append(source)
    return found
