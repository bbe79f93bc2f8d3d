"""`tether doctor`: being built in this session; replaced by its real module before it lands."""

from __future__ import annotations

import click


@click.command()
def doctor() -> None:
    """Not available yet."""
    raise click.ClickException("tether doctor is not available in this build yet.")
