"""Run the real pipeline on a generated portfolio and score its findings against the planted
truth: per signal TP/FP/FN, precision and recall, writes per healthy item, and whether Tether
saw the KPI statuses and mappings that were planted (if not, the generator is to blame)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tether.pipeline.run import RunResult, run_pass
from tether.workspace import load_workspace

from .generator import generate
from .mutants import MUTANTS
from .portfolio import ROWS, Pair, Portfolio, row

EXAMPLES = 3  # FP/FN examples kept per signal


@dataclass
class SignalScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    duplicates: int = 0  # the same (subject, signal) raised more than once
    unnamed: int = 0  # true positives whose message leaves out what the signal definitions say it names
    fp_examples: list[str] = field(default_factory=list)
    fn_examples: list[str] = field(default_factory=list)
    unnamed_examples: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, other: SignalScore) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.duplicates += other.duplicates
        self.unnamed += other.unnamed
        self.fp_examples += other.fp_examples[:EXAMPLES - len(self.fp_examples)]
        self.fn_examples += other.fn_examples[:EXAMPLES - len(self.fn_examples)]
        self.unnamed_examples += other.unnamed_examples[:EXAMPLES - len(self.unnamed_examples)]


@dataclass
class Report:
    """Scores over one or more portfolios; ``problems`` are the generator's own failures
    (a KPI status or a mapping Tether computed differently from what was planted)."""

    seeds: list[int] = field(default_factory=list)
    signals: dict[str, SignalScore] = field(default_factory=lambda: {r: SignalScore() for r in ROWS})
    healthy_items: int = 0
    healthy_writes: int = 0
    ignored: int = 0
    unscored: Counter[str] = field(default_factory=Counter)  # by row: pairs left unscored
    unscored_raised: Counter[str] = field(default_factory=Counter)  # of which Tether raised
    expected: int = 0
    problems: list[str] = field(default_factory=list)
    # Disagreements by row, and by (row, misreading) those a misreading in mutants.py
    # accounts for (it raises exactly what Tether raised there): a likely diagnosis.
    disagreements: Counter[str] = field(default_factory=Counter)
    explained: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def writes_per_healthy_item(self) -> float:
        return self.healthy_writes / self.healthy_items if self.healthy_items else 0.0

    def total(self) -> SignalScore:
        out = SignalScore()
        for s in self.signals.values():
            out.tp, out.fp, out.fn = out.tp + s.tp, out.fp + s.fp, out.fn + s.fn
        return out

    def add(self, other: Report) -> None:
        self.seeds += other.seeds
        for name, s in other.signals.items():
            self.signals.setdefault(name, SignalScore()).add(s)
        self.healthy_items += other.healthy_items
        self.healthy_writes += other.healthy_writes
        self.ignored += other.ignored
        self.unscored.update(other.unscored)
        self.unscored_raised.update(other.unscored_raised)
        self.expected += other.expected
        self.problems += other.problems
        self.disagreements.update(other.disagreements)
        self.explained.update(other.explained)
        self.seconds += other.seconds


def run_tether(portfolio: Portfolio) -> RunResult:
    """``tether plan`` on the portfolio as of its date, on a fresh state store."""
    ws = load_workspace(portfolio.folder / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, "plan", clock=lambda: portfolio.as_of)


def check_planting(portfolio: Portfolio, result: RunResult) -> list[str]:
    """Where Tether's KPI statuses or mappings differ from what was planted: an ambiguous
    series or a generator bug, so the truth built on it cannot be trusted."""
    problems = []
    tag = f"seed {portfolio.seed}"
    for plan in portfolio.kpis:
        st = result.kpi_statuses.get(plan.id)
        if st is None:
            problems.append(f"{tag}: no status for kpi:{plan.id}")
            continue
        group = {"at_risk": "slipping", "off_track": "slipping"}.get(st.status, st.status)
        if group != plan.group:
            problems.append(f"{tag}: kpi:{plan.id} ({plan.cls}) planted {plan.group}, Tether says "
                            f"{st.status}: {st.reason}")
        if not plan.active or plan.group == "unknown":
            continue
        if st.trend != plan.trend:
            problems.append(f"{tag}: kpi:{plan.id} ({plan.cls}) planted trend {plan.trend}, "
                            f"Tether says {st.trend}: {st.reason}")
        if st.in_band is not None and st.in_band == plan.behind:
            problems.append(f"{tag}: kpi:{plan.id} ({plan.cls}) planted behind={plan.behind}, "
                            f"Tether says in_band={st.in_band}: {st.reason}")
        if bool(st.ahead) != plan.ahead:
            problems.append(f"{tag}: kpi:{plan.id} ({plan.cls}) planted ahead={plan.ahead}, "
                            f"Tether says ahead={st.ahead}: {st.reason}")
        if plan.var is not None and st.value_at_risk is not None and \
                (plan.var >= 1e6) != (st.value_at_risk >= 1e6):
            problems.append(f"{tag}: kpi:{plan.id} planted value at risk {plan.var:,.0f}, Tether "
                            f"says {st.value_at_risk:,.0f}")
    planted = {(i.ref, k, w) for i in portfolio.items for k, w in i.serves.items()}
    mapped = {(m.task, m.kpi, m.weight) for m in result.mappings}
    for ref, kpi, w in sorted(planted ^ mapped):
        side = "planted but not mapped" if (ref, kpi, w) in planted else "mapped but not planted"
        problems.append(f"{tag}: {ref} -> {kpi} (weight {w:g}) {side}")
    return problems


def score(portfolio: Portfolio, result: RunResult | None = None) -> Report:
    """Compare one pass's findings with the portfolio's truth (ignored pairs left out)."""
    started = time.perf_counter()
    result = result or run_tether(portfolio)
    report = Report(seeds=[portfolio.seed], ignored=len(portfolio.ignore),
                    expected=len(portfolio.expected))
    report.problems = check_planting(portfolio, result)
    raised: dict[Pair, str] = {}
    texts: dict[Pair, list[str]] = {}
    counts = Counter((f.subject, f.signal) for f in result.findings)
    for f in result.findings:
        raised.setdefault((f.subject, f.signal), f"{f.reason} [rule {f.rule_id}]")
        # What the finding says: its message and its advice line (the comment shows both).
        texts.setdefault((f.subject, f.signal), []).append(f"{f.reason} {f.advice}".lower())
    truth = portfolio.expected
    tag = f"seed {portfolio.seed}"
    for pair, n in counts.items():
        if n > 1 and pair not in portfolio.ignore:
            report.signals.setdefault(row(*pair), SignalScore()).duplicates += n - 1
    for pair in portfolio.ignore:  # how Tether read what the definitions leave open
        report.unscored[row(*pair)] += 1
        report.unscored_raised[row(*pair)] += pair in raised
    for pair in sorted(set(raised) | set(truth)):  # sorted: the same examples every run
        if pair in portfolio.ignore:
            continue
        s = report.signals.setdefault(row(*pair), SignalScore())
        if pair in raised and pair in truth:
            s.tp += 1
            missing = _unnamed(portfolio.names.get(pair, []), texts[pair])
            if pair[1] == "gate" and not missing:
                missing = _anchor_unnamed(portfolio, pair[0][4:], result)
            if missing:
                s.unnamed += 1
                if len(s.unnamed_examples) < EXAMPLES:
                    s.unnamed_examples.append(f"{tag} {pair[0]}: names none of {missing}: "
                                              f"{raised[pair]}")
        elif pair in raised:
            s.fp += 1
            if len(s.fp_examples) < EXAMPLES:
                s.fp_examples.append(f"{tag} {pair[0]}: {raised[pair]}")
        else:
            s.fn += 1
            if len(s.fn_examples) < EXAMPLES:
                s.fn_examples.append(f"{tag} {pair[0]}: expected because {truth[pair]}")
    flagged = {subject for subject, signal in set(truth) | portfolio.ignore
               if not subject.startswith("kpi:")}
    healthy = {i.ref for i in portfolio.items} - flagged
    report.healthy_items = len(healthy)
    report.healthy_writes = sum(1 for op in result.ops if op.task in healthy)
    wrong = (set(raised) ^ set(truth)) - portfolio.ignore
    if wrong:
        diagnose(report, portfolio, wrong, set(raised))
    report.seconds = time.perf_counter() - started
    return report


def diagnose(report: Report, portfolio: Portfolio, wrong: set[Pair], raised: set[Pair]) -> None:
    """Count, per row, the disagreements and which misreadings (mutants.py) reproduce them."""
    for pair in wrong:
        report.disagreements[row(*pair)] += 1
    for name, cls in MUTANTS.items():
        verdict = set(cls(portfolio.kpis, portfolio.items, portfolio.as_of,
                          entities=portfolio.entities).run()[0])
        for pair in wrong:
            if (pair in verdict) == (pair in raised):
                report.explained[(row(*pair), name)] += 1


def _unnamed(groups: list[set[str]], texts: list[str]) -> list[str] | None:
    """The first group of names that none of the finding's messages mentions, if any."""
    for group in groups:
        if group and not any(name.lower() in text for name in group for text in texts):
            return sorted(group)
    return None


