"""A seeded generator of random portfolios with planted drift: ``generate(seed, folder)``
writes a complete Tether workspace (tether.yaml, KPIs, a mapping rule pack, one tether-json
export per source shaped like Jira, GitHub or Asana items) and returns it with its ground
truth, computed from the README's drift signal table by ``truth.py``, never from the drift pack."""

from __future__ import annotations

import csv
import json
import random
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from .kpiplan import KpiPlan, plan_band, plan_closed, plan_directional
from .portfolio import ENTITY_FIELDS, ENTITY_LABELS, Entities, Item, Portfolio
from .truth import ground_truth

DAY = timedelta(days=1)


@dataclass(frozen=True)
class SourceKind:
    """How one tracker's items look: key shape, projects, components, custom fields, links."""

    name: str
    projects: tuple[str, ...]
    components: tuple[str, ...] = ()  # Jira-like sources only
    entity_fields: tuple[str, ...] = ()  # custom fields named like an entity
    other_fields: tuple[tuple[str, tuple[str, ...]], ...] = ()  # custom fields that are not
    initiative: bool = False  # has the custom field mapping rules read
    link_types: tuple[str, ...] = ()
    estimates: tuple[float, ...] = ()
    estimate_p: float = 0.0
    types: tuple[str, ...] = ("Task",)
    statuses: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
        ("To Do",), ("In Progress",), ("Done",))
    label_style: str = "plain"  # plain, area (area/<token>) or title (Title Case tags)
    url_base: str = ""

    def key(self, rng: random.Random, project: str, counters: dict[str, int]) -> str:
        if self.name == "asana":  # Asana gids: long numbers, not per project
            return str(1208000000000000 + rng.randint(1000, 999999))
        counters[project] = counters.get(project, rng.randint(1, 60)) + rng.randint(1, 3)
        n = counters[project]
        if "/" in project:
            return f"{project}#{n}"
        return f"{project}-{n}"


KINDS = {
    "jira": SourceKind(
        "jira", ("OPS", "PROC", "FIN", "CX"),
        components=("Backend", "Data Platform", "Mobile", "Billing UI", "Integrations", "Reporting"),
        entity_fields=("vendor", "customer"),
        other_fields=(("Team", ("Red", "Blue", "Green")), ("customer_tier", ("Gold", "Silver"))),
        initiative=True, link_types=("blocks", "relates to", "is blocked by"),
        estimates=(1, 2, 3, 5, 8), estimate_p=0.7, types=("Story", "Task", "Bug"),
        statuses=(("To Do", "Backlog"), ("In Progress", "In Review"), ("Done", "Closed")),
        url_base="https://acme.atlassian.net/browse/"),
    "platform": SourceKind(
        "platform", ("PLAT", "INFRA"),
        components=("Build Infra", "Observability", "Kubernetes", "Edge", "Storage"),
        entity_fields=("supplier", "account"), other_fields=(("Team", ("Core", "SRE")),),
        link_types=("blocks", "duplicates"), estimates=(1, 2, 3, 5), estimate_p=0.6,
        types=("Task", "Bug", "Improvement"),
        statuses=(("Open",), ("In Progress",), ("Resolved", "Closed")),
        url_base="https://jira.acme.internal/browse/"),
    "github": SourceKind(
        "github", ("acme/portal", "acme/api", "acme/mobile-app"), link_types=("references",),
        types=("Issue", "Pull request"), statuses=(("open",), ("open",), ("closed",)),
        label_style="area"),
    "asana": SourceKind(
        "asana", ("Q3 Launch", "Customer Onboarding", "Ops Excellence"),
        entity_fields=("segment", "region", "customer"),
        other_fields=(("Priority", ("High", "Medium", "Low")),), initiative=True,
        link_types=("dependency",), estimates=(2, 4, 8, 16), estimate_p=0.4,
        statuses=(("Not started",), ("In progress",), ("Completed",)), label_style="title",
        url_base="https://app.asana.com/0/0/"),
}
PROJECT_CHANNELS = {"github": ("acme/checkout", "acme/insights"), "asana": ("Activation Sprint",
                                                                          "Retention Push")}

THEMES = [  # (kpi id, name, label token, component name for Jira-like sources)
    ("opex-savings", "Cut operating cost", "cost-save", "Procurement"),
    ("gross-margin", "Gross margin up", "pricing", "Pricing Engine"),
    ("nps", "Net Promoter Score", "nps", "Feedback"),
    ("onboarding-time", "Customer onboarding time", "onboarding", "Onboarding"),
    ("on-time-delivery", "Deliveries on time", "delivery", "Dispatch"),
    ("churn", "Logo churn", "retention", "Accounts"),
    ("dso", "Days sales outstanding", "collections", "Collections"),
    ("deploy-frequency", "Production deploys per week", "deploy", "CI Pipeline"),
    ("uptime", "Platform availability", "reliability", "SRE Tooling"),
    ("express-revenue", "Express-lane revenue", "express-lane", "Express"),
    ("activation", "New-user activation", "activation", "Signup"),
    ("support-backlog", "Support backlog", "support", "Helpdesk"),
    ("carbon", "CO2 per shipment", "emissions", "Fleet"),
    ("enterprise-arr", "Enterprise ARR", "enterprise-deals", "Sales Tools"),
    ("cloud-spend", "Cloud spend", "finops", "Cost Explorer"),
]
OWNERS = ["Dana Whitfield", "Priya Raman", "Marcus Ode", "Lena Sorensen", "Ravi Menon",
          "Elena Park", "Tom Alvarez", "Hannah Cole", "Sam Okafor", "Grace Liu"]
