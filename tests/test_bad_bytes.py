"""Every loader refuses bytes that are not UTF-8 politely: a located error and exit 2, no
traceback, nothing pulled or written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main

LATIN1 = "Équipe: café".encode("latin-1")  # \xc9 and \xe9 are not UTF-8 on their own


def _spoil(path: Path, line: int) -> None:
    """Put a Latin-1 comment on ``line`` of ``path`` (1-based)."""
    lines = path.read_bytes().split(b"\n")
    lines.insert(line - 1, b"# " + LATIN1)
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("name", ["tether.yaml", "kpis.yaml", "rules/mapping.yaml"])
def test_a_file_that_is_not_utf8_is_a_located_error(files_only: Path, name: str) -> None:
    path = files_only / name
    _spoil(path, 3)
    result = CliRunner().invoke(main, ["plan", "-c", str(files_only)])
    assert result.exit_code == 2, result.output
    assert f"{path}:3:3: byte 0xc9 is not UTF-8 text; save the file as UTF-8" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not list(files_only.glob("data/*.tether.json"))  # nothing written


def test_a_kpi_values_file_that_is_not_utf8_is_a_located_error(tmp_path: Path) -> None:
    from tether.errors import InvalidInput
    from tether.kpi.sources import CsvKpiSource, CsvOptions

    (tmp_path / "values.csv").write_bytes(b"kpi,date,value\nnps,2025-01-01,4\n" + LATIN1 + b"\n")
    source = CsvKpiSource(CsvOptions(path="values.csv"), tmp_path)
    with pytest.raises(InvalidInput) as info:
        source.measurements()
    [problem] = info.value.problems
    assert (problem.line, problem.column) == (3, 1) and "not UTF-8" in problem.message
