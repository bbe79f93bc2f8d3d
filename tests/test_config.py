"""tether.yaml loading: defaults, located problems, env interpolation, schema, CSV KPI values."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import field_validator
from tether.config.load import load_config
from tether.config.model import Config
from tether.config.schema import config_schema
from tether.connector import Options
from tether.errors import InvalidInput, Problem
from tether.kpi.sources import CsvKpiSource, CsvOptions
from tether.model import KPI, Measurement
from tether.plugins import Plugins


class FakeOptions(Options):
    path: str
    token: str | None = None
    mode: str = "x"

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v.startswith("bad"):
            raise ValueError(f"mode {v} is not supported")  # echoes input, as plugins may
        return v


@pytest.fixture
def plugins(fake_plugins) -> Plugins:
    return fake_plugins(FakeOptions)


def write(folder: Path, text: str, name: str = "tether.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, plugins: Plugins, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(InvalidInput) as info:
        load_config(path, plugins, env or {})
    return info.value.problems


def only(found: list[Problem], key: str) -> Problem:
    hits = [p for p in found if p.key == key]
    assert len(hits) == 1, found
    return hits[0]


MINIMAL = """
sources:
  - name: ops
    type: fake
    options: {path: data/export.csv}
"""


def test_minimal_config_loads_with_defaults(tmp_path: Path, plugins: Plugins) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), plugins, {})
    assert isinstance(cfg, Config)
    assert cfg.base_dir == tmp_path.resolve()
    assert cfg.file == (tmp_path / "tether.yaml").resolve()
    assert [(s.name, s.type) for s in cfg.sources] == [("ops", "fake")]
    assert isinstance(cfg.sources[0].options, FakeOptions)
    assert cfg.sources[0].options.path == "data/export.csv"
    assert cfg.state_url == f"sqlite:///{(tmp_path.resolve() / '.tether' / 'state.db').as_posix()}"
    wb = cfg.writeback
    assert (wb.label_prefix, wb.comments, wb.mentions, wb.budget, wb.source_budget, wb.since,
            wb.templates) == ("tether", True, True, 30, None, None, None)
    assert cfg.retention_days == 180
    assert cfg.rules.builtin is True
    assert cfg.rules.packs == () and cfg.rules.disable == frozenset()
    assert cfg.kpis == () and cfg.kpi_sources == ()


def test_folder_path_and_default_rules_folder(tmp_path: Path, plugins: Plugins) -> None:
    write(tmp_path, MINIMAL)
    (tmp_path / "rules").mkdir()
    cfg = load_config(tmp_path, plugins, {})
    assert cfg.rules.packs == (tmp_path.resolve() / "rules",)


def test_full_config_loads(tmp_path: Path, plugins: Plugins) -> None:
    (tmp_path / "packs" / "extra").mkdir(parents=True)
    (tmp_path / "one.yaml").write_text("rules: []\n")
    path = write(tmp_path, """
        version: 1
        sources:
          - name: ops
            type: fake
            options: {path: a.csv, token: "${TOKEN}"}
          - name: eng-2
            type: fake
            options:
              path: b.csv
        kpis:
          - id: opex-reduction
            name: Cut operating cost by $10M
            owner: dana
            weight: 3
            lifecycle: paused
            x-jira-goal: 10
          - id: nps.q3
            name: 2025
        kpi_sources:
          - type: csv
            options: {path: kpi-values.csv}
        rules:
          packs: [packs/extra, one.yaml]
          builtin: false
          disable: [drift.stale, R2]
        writeback:
          label_prefix: tt
          comments: false
          mentions: true
          budget: "${BUDGET}"
          source_budget: 0
        state:
          url: postgresql://u:${PW}@db/tether
        """)
    cfg = load_config(path, plugins, {"TOKEN": "t0k", "BUDGET": "12", "PW": "pw"})
    assert cfg.sources[0].options.token == "t0k"
    assert [s.name for s in cfg.sources] == ["ops", "eng-2"]
    assert cfg.kpis == (
        KPI("opex-reduction", "Cut operating cost by $10M", "paused", 3.0, "dana"),
        KPI("nps.q3", "2025"),
    )
    assert cfg.kpis[0].attrs == {"x-jira-goal": 10}
    assert cfg.kpi_sources[0].type == "csv"
    assert isinstance(cfg.kpi_sources[0].options, CsvOptions)
    root = tmp_path.resolve()
    assert cfg.rules.packs == (root / "packs" / "extra", root / "one.yaml")
    assert cfg.rules.builtin is False
    assert cfg.rules.disable == frozenset({"drift.stale", "R2"})
    assert (cfg.writeback.label_prefix, cfg.writeback.comments, cfg.writeback.mentions) == (
        "tt", False, True)
    assert (cfg.writeback.budget, cfg.writeback.source_budget) == (12, 0)
    assert cfg.state_url == "postgresql://u:pw@db/tether"


def test_missing_file(tmp_path: Path, plugins: Plugins) -> None:
    (found,) = problems(tmp_path / "tether.yaml", plugins)
    assert (found.line, found.column) == (1, 1)
    assert "no tether.yaml here; run `tether init` or pass --config PATH" in found.message


def test_unknown_top_level_key_suggests(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + "kpi_source: []\n")
    found = only(problems(path, plugins), "kpi_source")
    assert (found.file, found.line, found.column) == (str(path), 5, 1)
    assert found.message == "unknown key 'kpi_source'; did you mean 'kpi_sources'?"


def test_unknown_nested_key_suggests(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + "writeback:\n  budjet: 3\n")
    found = only(problems(path, plugins), "writeback.budjet")
    assert found.line == 6
    assert found.message == "unknown key 'budjet'; did you mean 'budget'?"


def test_unknown_connector_option(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, """
        sources:
          - name: ops
            type: fake
            options:
              path: x.csv
              tokn: abc
        """)
    found = only(problems(path, plugins), "sources[0].options.tokn")
    assert (found.line, found.column) == (6, 7)
    assert found.message == "unknown option 'tokn'; did you mean 'token'?"


def test_missing_required_option(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "sources:\n  - name: ops\n    type: fake\n")
    found = only(problems(path, plugins), "sources[0].options.path")
    assert found.line == 2 and found.message == "'path' is required; add it"


def test_unknown_connector_type_lists_known(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "sources:\n  - name: ops\n    type: fak\n")
    found = only(problems(path, plugins), "sources[0].type")
    assert (found.line, found.column) == (3, 5)
    assert found.message == "unknown source type 'fak'; did you mean 'fake'? known types: fake"


def test_duplicate_source_name(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + MINIMAL.replace("sources:\n", ""))
    found = only(problems(path, plugins), "sources[1].name")
    assert found.line == 6
    assert found.message == ("duplicate source name 'ops' (first on line 2); "
                             "give each source its own name")


def test_bad_and_duplicate_kpi_ids(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + """
kpis:
  - id: Opex Reduction
    name: a
  - id: growth
    name: b
  - id: growth
    name: c
