"""What every command shares: the consoles, the --config, --json and --as-of options, and
the DATE parameter type."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from tether.kpi.definitions import parse_when

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
CONFIG_HELP = "Path to tether.yaml (or its folder). Default: ./tether.yaml, or $TETHER_CONFIG."


config_option = click.option("--config", "-c", "config_path", type=click.Path(path_type=Path),
                             envvar="TETHER_CONFIG", default=Path("tether.yaml"),
                             show_default=True, help=CONFIG_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")


class DateParam(click.ParamType):
    """A date (midnight UTC) or an ISO 8601 timestamp, as an aware UTC datetime."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> datetime:
        if isinstance(value, datetime):
            return value
        at = parse_when(value)
        if at is None:
            self.fail(f"'{value}' is not a date; use YYYY-MM-DD or an ISO 8601 timestamp",
                      param, ctx)
        return at


DATE = DateParam()


def as_of_option(items: str = "as last pulled"):
    """``--as-of DATE``, worded alike on every command that judges (report, plan, sync, ...)."""
    return click.option("--as-of", "as_of", type=DATE, default=None,
                        help="Judge KPIs and findings as of this date (YYYY-MM-DD or ISO 8601), "
                        f"with the items {items}. Default: now.")


full_option = click.option(
    "--full", is_flag=True, help="Match every item's facts against the rules again, not only "
    "those that changed since the last pass (a rule-pack change does this by itself).")
