"""The command line: the `tether` group and its pass commands (app), one module per other
command group (doctor, init, kpi, log, report, rules), and what they share (options)."""

from tether.cli.app import FINDINGS_TABLE_WIDTH, main
from tether.cli.options import err, out

__all__ = ["FINDINGS_TABLE_WIDTH", "err", "main", "out"]
