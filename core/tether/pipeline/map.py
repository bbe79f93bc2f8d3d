"""Stage 2, map: link each task to the KPIs its mapping rules name."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tether.model import Mapping, Task
from tether.rules.compiler import compile_rules
from tether.rules.engine import RuleEngine
from tether.rules.fields import READ_ENV, read_task_field, task_field_code
from tether.rules.language import Rule

if TYPE_CHECKING:
    from tether.pipeline.incremental import Recall


def task_values(task: Task, names: Iterable[str], now: datetime) -> dict[str, Any]:
    """The values of the named fields of ``task``, as rules see them."""
    return {name: read_task_field(task, name, now) for name in names}


def task_reader(names: Iterable[str]) -> Callable[[Task, datetime], dict[str, Any]]:
    """``reader(task, now)`` worth ``task_values(task, names, now)``, generated once for
    ``names``: one dict display, no lookup of a reader per field and task."""
    body = ", ".join(f"{name!r}: {task_field_code(name)}" for name in names)
    # Names are written as repr()s: a custom field's name cannot inject code.
    reader: Callable[[Task, datetime], dict[str, Any]] = eval(
        f"lambda t, now: {{{body}}}", dict(READ_ENV))
    return reader


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a stage over all tasks. Such a stage makes
    and drops hundreds of thousands of small containers (facts, values, results), and with
    every task alive each full collection walks them all: measured, a third of the stage.
    Reference counting still frees everything as it goes; only cycles wait until the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Mapper:
    """Mapping rules compiled once, run on durable-rules for any number of tasks."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.engine = RuleEngine(compile_rules(rules, "map"))
        # Reads from each task just the fields the rules use, straight into their fact.
        self._project = self.engine.task_projector()
        self._read = task_reader(self.engine.compiled.field_names())  # for recall

    def matches(self, tasks: Iterable[Task], now: datetime, recall: Recall | None = None
                ) -> dict[str, list[Rule]]:
        """For each task ref, the mapping rules it matched (with ``recall``: only the tasks
        whose field values it has not matched before go to the engine)."""
        if recall is not None:
            read = self._read
            return recall.match(self.engine, ((t.ref, read(t, now)) for t in tasks))
        project = self._project
        return self.engine.match_facts((t.ref, project(t, now, None)) for t in tasks)

    def map(self, tasks: Iterable[Task], now: datetime, recall: Recall | None = None
            ) -> list[Mapping]:
        """One Mapping per (task, matching rule), in task then rule order."""
        out = []
        with collector_paused():
            for ref, rules in self.matches(tasks, now, recall).items():
                for rule in rules:
                    reason = rule.description or f"matched rule {rule.id}"
                    out.append(Mapping(ref, rule.kpi or "", rule.id, rule.weight, reason))
        return out

    def close(self) -> None:
        self.engine.close()