def _anchor_unnamed(portfolio: Portfolio, kid: str, result: RunResult) -> list[str] | None:
    """A gate's owner is mentioned on the KPI's anchor items: each anchor gets a comment
    naming the owner (the files connector has no @-mentions, so the name is what shows)."""
    plan = portfolio.kpi(kid)
    for source, key in plan.anchors.items():
        comments = [op.value for op in result.ops if op.source == source and op.key == key
                    and op.kind.value.endswith("comment")]
        if not any(plan.owner in body for body in comments):
            return [f"{plan.owner} on anchor {source}:{key}"]
    return None


def score_seeds(seeds: list[int] | range, workdir: Path) -> Report:
    """Generate, run and score each seed in its own folder under ``workdir``."""
    total = Report()
    for seed in seeds:
        started = time.perf_counter()
        portfolio = generate(seed, workdir / f"seed-{seed}")
        one = score(portfolio)
        one.seconds = time.perf_counter() - started
        total.add(one)
    return total


def format_report(report: Report, examples: int = EXAMPLES) -> str:
    """The per-signal table, the totals, and the first FP/FN examples of each signal."""
    lines = [f"{'signal':<16}{'TP':>6}{'FP':>6}{'FN':>6}{'precision':>11}{'recall':>8}{'dup':>5}"
             f"{'unnamed':>9}"]
    for name, s in report.signals.items():
        lines.append(f"{name:<16}{s.tp:>6}{s.fp:>6}{s.fn:>6}{s.precision:>11.3f}{s.recall:>8.3f}"
                     f"{s.duplicates:>5}{s.unnamed:>9}")
    t = report.total()
    lines.append(f"{'overall':<16}{t.tp:>6}{t.fp:>6}{t.fn:>6}{t.precision:>11.3f}{t.recall:>8.3f}")
    lines.append(f"seeds {len(report.seeds)}; expected pairs {report.expected}, left unscored "
                 f"{report.ignored}; writes per healthy item {report.writes_per_healthy_item:.2f} "
                 f"({report.healthy_writes} on {report.healthy_items} items); {report.seconds:.1f} s")
    if report.unscored:
        lines.append("unscored (a reading the definitions leave open), raised by Tether: " + ", ".join(
            f"{name} {report.unscored_raised[name]}/{n}" for name, n in sorted(report.unscored.items())))
    for name, n in sorted(report.disagreements.items()):
        fits = sorted(((c, m) for (r, m), c in report.explained.items() if r == name), reverse=True)
        said = ", ".join(f"{m} {c}/{n}" for c, m in fits[:3]) or "no known misreading"
        lines.append(f"{name}: {n} disagreements; reproduced by {said}")
    if report.problems:
        lines.append(f"PLANTING PROBLEMS ({len(report.problems)}; the truth is unreliable there):")
        lines += [f"  {p}" for p in report.problems[:10]]
    for name, s in report.signals.items():
        for kind, found in (("FP", s.fp_examples), ("FN", s.fn_examples),
                            ("unnamed", s.unnamed_examples)):
            for example in found[:examples]:
                lines.append(f"  {name} {kind}: {example}")
    return "\n".join(lines)
