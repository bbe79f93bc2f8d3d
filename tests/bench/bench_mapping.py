"""Benchmark of the mapping stage: Tether's full path vs bare durable-rules vs the Python
reference evaluator, on the same synthetic tasks and rules, in one process; then the built-in
drift pack on the same tasks.

    python tests/bench/bench_mapping.py [--tasks N] [--rules R] [--seed S] [--profile]

Not a test: pytest ignores tests/bench (see pyproject.toml). Exits 1 if the three mapping
paths disagree on which (task, rule) pairs match, or the drift pack's findings disagree with
the reference evaluator on the values `Assessor.facts` describes.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import io
import pstats
import random
import resource
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import durable_rules_engine
from durable import engine as durable
from tether.config.yamlsrc import load_text
from tether.kpi.status import kpi_statuses
from tether.model import KPI, Finding, Guardrail, Link, Mapping, Measurement, Task
from tether.pipeline.assess import Assessor
from tether.pipeline.map import Mapper, task_values
from tether.plugins import Plugins
from tether.rules.compiler import REF_KEY, SENTINEL_ACTION, SENTINEL_KEY, compile_rules
from tether.rules.engine import CHUNK, _safe_literals
from tether.rules.evaluate import evaluate, rule_condition
from tether.rules.fields import READ_ENV, TASK_CATALOG, task_field_code
from tether.rules.language import Rule, RuleParser
from tether.rules.loader import load_rulebook
from tether.rules.signals import DRIFT_FIELDS, join_facts, kpi_facts, own_links, served

NOW = datetime(2025, 6, 1, tzinfo=UTC)
RULES_PER_PROJECT = 3  # every rule names one project: a task can match at most 3 rules

LABELS = ["vendor", "cloud-cost", "sla", "security", "tech-debt", "customer", "onboarding",
          "performance", "bug", "compliance", "analytics", "mobile", "api", "infra",
          "team-red", "team-blue", "team-green", "q3-okr", "quick-win", "legacy"]
COMPONENTS = ["Billing", "Portal", "Search", "Procurement", "Onboarding", "Reporting",
              "Auth", "Notifications", "Data", "Payments"]
WORDS = ["migrate", "migration", "upgrade", "vendor", "contract", "kyc", "latency", "dashboard",
         "refactor", "invoice", "onboarding", "cleanup", "checkout", "export", "import", "cache",
         "report", "alert", "billing", "search", "login", "renewal", "license", "capacity",
         "failover", "audit", "pipeline", "schema", "index", "timeout", "flaky", "release"]
TYPES = ["Story", "Bug", "Task", "Spike", "issue"]
STATUSES = {"todo": ["To Do", "Backlog"], "in_progress": ["In Progress", "In Review"],
            "done": ["Done", "Closed"]}
PEOPLE = ["dana", "lee", "sam", "ari", "kim", "noor", "jo", "max"]
VENDORS = ["Acme", "Globex", "Initech", "Umbrella", "DHL Freight", "AWS"]


def project_names(rules: int) -> list[str]:
    return [f"P{i:03d}" for i in range(max(1, -(-rules // RULES_PER_PROJECT)))]


# --------------------------------------------------------------------------- tasks

def make_tasks(n: int, projects: list[str], rng: random.Random) -> list[Task]:
    """N varied tasks; ~10% in a project no rule names (they match nothing)."""
    pool = [*projects, "MISC"]
    weights = [9.0 / len(projects)] * len(projects) + [1.0]
    start = datetime(2023, 1, 1, tzinfo=UTC)
    span = (NOW - start).total_seconds()
    tasks = []
    for i in range(n):
        source = "jira" if rng.random() < 0.8 else "github"
        project = rng.choices(pool, weights)[0]
        category = rng.choices(("todo", "in_progress", "done"), (0.45, 0.25, 0.30))[0]
        created = start + timedelta(seconds=rng.random() * span)
        updated = created + timedelta(seconds=rng.random() * (NOW - created).total_seconds()) \
            if rng.random() < 0.9 else None
        resolved = (updated or created) if category == "done" else None
        custom: dict[str, Any] = {}
        if rng.random() < 0.3:
            custom["vendor"] = rng.choice(VENDORS)
        if rng.random() < 0.7:
            custom["team_size"] = rng.randint(1, 9)
        if rng.random() < 0.5:
            custom["risk"] = round(rng.random() * 10, 2)
        if rng.random() < 0.4:
            custom["quarter"] = f"2025Q{rng.randint(1, 4)}"
        links = tuple(Link(rng.choice(("blocks", "is blocked by", "relates to")),
                           f"{project}-{rng.randint(1, n)}") for _ in range(rng.choice((0, 0, 1, 2))))
        title_words = rng.sample(WORDS, rng.randint(3, 6))
        tasks.append(Task(
            source=source, key=f"{project}-{i}", title=" ".join(title_words).capitalize(),
            url=f"https://tracker.example/{project}-{i}",
            body=" ".join(rng.choices(WORDS, k=rng.randint(0, 20))),
            type=rng.choice(TYPES), status=rng.choice(STATUSES[category]), status_category=category,
            assignee=rng.choice(PEOPLE) if rng.random() < 0.8 else None, project=project,
            labels=tuple(rng.sample(LABELS, rng.randint(2, 4))),
            components=tuple(rng.sample(COMPONENTS, rng.choice((0, 1, 1, 2)))),
            parent=f"{project}-{rng.randint(1, n)}" if rng.random() < 0.2 else None,
            epic=f"{project}-E{rng.randint(1, 30)}" if rng.random() < 0.5 else None,
            links=links,
            estimate=rng.choice((1, 2, 3, 5, 8, 13)) if rng.random() < 0.75 else None,
            created=created, updated=updated, resolved=resolved, custom=custom,
        ))
    return tasks


# --------------------------------------------------------------------------- rules

def _pick(rng: random.Random, pool: list[str], k: int) -> str:
    return "[" + ", ".join(rng.sample(pool, k)) + "]"


def _date(rng: random.Random) -> str:
    return (datetime(2023, 6, 1) + timedelta(days=rng.randint(0, 600))).strftime("%Y-%m-%d")


# Each template: (project condition style, `when` body lines given the project). Selectivity
# within the project is roughly 15-50%, so tasks match about one rule on average.
def _templates(rng: random.Random, p: str) -> list[tuple[bool, list[str]]]:
    w1, w2 = rng.sample(WORDS, 2)
    return [
        # eq + any_of
        (False, [f"project: {p}", f"labels: {{any_of: {_pick(rng, LABELS, 3)}}}"]),
        # in + all_of inside any
        (True, ["any:",
                f"  - labels: {{all_of: {_pick(rng, LABELS, 2)}}}",
                f"  - components: {{any_of: {_pick(rng, COMPONENTS, 2)}}}",
                f"  - type: {{in: [{rng.choice(TYPES)}, {rng.choice(TYPES)}]}}"]),
        # matches + in
        (False, [f"project: {p}", f"title: {{matches: '(?i)\\b({w1[:5]}|{w2[:5]})'}}",
                 "status_category: {in: [todo, in_progress]}"]),
        # contains or numeric gt
        (True, ["any:", f"  - title: {{contains: {w1.upper()}}}",
                f"  - estimate: {{gt: {rng.choice((5, 8))}}}"]),
        # exists + not any_of, custom field
        (False, [f"project: {p}", "custom.vendor: {exists: true}",
                 f"not: {{labels: {{any_of: {_pick(rng, LABELS, 2)}}}}}"]),
        # dates and numbers: gt / lt
        (True, [f"created: {{gt: {_date(rng)}}}", f"estimate: {{lt: {rng.choice((5, 8))}}}"]),
        # custom number, not done
        (False, [f"project: {p}", f"custom.team_size: {{gte: {rng.randint(4, 7)}}}",
                 "not: {status_category: done}"]),
        # idle / age, assignee missing or stale
        (True, ["any:", "  - assignee: {exists: false}",
                f"  - idle_days: {{gt: {rng.choice((60, 120, 240))}}}",
                f"  - age_days: {{lt: {rng.choice((30, 60))}}}"]),
        # list regex, all + not any
        (False, [f"project: {p}", "all:", "  - labels: {matches: '^team-'}",
                 "  - not:", "      any:", f"      - components: {{any_of: {_pick(rng, COMPONENTS, 3)}}}",
                 "      - epic: {exists: true}"]),
        # custom text eq / in, custom number lt
        (True, ["any:", f"  - custom.vendor: {{in: {_pick(rng, VENDORS, 2)}}}",
                f"  - custom.risk: {{lt: {rng.choice((1.5, 2.5))}}}",
                f"  - custom.quarter: 2025Q{rng.randint(1, 4)}"]),
    ]


def make_rules_yaml(r: int, projects: list[str], rng: random.Random) -> str:
    out = ["mappings:"]
    for i in range(r):
        p = projects[i // RULES_PER_PROJECT]
        kind = rng.randrange(10)
        scoped, body = _templates(rng, p)[kind]
        out += [f"  - id: rule-{i:04d}-t{kind}", f"    kpi: kpi-{i % 12}",
                f"    weight: {rng.choice((0.5, 1, 2))}", f"    description: synthetic rule {i}"]
        if scoped:
            out.append(f"    scope: {{sources: [jira, github], projects: [{p}]}}")
        out.append("    when:")
        out += [f"      {line}" for line in body]
    return "\n".join(out) + "\n"


def parse_rules(text: str) -> list[Rule]:
    problems: list = []
    doc = load_text(text, "bench.yaml")
    parser = RuleParser(doc, "bench", problems)
    items = doc.data["mappings"]
    rules = [parser.mapping_rule(item, ("mappings", i), TASK_CATALOG) for i, item in enumerate(items)]
    if problems or any(r is None for r in rules):
        for p in problems:
            print(p, file=sys.stderr)
        raise SystemExit("generated rules do not parse")
    return rules


# --------------------------------------------------------------------------- stages

def run_tether(rules: list[Rule], tasks: list[Task]) -> tuple[float, float, list[Mapping]]:
    t0 = time.perf_counter()
    mapper = Mapper(rules)
    t1 = time.perf_counter()
    mappings = mapper.map(tasks, NOW)
    t2 = time.perf_counter()
    mapper.close()
    return t1 - t0, t2 - t1, mappings


def make_kpis(n: int, rng: random.Random) -> tuple[list[KPI], list[Measurement]]:
    """``n`` KPIs (a few closed, some with guardrails and trade-offs) and six months of values."""
    start, end = NOW - timedelta(days=180), NOW + timedelta(days=185)
    kpis, values = [], []
    for i in range(n):
        kid = f"kpi-{i}"
        closed = i % 7 == 6
        kpis.append(KPI(
            kid, f"KPI {i}", weight=float(1 + i % 3), owner=f"owner-{i}", baseline=0.0,
            baseline_date=start, target=100.0, deadline=end, stake=1e6 * (i % 4),
            lifecycle="achieved" if closed else "active",
            lifecycle_changed=NOW - timedelta(days=60) if closed else None,
            guardrails=(Guardrail(f"kpi-{(i + 1) % n}", floor=20.0),) if i % 5 == 0 else (),
            tradeoffs=(f"kpi-{(i + 2) % n}",) if i % 4 == 0 else ()))
        pace = rng.choice([0.2, 0.5, 1.0, 1.2])
        values += [Measurement(kid, start + timedelta(days=30 * m), pace * 100 * 30 * m / 365)
                   for m in range(6)]
    return kpis, values


def drift_rules(kpis: list[KPI]) -> list[Rule]:
    packs = [p for p in Plugins().rule_packs() if p.name == "drift"]
    return load_rulebook(packs, kpis).signals


def run_drift(tasks: list[Task], mappings: list[Mapping], kpis: list[KPI],
              values: list[Measurement]) -> tuple[float, float, list[Finding]]:
    """The built-in drift pack over every task and KPI, with KPI status computed first."""
    assessor = Assessor(drift_rules(kpis))
    t0 = time.perf_counter()
    statuses = kpi_statuses(kpis, values, NOW)
    t1 = time.perf_counter()
    findings = assessor.assess(tasks, mappings, kpis, NOW, statuses)
    t2 = time.perf_counter()
    assessor.close()
    return t1 - t0, t2 - t1, findings


class BareHost(durable.Host):
    """durable-rules' own Host as an application would use it: stock assert_fact, which runs
    each fact's actions as it is asserted; the actions record (ref, action). No timers."""

    def __init__(self, hits: set[tuple[str, str]]):
        self._hits = hits
        super().__init__()

    def _run(self) -> None:
        return None

    def get_action(self, action_name: str) -> Any:
        hits = self._hits
        if action_name == SENTINEL_ACTION:
            return lambda c: None

        def record(c: Any) -> None:
            hits.add((c.m[REF_KEY], action_name))

        return record


