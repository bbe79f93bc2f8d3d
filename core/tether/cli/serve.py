"""`tether serve`: run Tether as a service (webhooks, scheduled passes, health and metrics)."""

from __future__ import annotations

from pathlib import Path

import click

from tether.cli.options import config_option, out


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 to take webhooks from other machines).")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--every", "interval", type=click.FloatRange(min=10), default=900.0,
              show_default=True, help="Seconds between scheduled passes.")
@click.option("--debounce", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds a burst of webhooks settles before its pass runs.")
@click.option("--max-body", type=click.IntRange(min=1024), default=1_048_576,
              show_default=True, help="Largest webhook delivery taken, in bytes.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one JSON object per log line.")
def serve(config_path: Path, host: str, port: int, interval: float, debounce: float,
          max_body: int, log_format: str) -> None:
    """Serve the workspace: scheduled passes, webhooks, /healthz, /readyz and /metrics."""
    import uvicorn  # the server is only needed here

    from tether.serve.app import create_app
    from tether.serve.logs import configure
    from tether.serve.service import Service, Settings

    configure(log_format)
    service = Service(Settings(config_path, interval, debounce, max_body))
    out.print(f"Serving {config_path} on http://{host}:{port}: a pass every {interval:g} s; "
              f"webhooks at /webhooks/<source>. Ctrl-C or SIGTERM stops after the pass in "
              "flight.", soft_wrap=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