""")
    found = problems(path, plugins)
    bad = only(found, "kpis[0].id")
    assert (bad.line, bad.column) == (7, 5)
    assert "lowercase letters, digits" in bad.message
    dup = only(found, "kpis[2].id")
    assert dup.line == 11 and "duplicate KPI id 'growth' (first on line 9)" in dup.message


def test_wrong_types(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + """
kpis:
  - id: a
    name: A
    weight: -1
    lifecycle: activ
rules:
  builtin: maybe
  disable: drift
writeback:
  budget: lots
  source_budget: true
  comments: [yes]
  label_prefix: 9lives
""")
    found = {p.key: (p.line, p.message) for p in problems(path, plugins)}
    assert found == {
        "kpis[0].weight": (9, "must be a number ≥ 0"),
        "kpis[0].lifecycle": (10, "must be one of: active, paused, achieved, missed, dropped, "
                                  "retired; did you mean 'active'?"),
        "rules.builtin": (12, "must be true or false"),
        "rules.disable": (13, "must be a list of strings"),
        "writeback.budget": (15, "must be a whole number ≥ 0"),
        "writeback.source_budget": (16, "must be a whole number ≥ 0, or null"),
        "writeback.comments": (17, "must be true or false"),
        "writeback.label_prefix": (18, "must be lowercase letters, digits, '-' or '_', "
                                       "starting with a letter"),
    }


def test_section_of_wrong_shape(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "sources: ops\nrules: [a]\nkpis: 3\n")
    found = {p.key: p.message for p in problems(path, plugins)}
    assert found["sources"] == "must be a list"
    assert found["rules"].startswith("must be a mapping with keys packs, builtin, disable")
    assert found["kpis"].startswith("must be a list of KPIs")


def test_missing_sources_and_version(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, "version: 2\n")
    found = {p.key: (p.line, p.message) for p in problems(path, plugins)}
    assert found["sources"] == (1, "'sources' is required; add it")
    assert found["version"][1].startswith("must be 1")


def test_missing_env_var(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, """
sources:
  - name: ops
    type: fake
    options:
      path: x
      token: ${JIRA_TOKEN}