def run_durable(rules: list[Rule], tasks: list[Task]
                ) -> tuple[float, float, set[tuple[str, str]]]:
    """The very facts Tether's engine asserts (the rule set's projector, its chunks, its
    sentinel), each chunk built untimed, then only durable's assert_fact + delete_state
    timed, one chunk alive at a time."""
    compiled = compile_rules(rules, "bare")
    project = compiled.projector(task_field_code, READ_ENV)
    hits: set[tuple[str, str]] = set()
    host = BareHost(hits)
    host.register_rulesets(_safe_literals(copy.deepcopy(compiled.rulesets)))
    not_handled = durable.MessageNotHandledException
    build = run = 0.0
    for n, start in enumerate(range(0, len(tasks), CHUNK)):
        t0 = time.perf_counter()
        sid = f"bare{n}"
        facts = [{SENTINEL_KEY: True, REF_KEY: "", "id": f"{sid}-sentinel", "sid": sid}]
        facts += [{**project(t, NOW, None), REF_KEY: t.ref, "id": t.ref, "sid": sid}
                  for t in tasks[start:start + CHUNK]]
        t1 = time.perf_counter()
        for name in compiled.rulesets:
            for fact in facts:
                try:  # noqa: SIM105 - contextlib.suppress costs a context manager per fact
                    host.assert_fact(name, fact)
                except not_handled:
                    pass
            host.delete_state(name, sid)
        t2 = time.perf_counter()
        build, run = build + t1 - t0, run + t2 - t1
        del facts
    for ruleset in host._ruleset_list:
        durable_rules_engine.delete_ruleset(ruleset._handle)
    return build, run, {(ref, compiled.rules[action].id) for ref, action in hits}