LABEL_VALUES = ["vendor:acme", "vendor:globex", "vendor:initech", "vendor:fastfreight",
                 "supplier:blue-harbor", "supplier:northpeak", "customer:umbrella", "customer:hooli",
                 "customer:soylent", "account:northwind", "account:contoso", "Segment:SMB",
                 "Segment:Enterprise", "segment:public-sector", "region:emea", "region:apac",
                 "Region:LATAM"]
ENTITY_VALUES = {
    "vendor": ["Stark Industries", "Wayne Enterprises", "Cyberdyne Systems"],
    "customer": ["Wonka Industries", "Oscorp", "Massive Dynamic"],
    "segment": ["Mid-Market", "Startups", "Education"],
    "region": ["Benelux", "ANZ", "DACH"],
    "supplier": ["Vandelay Imports", "Kramerica", "Prestige Worldwide"],
    "account": ["Dunder Mifflin", "Sterling Cooper", "Pied Piper"],
}
FRESH_WORDS = ["zenith", "orbit", "lumen", "quarry", "harbor", "cobalt", "falcon", "meridian",
               "tundra", "sable", "vertex", "willow", "ember", "atlas", "quill", "nimbus"]
LOOK_ALIKES = ["segmentation", "customer-success", "vendors", "regional", "account-review",
               "supplier-onboarding", "customer_feedback"]
GENERIC = ["bug", "tech-debt", "quick-win", "q3", "needs-design", "customer-request", "team:payments",
           "team:growth"]  # team:* names an entity only where a workspace says so
VERBS = ["Fix", "Ship", "Review", "Automate", "Draft", "Migrate", "Audit", "Prototype", "Tune"]
NOUNS = ["report", "workflow", "dashboard", "contract", "pipeline", "survey", "checklist",
         "integration", "runbook", "playbook", "alerting", "export"]


@dataclass
class Channels:
    """How the mapping rules link work to one KPI, and each rule's weight."""

    token: str
    components: dict[str, str] = field(default_factory=dict)  # source -> component
    custom: str | None = None  # value of custom.initiative
    project: tuple[str, str] | None = None  # (source, project)
    weights: dict[str, float] = field(default_factory=dict)  # channel kind -> rule weight


