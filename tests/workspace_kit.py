"""A small workspace written into a test's folder: one files source (Tether's JSON export),
KPIs with inline measurements, and a rules folder. Tests change one part and run the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

CONFIG = """\
version: 1
sources:
  - name: jira
    type: files
    options: {path: tasks.json, format: tether-json, url_base: "https://acme.example/browse/"}
kpis: kpis.yaml
rules:
  packs: [rules]
"""

# margin slips (flat at 1 of 10 points all year); nps is on its path; legacy is retired.
KPIS = """\
kpis:
  - id: margin
    name: Gross margin up 10 points
    owner: Ada Lovelace
    unit: "%"
    baseline: 0
    baseline_date: 2025-01-01
    target: 10
    deadline: 2025-12-31
    weight: 2
    measurements:
      - {date: 2025-01-01, value: 0}
      - {date: 2025-02-01, value: 1}
      - {date: 2025-03-01, value: 1}
      - {date: 2025-04-01, value: 1}
      - {date: 2025-05-01, value: 1}
      - {date: 2025-06-01, value: 1}
  - id: nps
    name: Net Promoter Score to 50
    owner: Grace Hopper
    baseline: 30
    baseline_date: 2025-01-01
    target: 50
    deadline: 2025-12-31
    weight: 1
  - id: legacy
    name: Retire the old reporting stack
    owner: Grace Hopper
    weight: 1
    lifecycle: retired
    lifecycle_changed: 2025-03-01
"""

MAPPING = """\
mappings:
  - id: pricing
    kpi: margin
    description: Pricing work lifts margin.
    when: {labels: {any_of: [pricing, margin]}}
  - id: survey
    kpi: nps
    description: Customer surveys move NPS.
    when: {labels: {any_of: [survey]}}
"""


def task(key: str, title: str, labels: list[str], updated: str = "2025-01-10T09:00:00Z",
         category: str = "in_progress", **extra: Any) -> dict[str, Any]:
    """One item of the export: created 2025-01-05, last changed ``updated``."""
    return {"key": key, "title": title, "type": "Task", "status": category.replace("_", " ").title(),
            "status_category": category, "labels": labels, "created": "2025-01-05T09:00:00Z",
            "updated": updated, **extra}


TASKS = [
    task("OPS-1", "Reprice the long tail", ["pricing"]),
    task("OPS-2", "Quarterly NPS survey", ["survey"], updated="2025-06-20T09:00:00Z"),
    task("OPS-3", "Tidy the office wiki", [], updated="2025-06-20T09:00:00Z"),
]


def make_workspace(folder: Path, tasks: list[dict[str, Any]] | None = None, kpis: str = KPIS,
                   mapping: str = MAPPING, config: str = CONFIG) -> Path:
    """Write the workspace into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tether.yaml").write_text(config, encoding="utf-8")
    (folder / "kpis.yaml").write_text(kpis, encoding="utf-8")
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "mapping.yaml").write_text(textwrap.dedent(mapping), encoding="utf-8")
    write_tasks(folder, TASKS if tasks is None else tasks)
    return folder


def write_tasks(folder: Path, tasks: list[dict[str, Any]]) -> None:
    (folder / "tasks.json").write_text(json.dumps({"tasks": tasks}, indent=1), encoding="utf-8")