def run_reference(rules: list[Rule], tasks: list[Task],
                  names: set[str]) -> tuple[float, set[tuple[str, str]]]:
    conditions = [(rule.id, rule_condition(rule)) for rule in rules]
    hits = set()
    t0 = time.perf_counter()
    for task in tasks:
        values = task_values(task, names, NOW)
        ref = task.ref
        for rule_id, cond in conditions:
            if evaluate(cond, values):
                hits.add((ref, rule_id))
    return time.perf_counter() - t0, hits


def drift_reference(tasks: list[Task], mappings: list[Mapping], kpis: list[KPI],
                    values: list[Measurement]) -> set[tuple[str, str]]:
    """(subject, rule id) of every drift rule the reference evaluator finds true on the
    values Assessor.facts describes (computed here a task at a time, to spare memory: each
    task's link_facts value is its own_links plus its join_facts, as link_facts builds it)."""
    rules = drift_rules(kpis)
    assessor = Assessor(rules)
    statuses = kpi_statuses(kpis, values, NOW)
    by_id, serves = {k.id: k for k in kpis}, served(mappings)
    joins = join_facts(tasks, serves, by_id, statuses, assessor.judgement)
    names = assessor.names - DRIFT_FIELDS.keys()
    conditions = {subject: [(r.id, rule_condition(r)) for r in rules if r.subject == subject]
                  for subject in ("task", "kpi")}
    hits = set()
    for task in tasks:
        links = {**own_links(task, serves.get(task.ref, set()), by_id, statuses),
                 **joins.get(task.ref, {})}
        seen = {**task_values(task, names, NOW), **links}
        hits |= {(task.ref, rid) for rid, cond in conditions["task"] if evaluate(cond, seen)}
    for kid, seen in kpi_facts(kpis, tasks, mappings, statuses, (), NOW,
                               assessor.judgement).items():
        hits |= {(f"kpi:{kid}", rid) for rid, cond in conditions["kpi"] if evaluate(cond, seen)}
    assessor.close()
    return hits


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


