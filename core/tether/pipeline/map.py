"""Stage 2, map: link each task to the KPIs its mapping rules name."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tether.model import Mapping, Task
from tether.rules.compiler import compile_rules
from tether.rules.engine import RuleEngine
from tether.rules.fields import read_task_field
from tether.rules.language import Rule


def task_values(task: Task, names: Iterable[str], now: datetime) -> dict[str, Any]:
    """The values of the named fields of ``task``, as rules see them."""
    return {name: read_task_field(task, name, now) for name in names}


class Mapper:
    """Mapping rules compiled once, run on durable-rules for any number of tasks."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.engine = RuleEngine(compile_rules(rules, "map"))

    def matches(self, tasks: Iterable[Task], now: datetime) -> dict[str, list[Rule]]:
        """For each task ref, the mapping rules it matched."""
        names = self.engine.compiled.field_names()
        return self.engine.match((t.ref, task_values(t, names, now)) for t in tasks)

    def map(self, tasks: Iterable[Task], now: datetime) -> list[Mapping]:
        """One Mapping per (task, matching rule), in task then rule order."""
        out = []
        for ref, rules in self.matches(tasks, now).items():
            for rule in rules:
                reason = rule.description or f"matched rule {rule.id}"
                out.append(Mapping(ref, rule.kpi or "", rule.id, rule.weight, reason))
        return out

    def close(self) -> None:
        self.engine.close()
