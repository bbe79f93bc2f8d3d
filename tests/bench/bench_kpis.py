"""The two KPIs the whole-sync benchmarks judge against (a ``kpis:`` block of tether.yaml);
no Tether import, so a bench can read it before it snapshots Tether's code."""

KPIS = """\
kpis:
  - {id: growth, name: Growth, owner: Ada, weight: 2, baseline: 0, baseline_date: 2025-01-01,
     target: 100, deadline: 2026-12-31,
     measurements: [{date: 2025-02-01, value: 5}, {date: 2025-03-01, value: 9},
                    {date: 2025-04-01, value: 12}, {date: 2025-05-01, value: 14}]}
  - {id: retention, name: Retention, owner: Bo, weight: 1, direction: down, baseline: 20,
     baseline_date: 2025-01-01, target: 10, deadline: 2026-12-31,
     measurements: [{date: 2025-02-01, value: 20}, {date: 2025-03-01, value: 21},
                    {date: 2025-04-01, value: 21}, {date: 2025-05-01, value: 22}]}
"""
