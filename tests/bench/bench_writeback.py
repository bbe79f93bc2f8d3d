"""Writes per run on the demo workspace (northwind-trackers: Jira Cloud, GitHub and Asana
sandboxes through the real clients): the first sync, an unchanged re-run, a re-run after
one KPI changed (nps retired), and a re-run after a person removed a Tether label.

    python tests/bench/bench_writeback.py

Prints, per run: ops planned and applied, ops held for a person's override, and the HTTP
write and total requests each sandbox received.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tether.cli.demo import start_demo
from tether.pipeline.run import run_pass
from tether.plugins import Plugins
from tether.workspace import load_workspace

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "demo"
        demo = start_demo(workdir, Plugins(), "northwind-trackers")
        try:
            boxes = {box.type_name: box.server for box in demo.sandboxes.values()}  # type: ignore[attr-defined]
            print(f"{'run':<28} {'planned':>7} {'applied':>7} {'held':>4}  "
                  + "  ".join(f"{n + ' w/all':>14}" for n in boxes) + f"  {'wall s':>6}")

            def run(label: str) -> None:
                marks = {n: len(s.log) for n, s in boxes.items()}
                ws = load_workspace(workdir, Plugins(), demo.options)
                start = time.perf_counter()
                with ws.open_store() as store:
                    result = run_pass(ws, store, "sync")
                wall = time.perf_counter() - start
                counts = []
                for n, server in boxes.items():
                    new = server.log[marks[n]:]
                    w = sum(1 for r in new if r.method in WRITES)
                    counts.append(f"{w:>6}/{len(new):<7}")
                applied = result.applied.applied if result.applied else 0
                print(f"{label:<28} {len(result.ops):>7} {applied:>7} {len(result.held):>4}  "
                      + "  ".join(f"{c:>14}" for c in counts) + f"  {wall:>6.2f}")

            run("first sync")
            run("unchanged re-run")
            kpis = workdir / "kpis.yaml"
            kpis.write_text(kpis.read_text().replace(
                "name: Net Promoter Score above 45\n",
                "name: Net Promoter Score above 45\n    lifecycle: retired\n"))
            run("one KPI changed (nps retired)")
            run("unchanged re-run")
            # The sandbox stamps whole seconds, like GitHub: an edit in the same second as the
            # last pull looks unchanged to an incremental pull (the next full pull sees it).
            time.sleep(1.1)
            github = next(b for b in demo.sandboxes.values() if b.type_name == "github")
            world = github.world  # type: ignore[attr-defined]
            repo = next(iter(world.repos.values()))
            issue = next(i for i in repo.issues.values() if any(
                x.startswith("tether:kpi:") for x in i.labels))
            label = next(x for x in issue.labels if x.startswith("tether:kpi:"))
            world.remove_label(repo, issue, label)
            run("a person removed a label")
        finally:
            demo.stop()


if __name__ == "__main__":
    main()
