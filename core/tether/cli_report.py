"""`tether report`: being built in this session; replaced by its real module before it lands."""

from __future__ import annotations

import click


@click.command()
def report() -> None:
    """Not available yet."""
    raise click.ClickException("tether report is not available in this build yet.")
