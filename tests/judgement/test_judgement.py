"""The drift pack judged against the README's drift signal table on seeded random portfolios:
every signal's precision and recall at 0.95 or better with default settings, and checks that
the generator plants what it says (statuses, mappings, decoys) so a failure means the pack.

`python tests/bench/bench_judgement.py --seeds 200` runs the same on more seeds."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from .generator import generate
from .mutants import MUTANTS, coverage
from .portfolio import ROWS, Portfolio
from .score import Report, format_report, score

SEEDS = range(20)
FLOOR = 0.95


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Portfolio], Report]:
    workdir = tmp_path_factory.mktemp("judgement")
    portfolios = [generate(seed, workdir / f"seed-{seed}") for seed in SEEDS]
    report = Report()
    for portfolio in portfolios:
        report.add(score(portfolio))
    return portfolios, report


def _examples(report: Report, signal: str) -> str:
    s = report.signals[signal]
    lines = [f"  FP {e}" for e in s.fp_examples] + [f"  FN {e}" for e in s.fn_examples]
    return "\n".join(lines) or "  (no examples)"


@pytest.mark.parametrize("signal", ROWS)
def test_signal_precision_and_recall(judged: tuple[list[Portfolio], Report], signal: str) -> None:
    report = judged[1]
    s = report.signals[signal]
    if s.precision < FLOOR or s.recall < FLOOR:
        pytest.fail(f"drift signal '{signal}' disagrees with the signal definitions on seeds "
                    f"{SEEDS.start}-{SEEDS.stop - 1}: precision {s.precision:.3f}, recall "
                    f"{s.recall:.3f} (TP {s.tp}, FP {s.fp}, FN {s.fn}); first examples:\n"
                    f"{_examples(report, signal)}\nwhole table:\n{format_report(report)}",
                    pytrace=False)


def test_no_signal_outside_the_definitions(judged: tuple[list[Portfolio], Report]) -> None:
    report = judged[1]
    extra = {name: s.fp for name, s in report.signals.items() if name not in ROWS}
    assert not extra, f"findings of signals the signal definitions do not define: {extra}\n" + "\n".join(
        _examples(report, name) for name in extra)


def test_each_pair_raised_once(judged: tuple[list[Portfolio], Report]) -> None:
    report = judged[1]
    dups = {name: s.duplicates for name, s in report.signals.items() if s.duplicates}
    assert not dups, f"the same (subject, signal) raised more than once: {dups}"


def test_messages_name_owner_and_shared_key(judged: tuple[list[Portfolio], Report]) -> None:
    """guardrail names the guardrail's owner (the KPI finding: each guardrail and its
    owner); conflict names the shared key."""
    report = judged[1]
    bad = {name: s.unnamed_examples for name, s in report.signals.items() if s.unnamed}
    assert not bad, "messages leave out what the signal definitions say they name:\n" + "\n".join(
        f"  {name}: {example}" for name, examples in bad.items() for example in examples)


def test_tether_sees_the_planted_statuses_and_mappings(judged: tuple[list[Portfolio], Report]) -> None:
    """Otherwise a series is ambiguous or the generator is wrong, and so is the truth."""
    problems = judged[1].problems
    assert not problems, f"{len(problems)} planting problems:\n" + "\n".join(problems[:10])


def test_truth_covers_every_signal_and_leaves_little_unscored(
        judged: tuple[list[Portfolio], Report]) -> None:
    portfolios, report = judged
    missing = [name for name, s in report.signals.items() if name in ROWS and s.tp + s.fn == 0]
    assert not missing, f"no portfolio plants {missing}"
    expected = sum(len(p.expected) for p in portfolios)
    ignored = sum(len(p.ignore) for p in portfolios)
    assert ignored <= 0.05 * expected, f"{ignored} pairs unscored for {expected} expected"


def test_decoys_tell_each_misreading_apart(judged: tuple[list[Portfolio], Report]) -> None:
    """A pack that misread a definition (see mutants.py) would score differently here."""
    portfolios = judged[0]
    caught = dict.fromkeys(MUTANTS, 0)
    for p in portfolios:
        for name, n in coverage(p).items():
            caught[name] += n
    assert all(caught.values()), f"no decoy separates {[n for n, c in caught.items() if not c]}"


def test_same_seed_same_portfolio(tmp_path: Path) -> None:
    a, b = generate(7, tmp_path / "a"), generate(7, tmp_path / "b")
    assert (a.as_of, a.expected, a.ignore) == (b.as_of, b.expected, b.ignore)
    files = sorted(str(f.relative_to(a.folder)) for f in a.folder.rglob("*") if f.is_file())
    assert files and files == sorted(str(f.relative_to(b.folder)) for f in b.folder.rglob("*")
                                     if f.is_file())
    match, mismatch, errors = filecmp.cmpfiles(a.folder, b.folder, files, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert generate(8, tmp_path / "c").expected != a.expected
