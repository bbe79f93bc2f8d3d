"""The text Tether writes into trackers: its comment, rendered from Jinja2 templates, and
quoting that cannot inject markup, mentions or links."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from tether.config.yamlsrc import read_text
from tether.errors import InvalidInput, Problem
from tether.model import KPI, Finding, Mapping

MARKER = "<!-- tether:comment -->"
# Every character CommonMark could read as markup here: emphasis, code, links, HTML, entity
# references (&), maths ($), headings and lists (#, +) and tables (|); "-" and "=" only
# matter at the start of a line (a list, a rule, a heading underline).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&$])|^([-=])")
_INERT = (("@", "@\u200b"), ("#", "#\u200b"), ("://", ":\u200b//"), ("www.", "www\u200b."))
# Direction overrides could make quoted text display as something else.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# A person to notify, as ``<@handle>`` with the handle their tracker knows them by; each
# connector turns it into its own mention. Quoted text cannot forge one: neutralise
# escapes every ``<``.
MENTION = re.compile(r"(?<!\\)<@([^\s<>\\]+)>")
_CODE_SAFE = re.compile(r"[A-Za-z0-9_.:/@-]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def digest(body: str) -> str:
    """A short, stable fingerprint of a comment body Tether wrote."""
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def mention(handle: str) -> str | None:
    """The mention token for ``handle``, or None when the handle cannot be one."""
    token = f"<@{handle}>"
    return token if MENTION.fullmatch(token) else None


def neutralise(text: str) -> str:
    """Quote tracker text safely in Markdown: one line, no markup, links, references or
    mentions, whatever renders it. Escapes stop markup; a zero-width space stops what
    trackers detect in the rendered text: ``@name``, ``#12``, ``https://``, ``www.``."""
    flat = " ".join(_BIDI.sub("", text).split())
    escaped = _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), flat)
    for found, inert in _INERT:
        escaped = escaped.replace(found, inert)
    return escaped


class Trusted(str):
    """Text Tether composed itself (a mention token, a code span of a checked id): the
    templates emit it as is, where everything else is neutralised."""


def code(value: object) -> Trusted:
    """An id as a code span when it is a plain id; otherwise quoted like any other text."""
    text = str(value)
    return Trusted(f"`{text}`" if _CODE_SAFE.fullmatch(text) else neutralise(text))


@dataclass(frozen=True)
class KpiView:
    id: str
    name: str
    owner: str | None


@dataclass(frozen=True)
class FindingView:
    """One finding as a template sees it."""

    signal: str
    severity: str
    reason: str
    advice: str
    rule: str
    version: Trusted  # "pack <name> <content hash>": which rules said so
    value_at_risk: float
    kpi: KpiView | None  # the KPI a KPI-level finding is about
    mention: Trusted | None  # the KPI owner, for a decision gate only


def _finalize(value: object) -> object:
    if value is None or isinstance(value, Trusted):
        return value or ""
    return neutralise(str(value))


def _environment(folder: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("tether.pipeline", "templates")]
    if folder is not None:
        loaders.insert(0, jinja2.FileSystemLoader(folder))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), finalize=_finalize,
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=False)
    env.filters["code"] = code
    return env


def check_templates(folder: Path) -> list[Problem]:
    """Compile every ``*.j2`` in ``folder``; one located problem per syntax error."""
    env = _environment(folder)
    problems = []
    for path in sorted(folder.glob("*.j2")):
        try:
            env.parse(read_text(path), path.name, str(path))
        except InvalidInput as exc:
            problems += exc.problems
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(str(path), exc.lineno or 1, 1, "", f"template error: "
                                    f"{exc.message}; fix the template or remove it to use "
                                    "the built-in one"))
    return problems


class Renderer:
    """Renders Tether's comment for a tracker markup, from the config's templates when it
    has them (``comment.<markup>.md.j2``, then ``comment.md.j2``), else the built-in ones.
    The result always starts with ``MARKER``: a template cannot break ownership."""

    def __init__(self, folder: Path | None = None, versions: dict[str, str] | None = None,
                 mentioning: frozenset[str] = frozenset()):
        self.env = _environment(folder)
        self.versions = versions or {}  # rule id -> "pack <name> <hash>"
        self.mentioning = mentioning  # ids of the rules whose findings mention the KPI owner

    def comment(self, findings: Iterable[Finding], mappings: Iterable[Mapping],
                kpis: dict[str, KPI], markup: str = "markdown",
                mention_for: Callable[[KPI], str | None] | None = None) -> str:
        """Tether's one comment for an item with ``findings``."""
        views = [self._view(f, kpis, mention_for) for f in findings]
        served = [_kpi_view(kpis[k]) if k in kpis else KpiView(k, k, None)
                  for k in sorted({m.kpi for m in mappings})]
        return self._render("comment", markup, findings=views, kpis=served)

    def shows_value_at_risk(self) -> bool:
        """Whether a comment template in use shows a finding's value at risk: only then
        does a finding's share of its KPI's value at risk change the comment."""
        loader = self.env.loader
        assert loader is not None
        return any("value_at_risk" in loader.get_source(self.env, name)[0]
                   for name in self.env.list_templates() if name.startswith("comment."))

    def resolved(self, markup: str = "markdown") -> str:
        """The note an item's comment becomes when its findings clear (kept, not deleted)."""
        return self._render("resolved", markup)

    def _render(self, name: str, markup: str, **context: object) -> str:
        template = self.env.select_template([f"{name}.{markup}.md.j2", f"{name}.md.j2"])
        text = template.render(**context)
        lines = "\n".join(line.rstrip() for line in text.strip().split("\n"))
        return f"{MARKER}\n{_BLANK_RUNS.sub(chr(10) * 2, lines)}"

    def _view(self, f: Finding, kpis: dict[str, KPI],
              mention_for: Callable[[KPI], str | None] | None) -> FindingView:
        kind, _, kid = f.subject.partition(":")
        kpi = kpis.get(kid) if kind == "kpi" else None
        token = (mention_for(kpi) if kpi is not None and mention_for is not None
                 and f.rule_id in self.mentioning else None)
        return FindingView(f.signal, f.severity, f.reason, f.advice, f.rule_id,
                           Trusted(self.versions.get(f.rule_id, "")),
                           f.value_at_risk, _kpi_view(kpi) if kpi else None,
                           Trusted(token) if token else None)


def _kpi_view(kpi: KPI) -> KpiView:
    return KpiView(kpi.id, kpi.name, kpi.owner)
