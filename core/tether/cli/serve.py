"""`tether serve`: run Tether as a service (webhooks, scheduled passes, health and metrics)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import click

from tether.cli.options import config_option, out
from tether.errors import TetherError
from tether.workspace import load_workspace


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 to take webhooks from other machines).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on; 0 lets the system choose a free one (it is printed).")
@click.option("--every", "interval", type=click.FloatRange(min=10), default=None,
              help="Seconds between scheduled passes [serve.every: an interval or a cron "
                   "expression; default 900].")
@click.option("--debounce", type=click.FloatRange(min=0), default=None,
              help="Seconds a burst of webhooks settles before its pass runs "
              "[serve.debounce, default 5].")
@click.option("--max-body", type=click.IntRange(min=1024), default=None,
              help="Largest webhook delivery taken, in bytes [serve.max_body, default 1 MiB].")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one JSON object per log line.")
def serve(config_path: Path, host: str, port: int, interval: float | None,
          debounce: float | None, max_body: int | None, log_format: str) -> None:
    """Serve the workspace: scheduled passes, webhooks, /healthz, /readyz and /metrics."""
    import uvicorn  # the server is only needed here

    from tether.serve.app import create_app
    from tether.serve.logs import configure
    from tether.serve.schedule import Schedule
    from tether.serve.service import Service, Settings

    configure(log_format)
    chosen = load_workspace(config_path).config.serve  # the command line overrides it
    every = chosen.every if interval is None else interval
    service = Service(Settings(
        config_path, every, chosen.debounce if debounce is None else debounce,
        chosen.max_body if max_body is None else max_body, chosen.report_token_env,
        chosen.kpi_token_env, chosen.kpis_every))
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        raise TetherError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another "
                          "--port (0 lets the system pick one)") from None
    listener.listen()
    port = listener.getsockname()[1]
    kpis = (f"; KPI sources also {Schedule.of(chosen.kpis_every)}"
            if chosen.kpis_every is not None else "")
    out.print(f"Serving {config_path} on http://{host}:{port}: passes {Schedule.of(every)}"
              f"{kpis}; webhooks at /webhooks/<source>. Ctrl-C or SIGTERM stops after the "
              "pass in flight.", soft_wrap=True)
    # uvicorn shuts down gracefully on SIGTERM or SIGINT, then raises the signal again for
    # the handler that was there before: this one, so the process exits 0, not killed by it.
    stopped: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stopped.append(number))
    uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning")).run(
        sockets=[listener])
    if stopped:
        out.print(f"Stopped on {signal.Signals(stopped[0]).name}; the ledger is consistent.")
