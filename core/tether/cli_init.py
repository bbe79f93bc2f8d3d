"""`tether init`: a commented starter workspace (tether.yaml, kpis.yaml, rules) for the
trackers named, with every secret left to the environment."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import click
import jinja2

from .cli import json_option, out

FILES = {"tether.yaml": "tether.yaml.j2", "kpis.yaml": "kpis.yaml.j2",
         "rules/mapping.yaml": "mapping.yaml.j2", "rules/mapping.test.yaml": "mapping.test.yaml.j2"}
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]+")


@click.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@click.option("--jira", "jira_url", metavar="URL",
              help="Jira site, e.g. https://acme.atlassian.net (Cloud) or your Data Center URL.")
@click.option("--jira-project", "jira_projects", multiple=True, metavar="KEY",
              help="A Jira project key to read; repeat for more. Default: OPS.")
@click.option("--github", "repos", multiple=True, metavar="ORG/REPO",
              help="A GitHub repository; repeat for more.")
@click.option("--github-url", metavar="URL", help="GitHub Enterprise Server API root, "
              "e.g. https://github.example.com/api/v3.")
@click.option("--asana", "asana_projects", multiple=True, metavar="PROJECT",
              help="An Asana project gid; repeat for more.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@json_option
def init(folder: Path, jira_url: str | None, jira_projects: tuple[str, ...],
         repos: tuple[str, ...], github_url: str | None, asana_projects: tuple[str, ...],
         force: bool, as_json: bool) -> None:
    """Write a commented starter tether.yaml, KPI file and rule pack into FOLDER."""
    if not (jira_url or repos or asana_projects):
        raise click.UsageError("Name at least one tracker: --jira URL, --github ORG/REPO or "
                               "--asana PROJECT.")
    context = {"jira": _jira(jira_url, jira_projects) if jira_url else None,
               "github": _github(repos, github_url) if repos else None,
               "asana": _asana(asana_projects) if asana_projects else None}
    existing = [name for name in FILES if (folder / name).exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} already exist in {folder}; "
                                   "use --force to overwrite them.")
    today = datetime.now(UTC).date()
    env = jinja2.Environment(loader=jinja2.PackageLoader("tether", "starter"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    for name, template in FILES.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(template).render(
            **context, today=today.isoformat(), year=today.year).rstrip() + "\n", encoding="utf-8")
    needed = [v for v, on in (("JIRA_TOKEN", context["jira"]), ("GITHUB_TOKEN", repos),
                              ("ASANA_TOKEN", asana_projects)) if on]
    if context["jira"] and context["jira"]["flavour"] == "cloud":
        needed.append("JIRA_EMAIL")
    if asana_projects:
        needed.append("ASANA_WORKSPACE")
    if as_json:
        click.echo(json.dumps({"schema": "tether.init/1", "folder": str(folder),
                               "files": list(FILES), "environment": needed}, indent=2))
        return
    out.print(f"Wrote {', '.join(FILES)} in {folder}.")
    out.print(f"Next: export {', '.join(needed)}; edit kpis.yaml and rules/mapping.yaml; "
              f"then run `tether doctor -c {folder}` and `tether plan -c {folder}`.",
              soft_wrap=True)


def _jira(url: str, projects: tuple[str, ...]) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise click.BadParameter(f"'{url}' is not a URL; use e.g. https://acme.atlassian.net",
                                 param_hint="--jira")
    for key in projects:
        if not _PROJECT_KEY.fullmatch(key):
            raise click.BadParameter(f"'{key}' is not a Jira project key (like OPS)",
                                     param_hint="--jira-project")
    cloud = parsed.netloc.endswith(".atlassian.net")
    return {"url": url.rstrip("/"), "flavour": "cloud" if cloud else "datacenter",
            "projects": list(projects) or ["OPS"]}


def _github(repos: tuple[str, ...], url: str | None) -> dict:
    for repo in repos:
        if not _REPO.fullmatch(repo):
            raise click.BadParameter(f"'{repo}' is not ORG/REPO (like acme/portal)",
                                     param_hint="--github")
    return {"repos": list(repos), "url": url}


def _asana(projects: tuple[str, ...]) -> dict:
    for gid in projects:
        if not gid.isdigit():
            raise click.BadParameter(f"'{gid}' is not an Asana project gid (digits, from the "
                                     "project's URL)", param_hint="--asana")
    return {"projects": list(projects)}
