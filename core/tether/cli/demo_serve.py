"""`tether demo --serve`: the demo's sandboxes post signed webhooks to a `tether serve` on
loopback, as real trackers would, and a person's edit shows the whole loop once."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape

from tether.cli.demo import Demo
from tether.cli.options import err, out
from tether.model import Finding
from tether.plugins import Plugins
from tether.serve.service import Service, Settings, install_hooks, remove_hooks
from tether.webhook import HooksByHand
from tether.workspace import load_workspace

PUMP = 0.5  # seconds between a sandbox's webhook deliveries, as a tracker sends them
PASS_WAIT = 120.0  # seconds to wait for the pass a person's edit asks for


def serve_demo(workdir: Path, running: Demo, findings: list[Finding], plugins: Plugins,
               wait: threading.Event) -> None:
    """Serve the demo workspace with webhooks from its sandboxes until ``wait`` is set (or
    Ctrl-C); first a person closes a flagged item, and Tether's answer is shown."""
    import uvicorn  # only the service needs the server

    from tether.serve.app import create_app

    service = Service(Settings(workdir / "tether.yaml", interval=None, debounce=1.0),
                      clock=running.now,
                      load=lambda path: load_workspace(path.parent, plugins, running.options))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    # Ctrl-C asks the demo to stop, as it asks `tether serve`: raised at any point instead,
    # it could leave a lock of the sandboxes or the service taken, and the stop hang on it.
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, lambda *_: wait.set()) if main else None
    try:
        with _hooks(service, running, url), _pumping(running, wait):
            out.print(f"\nTether serves the demo at {url}: webhooks from the sandboxes arrive "
                      f"at {url}/webhooks/<source>; see {url}/metrics and {url}/readyz.",
                      soft_wrap=True)
            _show_the_loop(service, running, findings, wait)
            if not wait.is_set():
                err.print("Serving; press Ctrl-C to stop.")
            wait.wait()
    finally:
        if main:
            signal.signal(signal.SIGINT, before)
        server.should_exit = True
        thread.join(60)


@contextmanager
def _hooks(service: Service, running: Demo, url: str) -> Iterator[None]:
    """Each source's webhook to ``url``, installed as `tether webhooks install` does (or by
    hand, as an administrator would) and removed afterwards."""
    ws = service.workspace
    made: list[tuple[str, str]] = []
    try:
        for name, connector in ws.connectors.items():
            box = running.sandboxes.get(name)
            if box is None:
                continue
            target = f"{url}/webhooks/{name}"
            try:
                install_hooks(ws, connector, target)
                made.append((name, "api"))
            except HooksByHand:
                box.hook_by_hand(target)
                made.append((name, "hand"))
        yield
    finally:
        for name, how in made:
            target = f"{url}/webhooks/{name}"
            if how == "hand":
                running.sandboxes[name].hook_by_hand(target, remove=True)
            else:
                remove_hooks(ws, ws.connectors[name], target)


@contextmanager
def _pumping(running: Demo, stop: threading.Event) -> Iterator[None]:
    """The sandboxes deliver their webhooks every PUMP seconds, in the background."""
    done = threading.Event()

    def pump() -> None:
        while not (done.wait(PUMP) or stop.is_set()):
            for box in running.sandboxes.values():
                box.deliver()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(60)


def _show_the_loop(service: Service, running: Demo, findings: list[Finding],
                   stop: threading.Event) -> None:
    """A person closes the flagged item with the highest value at risk; its sandbox
    delivers the webhook; the service judges it again and writes (unless ``stop`` is set
    first)."""
    ref = next((f.subject for f in sorted(findings, key=lambda f: -f.value_at_risk)
                if f.subject.partition(":")[0] in running.sandboxes), None)
    if ref is None:
        return
    source, _, key = ref.partition(":")
    passes = service.runner.passes
    running.sandboxes[source].close_as_person(key)
    out.print(f"A person closes {escape(ref)} in the {escape(source)} sandbox; it sends a "
              "signed webhook...", soft_wrap=True)
    waited = 0.0
    while not service.runner.wait_for(passes + 1, 0.25):
        waited += 0.25
        if stop.is_set():
            return
        if waited >= PASS_WAIT:
            out.print("No pass came in time; see the log above.")
            return
    with service.workspace.open_store() as store:
        run = store.runs(limit=1)[0]
        wrote = [e for e in store.ledger_for(ref) if e.run_id == run.id]
    said = ", ".join(e.kind.replace("_", " ") + ("" if "comment" in e.kind else f" {e.value}")
                     for e in wrote)
    out.print(f"Tether judged {escape(ref)} again ({run.counts.get('tasks', 0)} items in the "
              f"portfolio) and wrote: {escape(said) or 'nothing'}.", soft_wrap=True)