""")
    (found,) = problems(path, plugins)
    assert (found.line, found.column, found.key) == (6, 7, "sources[0].options.token")
    assert found.message == ("environment variable JIRA_TOKEN is not set; "
                             "export it before running tether")


def test_env_interpolation_and_escape(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, """
sources:
  - name: ops
    type: fake
    options:
      path: https://${HOST}/x/${HOST}
      token: "$${NOT_A_VAR} costs $$5"
""")
    cfg = load_config(path, plugins, {"HOST": "jira.example"})
    assert cfg.sources[0].options.path == "https://jira.example/x/jira.example"
    assert cfg.sources[0].options.token == "${NOT_A_VAR} costs $$5"


def test_malformed_reference(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL.replace("data/export.csv", "'${oops'"))
    (found,) = problems(path, plugins)
    assert found.key == "sources[0].options.path" and "$${" in found.message


def test_env_uses_os_environ_by_default(tmp_path: Path, plugins: Plugins,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_TEST_PATH", "from-env.csv")
    path = write(tmp_path, MINIMAL.replace("data/export.csv", "'${TETHER_TEST_PATH}'"))
    assert load_config(path, plugins).sources[0].options.path == "from-env.csv"


def test_secrets_never_printed(tmp_path: Path, plugins: Plugins) -> None:
    secret = "s3cr3t-Value"
    path = write(tmp_path, """
sources:
  - name: ${SECRET}
    type: fake
    options: {path: x, mode: "bad-${SECRET}"}
  - name: ${SECRET}
    type: ${SECRET}
kpis:
  - id: ${SECRET}
    name: x
    lifecycle: ${SECRET}
writeback:
  budget: ${SECRET}
state:
  url: ${SECRET}
""")
    with pytest.raises(InvalidInput) as info:
        load_config(path, plugins, {"SECRET": secret})
    keys = {p.key for p in info.value.problems}
    assert {"sources[0].name", "sources[0].options.mode", "sources[1].type", "kpis[0].id",
            "kpis[0].lifecycle", "writeback.budget", "state.url"} <= keys
    assert secret not in str(info.value)
    assert secret.lower() not in str(info.value).lower()


def test_missing_rule_pack(tmp_path: Path, plugins: Plugins) -> None:
    (tmp_path / "rules").mkdir()
    path = write(tmp_path, MINIMAL + "rules:\n  packs:\n    - rules\n    - more-rules\n")
    (found,) = problems(path, plugins)
    assert (found.line, found.column, found.key) == (8, 7, "rules.packs[1]")
    assert found.message.startswith("rule pack 'more-rules' does not exist")


def test_kpi_file_problems_located_in_that_file(tmp_path: Path, plugins: Plugins) -> None:
    kpi_file = write(tmp_path, """
kpis:
  - id: good
    name: Good
  - id: bad id
    name: Bad
  - id: good
    name: Again
""", name="kpis.yaml")
    path = write(tmp_path, MINIMAL + "kpis: kpis.yaml\nbogus: 1\n")
    found = problems(path, plugins)
    # The config's own problems come first, then the KPI file's, each in file order.
    assert [(p.file, p.line, p.key) for p in found] == [
        (str(path), 6, "bogus"),
        (str(kpi_file), 4, "kpis[1].id"),
        (str(kpi_file), 6, "kpis[2].id"),
    ]


def test_kpi_file_loads_and_checks_its_shape(tmp_path: Path, plugins: Plugins) -> None:
    write(tmp_path, "kpis:\n  - id: a\n    name: A\n", name="kpis.yaml")
    cfg = load_config(write(tmp_path, MINIMAL + "kpis: kpis.yaml\n"), plugins, {})
    assert cfg.kpis == (KPI("a", "A"),)

    kpi_file = write(tmp_path, "kpi:\n  - id: a\n", name="kpis.yaml")
    found = {(p.file, p.key): p.message for p in problems(tmp_path / "tether.yaml", plugins)}
    assert found[(str(kpi_file), "kpi")] == "unknown key 'kpi'; did you mean 'kpis'?"
    assert found[(str(kpi_file), "kpis")] == "'kpis' is required; add it"


def test_missing_kpi_file_and_bad_yaml_in_it(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + "kpis: nowhere.yaml\n")
    (found,) = problems(path, plugins)
    assert (found.file, found.line, found.key) == (str(path), 5, "kpis")
    assert found.message.startswith("KPI file 'nowhere.yaml' not found")

    kpi_file = write(tmp_path, "kpis: [\n", name="nowhere.yaml")
    (found,) = problems(path, plugins)
    assert found.file == str(kpi_file) and "not valid YAML" in found.message


def test_all_problems_reported_at_once(tmp_path: Path, plugins: Plugins) -> None:
    path = write(tmp_path, """
