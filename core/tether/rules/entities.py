"""What counts as "the same thing in the world" for two items: the entity keys that the
conflict and guardrail signals join on, configurable per workspace (``judgement.entities``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import translate
from functools import cached_property

from tether.model import Task

# Teams mark customers, segments, vendors and regions with label or tag prefixes far more
# often than with custom fields; the same names serve for both.
ENTITY_NAMES = ("customer", "account", "vendor", "supplier", "segment", "region")


@dataclass(frozen=True)
class EntityKeys:
    """Which parts of an item name an entity: label or tag patterns (``fnmatch``, compared
    without case), Jira components, custom fields by name (without case), and links."""

    labels: tuple[str, ...] = tuple(f"{name}:*" for name in ENTITY_NAMES)
    components: bool = True
    fields: tuple[str, ...] = ENTITY_NAMES
    links: bool = True

    @cached_property
    def _label_pattern(self) -> re.Pattern[str] | None:
        if not self.labels:
            return None
        return re.compile("|".join(f"(?:{translate(p)})" for p in self.labels), re.IGNORECASE)

    def of(self, task: Task) -> dict[tuple[str, str], str]:
        """The item's entity keys: (kind, normalised value) -> how a person would name it."""
        found: dict[tuple[str, str], str] = {}
        wanted = {f.lower() for f in self.fields}
        pattern = self._label_pattern
        if pattern is not None:
            for label in task.labels:
                if pattern.match(label):
                    name, sep, value = label.lower().partition(":")
                    # `vendor:acme` and a vendor field holding Acme name the same vendor.
                    slot = (name, value.strip()) if sep and name in wanted else ("label", label.lower())
                    found[slot] = label
        if self.components:
            for component in task.components:
                found[("component", component.lower())] = f"component {component}"
        for name, value in task.custom.items():
            if name.lower() not in wanted or value in (None, "", []):
                continue
            for v in value if isinstance(value, list) else [value]:
                found[(name.lower(), str(v).lower())] = f"{name} {v}"
        return found