class Builder:
    """One portfolio under construction; every random choice comes from ``rng``."""

    def __init__(self, seed: int):
        self.rng = rng = random.Random(seed)
        self.seed = seed
        self.now = datetime(2025, 3, 1, 12, tzinfo=UTC) + timedelta(days=rng.randint(0, 300))
        names = rng.sample(list(KINDS), rng.randint(2, 4))
        self.sources = [KINDS[n] for n in names]
        self.items: list[Item] = []
        self.kpis: list[KpiPlan] = []
        self.channels: dict[str, Channels] = {}
        self.counters: dict[str, dict[str, int]] = {s.name: {} for s in self.sources}
        self.keys_used: set[str] = set()
        self.common_labels = rng.sample(LABEL_VALUES, 6)
        self.fresh = 0
        self.csv_values = rng.random() < 0.4
        self.entities = Entities() if rng.random() < 0.85 else self.custom_entities()
        self.busy: set[str] = set()  # slipping KPIs whose work mostly closed lately

    def custom_entities(self) -> Entities:
        """A workspace's own entity keys: fewer or other label patterns, fields, no
        components or no links."""
        rng = self.rng
        labels = tuple(rng.sample(ENTITY_LABELS, rng.randint(1, 4)))
        if rng.random() < 0.5:
            labels += ("team:*",)
        fields = tuple(rng.sample(ENTITY_FIELDS, rng.randint(0, 4)))
        if rng.random() < 0.3:
            fields += ("Team",)
        return Entities(labels, rng.random() < 0.5, fields, rng.random() < 0.6)

    # -- KPIs -----------------------------------------------------------------------------

    def build_kpis(self) -> None:
        rng = self.rng
        n = rng.randint(4, 9)
        themes = rng.sample(THEMES, n)
        fractions = rng.random() < 0.5
        n_closed = min(rng.choice([0, 1, 2, 2]), n - 3)
        active_ids = [t[0] for t in themes[:n - n_closed]]
        n_guard = min(rng.choice([0, 1, 1, 2]), len(active_ids) // 2)
        guard_pairs = []
        pool = active_ids[:]
        rng.shuffle(pool)
        for _ in range(n_guard):
            guard_pairs.append((pool.pop(), pool.pop()))
        if n_guard == 2 and rng.random() < 0.4:  # one KPI with two guardrails
            guard_pairs[1] = (guard_pairs[0][0], guard_pairs[1][1])
        guards = {g for _, g in guard_pairs}
        pushed = {k for k, _ in guard_pairs}

        def weight() -> float:
            return rng.choice([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]) if fractions \
                else float(rng.randint(1, 5))

        for i, (kid, name, token, component) in enumerate(themes):
            if i >= n - n_closed:
                plan = plan_closed(rng, kid, self.now, weight())
            else:
                if kid in guards:
                    cls = rng.choice(["worsening", "worsening", "flat_behind", "on_track",
                                      "band_in", "band_out"])
                    w = 0.0 if rng.random() < 0.8 else weight()
                elif kid in pushed:
                    cls = rng.choices(["on_track", "ahead", "slow", "flat_behind"],
                                      [2, 1, 2, 2.5])[0]  # flat: a breach flags nothing
                    w = weight()
                else:
                    cls = rng.choices(
                        ["on_track", "ahead", "slow", "flat_behind", "flat_early", "worsening",
                         "unknown", "band_in", "band_out"], [3, 1, 2, 2, 1.5, 2, 1, 1, 0.7])[0]
                    w = 0.0 if rng.random() < 0.15 else weight()
                plan = self.plan_active(kid, cls, w)
            plan.name = name
            if plan.active and plan.baseline_date and rng.random() < 0.12:
                plan.lifecycle_changed = plan.baseline_date + timedelta(days=10)  # re-activated
            plan.owner = rng.choice(OWNERS)
            if rng.random() < 0.6:
                plan.owner_handles = {s.name: self.handle(s.name) for s in self.sources}
            self.kpis.append(plan)
            self.channels[kid] = self.make_channels(token, component)
        by_id = {k.id: k for k in self.kpis}
        for kid, gid in guard_pairs:
            self.add_guardrail(by_id[kid], by_id[gid], breached=rng.random() < 0.7)
        closed = [k for k in self.kpis if not k.active]
        if closed and active_ids and rng.random() < 0.4:  # a closed KPI's guardrail: not watched
            g = by_id[rng.choice(active_ids)]
            if g.latest is not None:
                self.add_guardrail(rng.choice(closed), g, breached=True)
        self.add_tradeoffs(active_ids, [k.id for k in self.kpis if not k.active])

    def plan_active(self, kid: str, cls: str, w: float) -> KpiPlan:
        rng = self.rng
        if cls.startswith("band"):
            return plan_band(rng, kid, cls, self.now, w)
        slipping = cls in ("slow", "flat_behind", "flat_early", "worsening")
        stake = None
        if slipping and rng.random() < (0.35 if cls == "flat_early" else 0.3):
            stake = "high"
        elif cls != "unknown" and rng.random() < 0.2:
            stake = "low"
        return plan_directional(rng, kid, cls, self.now, w, stake)

    def handle(self, source: str) -> str:
        rng = self.rng
        if source in ("jira", "platform"):
            return "5b10" + "".join(rng.choice("0123456789abcdef") for _ in range(20))
        if source == "github":
            return rng.choice(["dana-w", "priya-r", "mode", "lenas", "rmenon", "epark"])
        return str(1208000000000000 + rng.randint(1, 99999))

    def make_channels(self, token: str, component: str) -> Channels:
        rng = self.rng
        ch = Channels(token)
        for s in self.sources:
            if s.components and rng.random() < 0.6:
                ch.components[s.name] = f"{component} ({s.name})" if s.name == "platform" else component
        if any(s.initiative for s in self.sources) and rng.random() < 0.5:
            ch.custom = token.replace("-", " ").title()
        free = [(s.name, p) for s in self.sources for p in PROJECT_CHANNELS.get(s.name, ())
                if not any(c.project == (s.name, p) for c in self.channels.values())]
        if free and rng.random() < 0.3:
            ch.project = rng.choice(free)
        for kind in ("label", "custom", "project"):
            ch.weights[kind] = rng.choice([1.0, 1.0, 1.0, 2.0, 0.5, 3.0])
        ch.weights["component"] = ch.weights["label"]  # one rule reads labels and components
        return ch

    def add_guardrail(self, k: KpiPlan, g: KpiPlan, breached: bool) -> None:
        v = g.latest
        assert v is not None
        if g.band:
            scale = g.band[1] - g.band[0]
            side = self.rng.choice(["floor", "ceiling"])
        else:
            assert g.target is not None and g.baseline is not None
            scale = abs(g.target - g.baseline)
            side = "floor" if g.direction == "up" else "ceiling"
        margin = 0.06 * scale
        # breached: the latest value is past the limit; else clearly inside it
        below = (side == "floor") == breached
        limit = round(v + margin if below else v - margin, 3)
        guard: dict[str, Any] = {"kpi": g.id, side: limit}
        if self.rng.random() < 0.2:  # both limits; the other one far off
            other, far = ("ceiling", v + 10 * margin) if side == "floor" else ("floor", v - 10 * margin)
            guard[other] = round(far, 3)
        k.guardrails.append(guard)

    def add_tradeoffs(self, active: list[str], closed: list[str]) -> None:
        rng = self.rng
        by_id = {k.id: k for k in self.kpis}
        for _ in range(rng.choice([0, 1, 1, 2])):
            a, b = rng.sample(active, 2)
            if b in by_id[a].tradeoffs or a in by_id[b].tradeoffs:
                continue
            where = rng.choice(["a", "b", "both"])
            if where in ("a", "both"):
                by_id[a].tradeoffs.append(b)
            if where in ("b", "both"):
                by_id[b].tradeoffs.append(a)
        if closed and rng.random() < 0.5:  # a trade-off with a closed KPI: never a conflict
            by_id[rng.choice(active)].tradeoffs.append(rng.choice(closed))

    # -- items ----------------------------------------------------------------------------

    def new_item(self, serves: list[str], category: str, timing: str, role: str,
                 source: SourceKind | None = None, channel: str | None = None) -> Item:
        rng = self.rng
        src = source or rng.choice(self.sources)
        item = Item(source=src.name, key="", title="", category=category, created=self.now,
                    updated=self.now, role=role)
        for kid in serves:
            self.serve(item, src, kid, channel)
        if not item.project:
            item.project = rng.choice(src.projects)
        item.key = src.key(rng, item.project, self.counters[src.name])
        while item.ref in self.keys_used:
            item.key = src.key(rng, item.project, self.counters[src.name])
        self.keys_used.add(item.ref)
        item.type = rng.choice(src.types)
        item.status = rng.choice(src.statuses[("todo", "in_progress", "done").index(category)])
        if src.estimates and rng.random() < src.estimate_p:
            # an estimate of 0 is an estimate: the item counts no effort
            item.estimate = 0.0 if rng.random() < 0.05 else float(rng.choice(src.estimates))
        item.assignee = rng.choice([None, "ana", "bo", "chen", "dee", "eli"])
        theme = self.channels[serves[0]].token.replace("-", " ") if serves else "misc"
        item.title = f"{rng.choice(VERBS)} {theme} {rng.choice(NOUNS)}"
        self.decorate(item, src)
        self.set_dates(item, serves, timing)
        self.items.append(item)
        return item

    def serve(self, item: Item, src: SourceKind, kid: str, channel: str | None = None) -> None:
        """Make ``item`` match exactly one mapping rule of KPI ``kid`` (through ``channel``
        when given, else one chosen at random)."""
        rng, ch = self.rng, self.channels[kid]
        options = ["label", "label", "label"]
        if src.name in ch.components:
            options.append("component")
        if ch.custom and src.initiative and "initiative" not in item.custom:
            options.append("custom")
        if ch.project and ch.project[0] == src.name and not item.project:
            options.append("project")
        kind = channel or rng.choice(options)
        if kind == "label":
            item.labels.append(label_for(ch.token, src.label_style))
        elif kind == "component":
            item.components.append(ch.components[src.name])
        elif kind == "custom":
            item.custom["initiative"] = ch.custom
        else:
            assert ch.project is not None
            item.project = ch.project[1]
        item.serves[kid] = ch.weights[kind]

    def decorate(self, item: Item, src: SourceKind) -> None:
        """Entity keys, look-alike labels, plain labels and fields, chosen at random."""
        rng = self.rng
        if rng.random() < 0.22:
            item.labels.append(rng.choice(self.common_labels))
        if src.entity_fields and rng.random() < 0.2:
            name = rng.choice(src.entity_fields)
            if src.name == "asana" and rng.random() < 0.3:  # a multi-enum field: a list
                item.custom.setdefault(name, rng.sample(ENTITY_VALUES[name], rng.randint(1, 2)))
            else:
                item.custom.setdefault(name, rng.choice(ENTITY_VALUES[name][:2]))
        if src.components and rng.random() < 0.2:
            item.components.append(rng.choice(src.components))
        if rng.random() < 0.15:
            item.labels.append(rng.choice(LOOK_ALIKES))
        if rng.random() < 0.5:
            item.labels.append(rng.choice(GENERIC))
        for name, values in src.other_fields:
            if rng.random() < 0.5:
                item.custom[name] = rng.choice(values)

    def window(self, kid: str) -> tuple[datetime, datetime]:
        k = next(k for k in self.kpis if k.id == kid)
        end = self.now - timedelta(days=k.lag_days)
        return end - timedelta(days=90), end

    def set_dates(self, item: Item, serves: list[str], timing: str) -> None:
        rng, now = self.rng, self.now
        hours = timedelta(hours=rng.uniform(0, 10))
        start, end = self.window(serves[0]) if serves and self.by_id(serves[0]).active else (
            now - timedelta(days=90), now)
        if timing in ("zombie", "zombie_early", "winding"):
            close = max(c for c in (self.by_id(k).closed_on for k in serves) if c is not None)
            room = (now - close) / DAY
            after = {"zombie": rng.uniform(10, room - 0.6), "zombie_early": rng.uniform(9.5, 13),
                     "winding": rng.uniform(0.2, 5)}[timing]
            item.updated = close + timedelta(days=after)
            item.created = item.updated - timedelta(days=rng.uniform(0, 150) if rng.random() < 0.7
                                                    else rng.uniform(0, after - 0.1))
            return
        if item.open:
            idle = rng.randint(0, 9) if timing != "stale" else rng.randint(20, 150)
            if timing == "recent":  # created after the no_impact window closed
                lag = (now - end) / DAY
                idle = rng.randint(0, min(9, int(lag) - 4))
                item.updated = now - timedelta(days=idle) - hours
                item.created = max(end + timedelta(days=2.5),
                                   item.updated - timedelta(days=rng.uniform(0, lag)))
                item.created = min(item.created, item.updated)
                return
            item.updated = now - timedelta(days=idle) - hours
            item.created = item.updated - timedelta(days=rng.uniform(0, 200))
            if timing == "in_window":
                item.created = min(item.created, end - timedelta(days=rng.uniform(3, 60)))
            return
        if timing == "window":
            resolved = start + timedelta(days=rng.uniform(3, 87))
        elif timing == "old":
            resolved = start - timedelta(days=rng.uniform(5, 200))
        elif timing == "recent_close" and (now - end) / DAY >= 6:
            resolved = end + timedelta(days=rng.uniform(2.5, (now - end) / DAY - 0.6))
        else:
            resolved = now - timedelta(days=rng.uniform(1, 300))
        item.resolved = resolved
        item.created = resolved - timedelta(days=rng.uniform(2, 120))
        item.updated = min(now - timedelta(hours=1), resolved + timedelta(days=rng.uniform(0, 2)))

    def by_id(self, kid: str) -> KpiPlan:
        return next(k for k in self.kpis if k.id == kid)

    def open_category(self) -> str:
        return self.rng.choice(["todo", "in_progress", "in_progress"])

    def build_items(self) -> None:
        rng = self.rng
        active = [k for k in self.kpis if k.active]
        closed = [k for k in self.kpis if not k.active]
        for k in active:
            if k.weight > 0 and k.slipping and rng.random() < 0.35:
                n_open, why = rng.randint(0, 2), "few-open"
            elif k.weight > 0 and not k.slipping and rng.random() < 0.25:
                n_open, why = rng.randint(1, 2), "few-open-healthy"
            elif k.weight == 0:
                n_open, why = rng.randint(0, 3), "weight-0"
            else:
                n_open, why = rng.randint(3, 9), "open"
            # busy: most of its work closed lately (band KPIs have no target to move towards)
            busy = k.slipping and k.band is None and rng.random() < (
                0.7 if k.cls == "worsening" else 0.5)
            if busy:
                self.busy.add(k.id)
            n_window = rng.randint(3, 7) if busy else rng.randint(0, 2)
            if busy and why == "open":  # most of its work closed lately
                n_open = rng.randint(0, n_window)
            big_few = rng.random() < 0.8
            for _ in range(n_open):
                serves = [k.id]
                if len(active) > 1 and rng.random() < 0.12:
                    serves.append(rng.choice([a.id for a in active if a.id != k.id]))
                stale = rng.random() < (0.4 if k.slipping else 0.3)
                timing = "stale" if stale else ("in_window" if busy else "fresh")
                if not stale and k.lag_days >= 14 and rng.random() < 0.2:
                    timing = "recent"
                item = self.new_item(serves, self.open_category(), timing, why)
                if why == "few-open" and big_few:  # starved on the count, not on the share
                    item.estimate = float(rng.choice([13, 20, 21]))
            for _ in range(n_window):
                self.new_item([k.id], "done", "window", "closed-in-window")
            for _ in range(rng.randint(0, 3)):
                self.new_item([k.id], "done", "old", "closed-long-ago")
            if k.lag_days >= 14:
                for _ in range(rng.randint(1 if busy else 0, 2)):
                    self.new_item([k.id], "done", "recent_close", "closed-after-window")
        for c in closed:
            for _ in range(rng.randint(0, 3)):
                self.new_item([c.id], self.open_category(), "zombie", "zombie")
            if c.achieved_on and c.retired_on:  # changed after it was achieved, before retired
                self.new_item([c.id], self.open_category(), "zombie_early", "zombie-after-achieved")
            for _ in range(rng.randint(0, 2)):
                self.new_item([c.id], self.open_category(), "winding", "winding-down")
            for _ in range(rng.randint(0, 2)):
                self.new_item([c.id], "done", "any", "closed-on-closed-kpi")
            for _ in range(rng.randint(0, 2)):
                if active:
                    self.new_item([c.id, rng.choice(active).id], self.open_category(),
                                  rng.choice(["fresh", "stale"]), "closed-and-active")
        if len(closed) >= 2:  # the latest close decides
            for timing in ("zombie", "winding"):
                self.new_item([c.id for c in closed], self.open_category(), timing, "two-closed")
        for _ in range(rng.randint(2, 8)):
            item = self.new_item([], self.open_category(), rng.choice(["fresh", "stale"]), "untethered")
            if rng.random() < 0.4:
                item.labels.append(rng.choice(LOOK_ALIKES))
        for _ in range(rng.randint(1, 4)):
            self.new_item([], "done", "any", "closed-untethered")
        self.plant_guardrails()
        self.plant_conflicts()
        self.plant_split()
        self.plant_zero_estimates()
        self.plant_anchors()
        target = rng.randint(40, 150)
        while len(self.items) < target:
            if rng.random() < 0.1:
                self.new_item([], self.open_category(), "fresh", "filler-untethered")
                continue
            k = rng.choice(active)
            if rng.random() < 0.6 and k.id not in self.busy:
                self.new_item([k.id], self.open_category(), rng.choice(["fresh", "stale"]), "filler")
            else:
                self.new_item([k.id], "done", rng.choice(["old", "window", "any"]), "filler-closed")
        plain = [i for i in self.items if i.role in ("filler", "filler-closed", "closed-long-ago")]
        rng.shuffle(plain)
        while len(self.items) > 150 and plain:
            self.items.remove(plain.pop())
        self.add_random_links()

    # -- planted structures ---------------------------------------------------------------

    def share(self, a: Item, b: Item) -> None:
        """Give ``a`` and ``b`` one fresh entity key (a label, a custom field, a component)
        or a link, whatever their sources allow."""
        rng = self.rng
        kinds = ["label", "label"]
        sa, sb = KINDS[a.source], KINDS[b.source]
        if set(sa.entity_fields) & set(sb.entity_fields):
            kinds.append("field")
        if a.source == b.source and sa.components:
            kinds.append("component")
        if a.source == b.source and sa.link_types:
            kinds += ["link", "link"]
        kind = rng.choice(kinds)
        self.fresh += 1
        word = f"{rng.choice(FRESH_WORDS)}{self.fresh}"
        if kind == "label":
            prefix = rng.choice(["vendor", "customer", "supplier", "account", "segment", "region"])
            label = f"{prefix.title() if rng.random() < 0.3 else prefix}:{word}"
            a.labels.append(label)
            b.labels.append(label)
        elif kind == "field":
            name = rng.choice(sorted(set(sa.entity_fields) & set(sb.entity_fields)))
            value = f"{word.title()} Ltd"
            a.custom[name] = value
            b.custom[name] = value
        elif kind == "component":
            a.components.append(f"{word.title()} Service")
            b.components.append(f"{word.title()} Service")
        elif rng.random() < 0.5:  # a link goes one way; either way links the two
            a.links.append((rng.choice(sa.link_types), b.key))
        else:
            b.links.append((rng.choice(sa.link_types), a.key))

    def decoy_pair(self, a: Item, b: Item) -> None:
        """Make two items look related without sharing an entity key: look-alike labels, or
        different values of the same entity."""
        rng = self.rng
        if rng.random() < 0.5:
            label = rng.choice(LOOK_ALIKES)
            a.labels.append(label)
            b.labels.append(label)
        else:
            self.fresh += 1
            prefix = rng.choice(["vendor", "customer", "segment", "region"])
            a.labels.append(f"{prefix}:{rng.choice(FRESH_WORDS)}a{self.fresh}")
            b.labels.append(f"{prefix}:{rng.choice(FRESH_WORDS)}b{self.fresh}")

    def plant_guardrails(self) -> None:
        rng = self.rng
        for k in self.kpis:
            for gr in k.guardrails:
                g = self.by_id(gr["kpi"])
                for _ in range(rng.randint(0, 2)):
                    self.new_item([k.id, g.id], self.open_category(), "fresh", "serves-k-and-guardrail")
                g_items = [self.new_item([g.id], self.open_category(), rng.choice(["fresh", "stale"]),
                                         "relieves-guardrail") for _ in range(rng.randint(1, 3))]
                for _ in range(rng.randint(1, 3)):
                    b = rng.choice(g_items)
                    src = KINDS[b.source] if rng.random() < 0.5 else None
                    a = self.new_item([k.id], self.open_category(), "fresh",
                                      "shares-with-guardrail-work", src)
                    self.share(a, b)
                for _ in range(rng.randint(0, 2)):
                    a = self.new_item([k.id], self.open_category(), "fresh", "improving-work-apart")
                    self.decoy_pair(a, rng.choice(g_items))

    def plant_conflicts(self) -> None:
        rng = self.rng
        for k in self.kpis:
            for rid in k.tradeoffs:
                r = self.by_id(rid)
                rcat = self.open_category if r.active else (lambda: "in_progress")
                rtiming = "fresh" if r.active else "zombie"
                for _ in range(rng.randint(1, 3)):
                    a = self.new_item([k.id], self.open_category(), "fresh", "tradeoff-shared")
                    src = KINDS[a.source] if rng.random() < 0.5 else None
                    b = self.new_item([r.id], rcat(), rtiming, "tradeoff-shared", src)
                    self.share(a, b)
                for _ in range(rng.randint(0, 2)):
                    a = self.new_item([k.id], self.open_category(), "fresh", "tradeoff-decoy")
                    b = self.new_item([r.id], rcat(), rtiming, "tradeoff-decoy")
                    self.decoy_pair(a, b)
                if rng.random() < 0.5:  # both linked to a third item, not to each other
                    src = rng.choice([s for s in self.sources if s.link_types])
                    a = self.new_item([k.id], self.open_category(), "fresh", "tradeoff-via-third", src)
                    b = self.new_item([r.id], rcat(), rtiming, "tradeoff-via-third", src)
                    z = self.new_item([], rng.choice(["todo", "done"]), "any", "link-hub", src)
                    a.links.append((rng.choice(src.link_types), z.key))
                    b.links.append((rng.choice(src.link_types), z.key))
                if rng.random() < 0.5:  # the partner is closed: no conflict
                    a = self.new_item([k.id], self.open_category(), "fresh", "tradeoff-closed-partner")
                    b = self.new_item([r.id], "done", "any", "tradeoff-closed-partner", KINDS[a.source])
                    self.share(a, b)
        active = [k for k in self.kpis if k.active]
        pairs = {frozenset((k.id, r)) for k in self.kpis for r in k.tradeoffs}
        for _ in range(rng.randint(0, 2)):  # linked work on KPIs that are not trade-offs
            if len(active) < 2:
                break
            x, y = rng.sample(active, 2)
            if frozenset((x.id, y.id)) in pairs:
                continue
            a = self.new_item([x.id], self.open_category(), "fresh", "linked-not-tradeoff")
            b = self.new_item([y.id], self.open_category(), "fresh", "linked-not-tradeoff",
                              KINDS[a.source])
            self.share(a, b)

    def plant_split(self) -> None:
        """Big items serving two weighted KPIs whose rules weigh differently: the effort
        split by mapping weights decides the shares."""
        rng = self.rng
        weighted = [k for k in self.kpis if k.active and k.weight > 0]
        pairs = [(x, y) for x in weighted for y in weighted
                 if self.channels[x.id].weights["label"] < self.channels[y.id].weights["label"]]
        if not pairs or rng.random() < 0.2:
            return
        x, y = rng.choice(pairs)
        sized = [s for s in self.sources if s.estimates] or self.sources
        for _ in range(rng.randint(2, 3)):
            item = self.new_item([x.id, y.id], self.open_category(), "fresh", "split-effort",
                                 rng.choice(sized), channel="label")
            item.estimate = float(rng.choice([13, 20, 21]))

    def plant_zero_estimates(self) -> None:
        """All open work of one weighted KPI estimated at 0 (placeholders): it counts no
        effort, so that KPI's effort share is 0, not its item count."""
        rng = self.rng
        weighted = [k for k in self.kpis if k.active and k.weight > 0]
        if not weighted or rng.random() < 0.6:
            return
        k = rng.choice(weighted)
        for item in self.items:
            if item.open and list(item.serves) == [k.id]:
                item.estimate = 0.0
        for _ in range(rng.randint(2, 5)):
            self.new_item([k.id], self.open_category(), "fresh", "zero-estimate").estimate = 0.0

    def plant_anchors(self) -> None:
        rng = self.rng
        for k in self.kpis:
            if rng.random() < 0.35:
                src = rng.choice(self.sources)
                item = self.new_item([k.id], "done", "any", "anchor", src)
                item.type = "Epic" if src.name in ("jira", "platform") else item.type
                item.resolved = self.now - timedelta(days=rng.uniform(260, 400))
                item.created = item.resolved - timedelta(days=30)
                item.updated = item.resolved + timedelta(hours=3)
                k.anchors[src.name] = item.key

    def add_random_links(self) -> None:
        """A few links between items of a source, and a few to items not in the export
        (archived or in another project: links to nothing in the portfolio)."""
        rng = self.rng
        for item in self.items:
            src = KINDS[item.source]
            if src.link_types and rng.random() < 0.07:
                others = [i for i in self.items if i.source == item.source and i.ref != item.ref]
                if others:
                    item.links.append((rng.choice(src.link_types), rng.choice(others).key))
            if src.link_types and rng.random() < 0.03:
                gone = src.key(rng, "ARCH" if "/" not in item.project else item.project, {})
                if f"{item.source}:{gone}" not in self.keys_used:
                    item.links.append((rng.choice(src.link_types), gone))

    # -- rules and files ------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        out = []
        for k in self.kpis:
            ch = self.channels[k.id]
            labels = sorted({label_for(ch.token, s.label_style) for s in self.sources})
            tests: list[dict[str, Any]] = [{"labels": {"any_of": labels}}]
            if ch.components:
                tests.append({"components": {"any_of": sorted(set(ch.components.values()))}})
            when = tests[0] if len(tests) == 1 else {"any": tests}
            out.append({"id": f"{k.id}-work", "kpi": k.id, "weight": ch.weights["label"],
                        "description": f"Work labelled {ch.token} serves {k.name}.", "when": when})
            custom_sources = [s.name for s in self.sources if s.initiative]
            if ch.custom and custom_sources:
                out.append({"id": f"{k.id}-initiative", "kpi": k.id, "weight": ch.weights["custom"],
                            "description": f"Items of the {ch.custom} initiative.",
                            "scope": {"sources": custom_sources},
                            "when": {"custom.initiative": {"in": [ch.custom]}}})
            if ch.project:
                out.append({"id": f"{k.id}-project", "kpi": k.id, "weight": ch.weights["project"],
                            "description": f"Everything in {ch.project[1]}.",
                            "scope": {"sources": [ch.project[0]]},
                            "when": {"project": ch.project[1]}})
        return out


def label_for(token: str, style: str) -> str:
    if style == "area":
        return f"area/{token}"
    if style == "title":
        return token.replace("-", " ").title()
    return token


def evaluate(rules: list[dict[str, Any]], item: Item) -> dict[str, float]:
    """The KPIs (and weights) the generated rules link ``item`` to: a reference evaluator for
    the few rule shapes the generator writes, to check the planting (and Tether's mapping)."""
    out: dict[str, float] = {}

    def test(node: dict[str, Any]) -> bool:
        if "any" in node:
            return any(test(n) for n in node["any"])
        (name, cond), = node.items()
        if name == "labels":
            return bool(set(item.labels) & set(cond["any_of"]))
        if name == "components":
            return bool(set(item.components) & set(cond["any_of"]))
        if name == "custom.initiative":
            return item.custom.get("initiative") in cond["in"]
        if name == "project":
            return item.project == cond
        raise ValueError(name)

    for rule in rules:
        scope = rule.get("scope", {}).get("sources")
        if scope and item.source not in scope:
            continue
        if test(rule["when"]):
            if rule["kpi"] in out:
                raise AssertionError(f"{item.ref} matches two rules of {rule['kpi']}")
            out[rule["kpi"]] = rule["weight"]
    return out


# -- writing the workspace --------------------------------------------------------------------


def _date(d: datetime | None) -> str | None:
    return d.date().isoformat() if d else None


OFFSETS = {"jira": 2, "platform": -5}  # hours: these exports write local time with an offset


def _stamp(d: datetime | None, source: str = "") -> str | None:
    if d is None:
        return None
    if source in OFFSETS:
        return d.astimezone(timezone(timedelta(hours=OFFSETS[source]))).isoformat(timespec="seconds")
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def kpi_yaml(plan: KpiPlan, inline: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": plan.id, "name": plan.name}
    doc["owner"] = {"name": plan.owner, **plan.owner_handles} if plan.owner_handles else plan.owner
    if plan.unit:
        doc["unit"] = plan.unit
    doc["direction"] = list(plan.band) if plan.band else plan.direction
    for key in ("baseline", "target"):
        if getattr(plan, key) is not None:
            doc[key] = getattr(plan, key)
    for key in ("baseline_date", "deadline", "lifecycle_changed", "achieved_on", "retired_on"):
        if getattr(plan, key) is not None:
            doc[key] = _date(getattr(plan, key))
    doc["weight"] = plan.weight if plan.weight != int(plan.weight) else int(plan.weight)
    if plan.stake is not None:
        doc["stake"] = int(plan.stake)
        doc["currency"] = "USD"
    if plan.lifecycle != "active":
        doc["lifecycle"] = plan.lifecycle
    if plan.lag_days:
        doc["lag_days"] = plan.lag_days
    if plan.tolerance is not None:
        doc["tolerance"] = plan.tolerance
    if plan.guardrails:
        doc["guardrails"] = plan.guardrails
    if plan.tradeoffs:
        doc["tradeoffs"] = plan.tradeoffs
    if plan.anchors:
        doc["anchors"] = plan.anchors
    if inline and plan.series:
        doc["measurements"] = [{"date": _date(at), "value": v} for at, v in plan.series]
    return doc


def task_json(item: Item) -> dict[str, Any]:
    doc: dict[str, Any] = {"key": item.key, "title": item.title, "type": item.type,
                           "status": item.status, "status_category": item.category,
                           "project": item.project, "labels": item.labels}
    if item.components:
        doc["components"] = item.components
    if item.custom:
        doc["custom"] = item.custom
    if item.links:
        doc["links"] = [{"type": t, "target": k} for t, k in item.links]
    if item.estimate is not None:
        doc["estimate"] = item.estimate
    if item.assignee:
        doc["assignee"] = item.assignee
    doc.update(created=_stamp(item.created, item.source), updated=_stamp(item.updated, item.source))
    if item.resolved:
        doc["resolved"] = _stamp(item.resolved, item.source)
    return doc


def write_workspace(b: Builder, folder: Path, rules: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "exports").mkdir(exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    sources = []
    for s in b.sources:
        options: dict[str, Any] = {"path": f"exports/{s.name}.json", "format": "tether-json"}
        if s.url_base:
            options["url_base"] = s.url_base
        sources.append({"name": s.name, "type": "files", "options": options})
        tasks = [task_json(i) for i in b.items if i.source == s.name]
        (folder / "exports" / f"{s.name}.json").write_text(json.dumps({"tasks": tasks}, indent=1))
    config: dict[str, Any] = {"version": 1, "sources": sources, "kpis": "kpis.yaml"}
    if b.csv_values:
        config["kpi_sources"] = [{"type": "csv", "options": {"path": "kpi-values.csv"}}]
        with (folder / "kpi-values.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["kpi", "date", "value"])
            for k in b.kpis:
                out.writerows([k.id, _date(at), v] for at, v in k.series)
    config["rules"] = {"packs": ["rules"]}
    if not b.entities.default:
        e = b.entities
        config["judgement"] = {"entities": {"labels": list(e.labels), "components": e.components,
                                            "fields": list(e.fields), "links": e.links}}
    header = f"# Judgement benchmark portfolio, seed {b.seed}, judged as of {b.now.isoformat()}\n"
    (folder / "tether.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False))
    kpis = {"kpis": [kpi_yaml(k, not b.csv_values) for k in b.kpis]}
    (folder / "kpis.yaml").write_text(yaml.safe_dump(kpis, sort_keys=False, allow_unicode=True))
    (folder / "rules" / "mapping.yaml").write_text(
        yaml.safe_dump({"mappings": rules}, sort_keys=False, allow_unicode=True))


def generate(seed: int, folder: Path | None = None) -> Portfolio:
    """Plant a random portfolio from ``seed`` and write it into ``folder`` (a new temporary
    folder when None); the same seed always gives the same portfolio and files."""
    b = Builder(seed)
    b.build_kpis()
    b.build_items()
    rules = b.rules()
    for item in b.items:  # the planting matches the rules exactly, one rule per (item, KPI)
        got = evaluate(rules, item)
        if got != item.serves:
            raise AssertionError(f"seed {seed}: {item.ref} ({item.role}) maps to {got}, "
                                 f"planted {item.serves}")
    truth = ground_truth(b.kpis, b.items, b.now, b.entities)
    folder = folder or Path(tempfile.mkdtemp(prefix=f"judgement-{seed}-"))
    write_workspace(b, folder, rules)
    return Portfolio(seed, folder, b.now, b.kpis, b.items, rules, truth.expected, truth.ignore,
                     truth.names, b.entities, {"sources": [s.name for s in b.sources],
                                               "csv_values": b.csv_values})
