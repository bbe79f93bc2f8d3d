"""A portfolio of many scopes for the workers' tests: a shipped example whose every Jira
project, GitHub repository and Asana project is copied several times (keys, names and gids
renamed), served by the three sandboxes. The copies are alike, so their items are judged
alike; the first copy keeps the example's own names, so its KPI anchors still resolve."""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tether.cli.demo import SEED_DIR, example_today
from tether.connector import Sandbox
from tether.plugins import Plugins
from tether.workspace import Workspace, load_workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Fanned:
    """A fanned-out workspace and its running sandboxes."""

    folder: Path
    overrides: dict[str, dict[str, Any]]
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # what reaches the sandboxes (tokens)

    def workspace(self) -> Workspace:
        return load_workspace(self.folder / "tether.yaml", Plugins(), self.overrides)

    def comments(self) -> dict[str, dict[str, list[str]]]:
        """Every item's comments, by source then key, as a person reads them."""
        return {name: box.comments() for name, box in self.sandboxes.items()}

    def stop(self) -> None:
        for box in self.sandboxes.values():
            box.stop()


def fan_out(folder: Path, copies: int, example: str = "cost-save-mirage") -> Path:
    """Write ``example`` into ``folder`` with ``copies`` of each scope; returns the seed
    folder. The example's date stays in seed/demo.yaml."""
    src = EXAMPLES / example
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns(SEED_DIR, "__pycache__"))
    seed = folder / SEED_DIR
    seed.mkdir()
    shutil.copy(src / SEED_DIR / "demo.yaml", seed / "demo.yaml")
    config = yaml.safe_load((folder / "tether.yaml").read_text())
    by_type = {s["type"]: s for s in config["sources"]}

    jira = yaml.safe_load((src / SEED_DIR / "jira.yaml").read_text())
    keys = [p["key"] for p in jira["projects"]]
    renamed = {i: {k: k if i == 0 else f"{k}{i}" for k in keys} for i in range(copies)}

    def rekey(issue: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        text = yaml.safe_dump(issue)
        text = re.sub(r"\b(" + "|".join(keys) + r")-(\d+)\b",
                      lambda m: f"{names[m.group(1)]}-{m.group(2)}", text)
        return yaml.safe_load(text)

    jira["projects"] = [{**p, "key": renamed[i][p["key"]], "name": f"{p['name']} {i}"}
                        for i in range(copies) for p in jira["projects"]]
    jira["issues"] = [rekey(issue, renamed[i]) for i in range(copies) for issue in jira["issues"]]
    by_type["jira"]["options"]["projects"] = [p["key"] for p in jira["projects"]]

    github = yaml.safe_load((src / SEED_DIR / "github.yaml").read_text())
    github["repos"] = [{**copy.deepcopy(r), "name": r["name"] if i == 0 else f"{r['name']}-{i}"}
                       for i in range(copies) for r in github["repos"]]
    by_type["github"]["options"]["repos"] = [r["name"] for r in github["repos"]]

    asana = yaml.safe_load((src / SEED_DIR / "asana.yaml").read_text())
    projects = []
    for i in range(copies):
        for p in asana["projects"]:
            p = copy.deepcopy(p)
            if i:
                p["gid"], p["name"] = f"{p['gid']}{i:02d}", f"{p['name']} {i}"
                for task in p["tasks"]:
                    task["gid"] = f"{task['gid']}{i:02d}"
            projects.append(p)
    asana["projects"] = projects
    by_type["asana"]["options"]["projects"] = [p["gid"] for p in projects]

    for name, data in (("jira", jira), ("github", github), ("asana", asana)):
        (seed / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / "tether.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return seed


def serve(folder: Path, seed: Path) -> Fanned:
    """Start a sandbox per tracker source from ``seed`` (state kept under folder/.sandbox)."""
    plugins = Plugins()
    kinds = plugins.sandbox_types()
    config = yaml.safe_load((folder / "tether.yaml").read_text())
    fanned = Fanned(folder, {})
    try:
        for source in config["sources"]:
            if source["type"] in kinds:
                box = fanned.sandboxes[source["name"]] = kinds[source["type"]]()
                fanned.overrides[source["name"]] = box.start(
                    seed, folder / ".sandbox" / source["name"])
                fanned.env.update(box.env)
    except BaseException:
        fanned.stop()
        raise
    return fanned


def today(seed: Path) -> Any:
    return example_today(seed / "demo.yaml")
