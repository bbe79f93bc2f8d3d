"""Load rule packs: every file of every pack, checked together, all problems at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.config.yamlsrc import load_text, read_text
from tether.errors import InvalidInput, Problem
from tether.model import KPI
from tether.rules.fields import TASK_CATALOG, Catalog
from tether.rules.language import Rule, RuleParser
from tether.rules.packs import RulePackRef, content_hash, is_test_file, yaml_files
from tether.rules.signals import SIGNAL_CATALOGS

SECTIONS = ("mappings", "signals")


@dataclass
class RuleBook:
    """The loaded, checked rules of a run and the content hash of each pack."""

    mappings: list[Rule] = field(default_factory=list)
    signals: list[Rule] = field(default_factory=list)
    packs: dict[str, str] = field(default_factory=dict)
    test_files: list[Path] = field(default_factory=list)
    disabled: list[Rule] = field(default_factory=list)  # switched off in config; lint reads them

    def all(self) -> list[Rule]:
        """The rules that run (disabled ones excluded)."""
        return self.mappings + self.signals


def load_rulebook(packs: Iterable[RulePackRef], kpis: Iterable[KPI],
                  disable: frozenset[str] = frozenset(),
                  params: dict[str, dict[str, Any]] | None = None,
                  mapping_fields: Catalog = TASK_CATALOG) -> RuleBook:
    """Parse and check every rule file; raise InvalidInput listing every problem found."""
    kpi_ids = {k.id for k in kpis}
    book = RuleBook()
    problems: list[Problem] = []
    seen: dict[str, Rule] = {}
    for pack in packs:
        files = yaml_files(pack.path)
        if not files:
            problems.append(Problem(str(pack.path), 1, 1, "", "no rule files (*.yaml) here"))
        book.packs[pack.name] = content_hash(files)
        if not pack.path.is_file():
            book.test_files += [Path(str(p)) for p in sorted(pack.path.iterdir(), key=lambda p: p.name)
                                if is_test_file(p)]
        for f in files:
            try:
                doc = load_text(read_text(f), str(f))
            except InvalidInput as exc:
                problems += exc.problems
                continue
            parser = RuleParser(doc, pack.name, problems, params)
            if doc.data is None:
                continue
            if not isinstance(doc.data, dict):
                parser.fail((), "a rule file is a mapping with `mappings:` and/or `signals:` lists")
                continue
            for key in doc.data:
                if key not in SECTIONS:
                    parser.fail((key,), "unknown section; use `mappings` or `signals`")
            for section in SECTIONS:
                items = doc.data.get(section) or []
                if not isinstance(items, list):
                    parser.fail((section,), "must be a list of rules")
                    continue
                for i, item in enumerate(items):
                    path = (section, i)
                    if section == "mappings":
                        rule = parser.mapping_rule(item, path, mapping_fields)
                    else:
                        rule = parser.signal_rule(item, path, SIGNAL_CATALOGS)
                    if rule is None:
                        continue
                    if rule.id in seen:
                        parser.fail((*path, "id"), f"duplicate rule id `{rule.id}`, "
                                    f"first defined at {seen[rule.id].where}; rename one")
                        continue
                    seen[rule.id] = rule
                    if rule.kpi is not None and rule.kpi not in kpi_ids:
                        known = ", ".join(sorted(kpi_ids)) or "none defined"
                        parser.fail((*path, "kpi"), f"unknown KPI `{rule.kpi}`; known KPIs: {known}")
                        continue
                    if rule.id in disable:
                        book.disabled.append(rule)
                        continue
                    (book.mappings if section == "mappings" else book.signals).append(rule)
    if problems:
        raise InvalidInput(problems)
    return book