# --------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=50)
    ap.add_argument("--kpis", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the tether map and drift pack and print the top 25")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    projects = project_names(args.rules)
    t0 = time.perf_counter()
    rules = parse_rules(make_rules_yaml(args.rules, projects, rng))
    tasks = make_tasks(args.tasks, projects, rng)
    setup = time.perf_counter() - t0
    n = len(tasks)

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        _, _, mappings = run_tether(rules, tasks)
        kpis, kpi_values = make_kpis(args.kpis, rng)
        run_drift(tasks, mappings, kpis, kpi_values)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
        print(buf.getvalue())
        return 0

    gc.collect()
    tasks_mb = peak_rss_mb()
    compile_s, map_s, mappings = run_tether(rules, tasks)
    kpis, kpi_values = make_kpis(args.kpis, rng)
    gc.collect()
    status_s, drift_s, findings = run_drift(tasks, mappings, kpis, kpi_values)
    tether_hits, n_mappings = {(m.task, m.rule_id) for m in mappings}, len(mappings)
    drift_hits, n_findings = {(f.subject, f.rule_id) for f in findings}, len(findings)
    signals = Counter(f.signal for f in findings)
    del findings
    gc.collect()
    facts_s, assert_s, durable_hits = run_durable(rules, tasks)
    timed_peak_mb = peak_rss_mb()
    gc.collect()
    names = compile_rules(rules, "ref").field_names()
    ref_s, ref_hits = run_reference(rules, tasks, names)
    drift_ref_hits = drift_reference(tasks, mappings, kpis, kpi_values)

    per_task = Counter(ref for ref, _ in ref_hits)
    histogram = Counter(per_task.get(t.ref, 0) for t in tasks)
    print(f"tasks={n} rules={len(rules)} matches={len(tether_hits)} mappings={n_mappings} "
          f"seed={args.seed} (setup {setup:.1f} s)")
    print("rules matched per task: " + ", ".join(f"{k}: {histogram[k]}" for k in sorted(histogram)))
    rows = [("tether map (facts + engine + results)", map_s, "tasks/s"),
            ("durable-rules assert_fact only", assert_s, "facts/s"),
            ("python reference evaluator", ref_s, "tasks/s")]
    for label, secs, unit in rows:
        print(f"{label:<40}{secs:8.2f} s {n / secs:>10,.0f} {unit}")
    print(f"  (Mapper() compile + register: {compile_s:.3f} s; building the bare run's facts "
          f"with the rule set's projector, untimed there: {facts_s:.2f} s)")
    print(f"overhead of tether over bare durable-rules: {map_s / assert_s:.2f}x")
    print(f"drift pack ({len(kpis)} KPIs): status {status_s:.3f} s, assess {drift_s:.2f} s, "
          f"{n / drift_s:,.0f} tasks/s ({map_s / drift_s:.2f}x the map's speed); findings: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(signals.items())))
    print(f"peak RSS: {timed_peak_mb:,.0f} MB through map, drift and bare runs (tasks alone: "
          f"{tasks_mb:,.0f} MB); {peak_rss_mb():,.0f} MB after the reference checks")

    ok = True
    for stage, label, hits, mine in (("map", "durable-rules", durable_hits, tether_hits),
                                     ("map", "reference", ref_hits, tether_hits),
                                     ("drift", "reference", drift_ref_hits, drift_hits)):
        if hits != mine:
            ok = False
            only_t, only_o = sorted(mine - hits), sorted(hits - mine)
            print(f"MISMATCH {stage}: tether vs {label}: {len(only_t)} only in tether "
                  f"{only_t[:5]}, {len(only_o)} only in {label} {only_o[:5]}")
    for stage, listed, distinct in (("map", n_mappings, len(tether_hits)),
                                    ("drift", n_findings, len(drift_hits))):
        if listed != distinct:
            ok = False
            print(f"MISMATCH {stage}: {listed} results for {distinct} (subject, rule) pairs")
    print("match checks: " + ("all agree" if ok else "MISMATCH (see above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