verison: 1
sources:
  - name: ops
    type: fake
    options: {path: x, extra: 1}
  - name: ops
    type: nope
kpis:
  - id: UPPER
    name: x
writeback:
  budget: -1
rules:
  packs: [missing]
""")
    found = problems(path, plugins, {})
    assert [(p.line, p.key) for p in found] == [
        (1, "verison"),
        (5, "sources[0].options.extra"),
        (6, "sources[1].name"),
        (7, "sources[1].type"),
        (9, "kpis[0].id"),
        (12, "writeback.budget"),
        (14, "rules.packs[0]"),
    ]
    assert found[0].message == "unknown key 'verison'; did you mean 'version'?"
    assert "known types: fake" in found[3].message


def test_not_a_mapping_and_empty(tmp_path: Path, plugins: Plugins) -> None:
    (found,) = problems(write(tmp_path, "- a\n- b\n"), plugins)
    assert found.line == 1 and "must be a mapping" in found.message
    (found,) = problems(write(tmp_path, ""), plugins)
    assert found.key == "sources" and "required" in found.message


def test_empty_sections_mean_defaults(tmp_path: Path, plugins: Plugins) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + "rules:\nwriteback:\nstate:\nkpis:\n"),
                      plugins, {})
    assert cfg.writeback.budget == 30 and cfg.rules.builtin and cfg.kpis == ()


# -- JSON Schema ---------------------------------------------------------------------------------


def test_schema_accepts_good_and_rejects_bad(tmp_path: Path, plugins: Plugins) -> None:
    schema = config_schema(plugins)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(textwrap.dedent("""
        version: 1
        sources:
          - name: ops
            type: fake
            options: {path: a.csv, token: t}
        kpis:
          - {id: a, name: A, weight: 2, lifecycle: active, x-extra: kept}
        kpi_sources:
          - {type: csv, options: {path: v.csv}}
        rules: {packs: [rules], builtin: true, disable: [x]}
        writeback: {label_prefix: tether, budget: 3, source_budget: null}
        state: {url: "sqlite:///x.db"}
        judgement: {window_days: 60, entities: {labels: ["customer:*"]}}
        serve: {every: 15m, debounce: 2, report_token_env: PMO_REPORT_TOKEN}
        """))
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "kpis": "kpis.yaml"})) == []

    def rejects(data: dict) -> bool:
        return bool(list(validator.iter_errors(data)))

    source = good["sources"][0]
    assert rejects({**good, "budjet": 1})
    assert rejects({**good, "sources": [{**source, "options": {"path": "a", "tokn": "t"}}]})
    assert rejects({**good, "sources": [{**source, "options": {}}]})
    assert rejects({**good, "sources": [{**source, "type": "nope"}]})
    assert rejects({**good, "sources": [{**source, "name": "Bad Name"}]})
    assert rejects({**good, "kpi_sources": [{"type": "csv", "options": {"file": "v.csv"}}]})
    assert rejects({**good, "kpis": [{"id": "a", "name": "A", "lifecycle": "nope"}]})
    assert rejects({**good, "kpis": [{"id": "a", "name": "A", "extra": "kept"}]})
    assert rejects({**good, "status": {"at_risk_below": 2}})
    assert rejects({**good, "writeback": {"budget": -1}})
    assert rejects({k: v for k, v in good.items() if k != "sources"})

    props = schema["$defs"]["WritebackModel"]["properties"]
    assert props["budget"]["description"] and props["budget"]["default"] == 30


# -- CSV KPI values ------------------------------------------------------------------------------


def test_csv_kpi_source_registered(plugins: Plugins) -> None:
    assert plugins.kpi_source_types()["csv"] is CsvKpiSource


def test_csv_kpi_source_reads_rows(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text(
        "\ufeffkpi,date,value,note\n"
        "opex,2024-03-01,12.5,first\n"
        "\n"
        "opex,2024-03-02T10:00:00+02:00,-3,\n"
        "nps,2024-03-02 09:30,40,\n", encoding="utf-8")
    source = CsvKpiSource(CsvOptions(path="v.csv"), tmp_path)
    assert source.measurements() == [
        Measurement("opex", datetime(2024, 3, 1, tzinfo=UTC), 12.5),
        Measurement("opex", datetime(2024, 3, 2, 8, 0, tzinfo=UTC), -3.0),
        Measurement("nps", datetime(2024, 3, 2, 9, 30, tzinfo=UTC), 40.0),
    ]
    assert all(m.at.tzinfo is UTC for m in source.measurements())


def test_csv_kpi_source_locates_bad_rows(tmp_path: Path) -> None:
    file = tmp_path / "v.csv"
    file.write_text("date,kpi,value\n2024-03-01,opex,1\n2024-13-01,opex,x\n,,2\n")
    with pytest.raises(InvalidInput) as info:
        CsvKpiSource(CsvOptions(path="v.csv"), tmp_path).measurements()
    found = [(p.file, p.line, p.column, p.key) for p in info.value.problems]
    assert found == [
        (str(file), 3, 1, "date"),
        (str(file), 3, 3, "value"),
        (str(file), 4, 2, "kpi"),
        (str(file), 4, 1, "date"),
    ]
    assert "'x' is not a number" in str(info.value)


def test_csv_kpi_source_header_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text("kpi,when,value\n")
    with pytest.raises(InvalidInput, match="missing column.*date"):
        CsvKpiSource(CsvOptions(path="v.csv"), tmp_path).measurements()
    with pytest.raises(InvalidInput, match="cannot read KPI values"):
        CsvKpiSource(CsvOptions(path="gone.csv"), tmp_path).measurements()


def test_kpi_is_not_a_source_name(tmp_path):
    from tether.errors import InvalidInput
    from tether.plugins import Plugins

    (tmp_path / "tether.yaml").write_text(
        "sources:\n  - name: kpi\n    type: files\n    options: {path: x.csv, format: tether-csv}\n")
    with pytest.raises(InvalidInput) as info:
        load_config(tmp_path / "tether.yaml", Plugins())
    assert [(p.line, p.key) for p in info.value.problems] == [(2, "sources[0].name")]


def test_judgement_settings_load_and_bad_ones_are_located(tmp_path: Path,
                                                          plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + """
judgement:
  window_days: 60
  entities: {labels: ["team:*"], components: false, fields: [client], links: false}
""")
    judgement = load_config(path, plugins, {}).judgement
    assert judgement.window_days == 60
    keys = judgement.entities
    assert (keys.labels, keys.components, keys.fields, keys.links) == (
        ("team:*",), False, ("client",), False)
    assert load_config(write(tmp_path, MINIMAL), plugins, {}).judgement.entities.labels[0] \
        == "customer:*"
    path = write(tmp_path, MINIMAL + """
judgement:
  window_days: 3
  entities: {labels: segment, lables: []}
""")
    found = {p.key: (p.line, p.message) for p in problems(path, plugins)}
    assert found["judgement.window_days"][0] == 7 and "≥ 7" in found["judgement.window_days"][1]
    assert found["judgement.entities.labels"] == (8, "must be a list")
    assert "did you mean 'labels'" in found["judgement.entities.lables"][1]


def test_serve_takes_durations_and_says_which_value_is_wrong(tmp_path: Path,
                                                             plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + "serve:\n  every: 2h\n  debounce: 1.5s\n")
    serve = load_config(path, plugins, {}).serve
    assert (serve.every, serve.debounce, serve.report_token_env) == (
        7200.0, 1.5, "TETHER_REPORT_TOKEN")
    path = write(tmp_path, MINIMAL + "serve:\n  every: soon\n  debounce: 5s\n"
                 "  report_token_env: my token\n")
    found = problems(path, plugins)
    every, env = only(found, "serve.every"), only(found, "serve.report_token_env")
    assert every.line == MINIMAL.count("\n") + 1 and "30s, 15m or 2h" in every.message
    assert "environment variable's name" in env.message


def test_serve_takes_cron_expressions_and_refuses_bad_ones_by_line(tmp_path: Path,
                                                                   plugins: Plugins) -> None:
    path = write(tmp_path, MINIMAL + "serve:\n  every: '*/15 * * * *'\n  kpis_every: 6h\n")
    serve = load_config(path, plugins, {}).serve
    assert (serve.every, serve.kpis_every) == ("*/15 * * * *", 21600.0)
    path = write(tmp_path, MINIMAL + "serve:\n  every: '61 * * * *'\n  kpis_every: 5s\n")
    found = problems(path, plugins)
    every, kpis = only(found, "serve.every"), only(found, "serve.kpis_every")
    assert every.line == MINIMAL.count("\n") + 1 and "'*/15 * * * *'" in every.message
    assert kpis.line == MINIMAL.count("\n") + 2 and "at least 10s" in kpis.message
