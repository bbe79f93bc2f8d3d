"""`tether doctor`: each tracker's read-only checks against its loopback sandbox (through the
real client libraries), the sandboxes' answers to the endpoints doctor asks, and the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner
from tether.cli import main
from tether.connector import Check
from tether.plugins import Plugins
from tether.workspace import load_workspace
from tether_asana.conformance import AsanaDriver
from tether_github.conformance import REPO, GitHubDriver
from tether_jira.conformance import PLAIN_TOKEN, PROJECT, RAVI, JiraDriver
from tether_jira.sandbox.api import RateLimit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MIA = "5b10a2844c20165700ede21g"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def skipped_after(checks: list[Check], name: str) -> list[Check]:
    names = [c.name for c in checks]
    return checks[names.index(name) + 1:]


# -- Jira ----------------------------------------------------------------------------------------

@pytest.fixture(params=["cloud", "datacenter"])
def jira(request, tmp_path: Path, monkeypatch) -> Iterator[JiraDriver]:
    drv = JiraDriver(tmp_path, request.param)
    monkeypatch.setenv(drv.token_variable, "good")
    drv.seed(3)
    yield drv
    drv.server.stop()


def ravi(drv: JiraDriver, read_only: bool = True):
    """A connector with Ravi's token: no admin and, when ``read_only``, Browse Projects only."""
    if read_only:
        drv.world.users[RAVI].permissions = frozenset({"BROWSE_PROJECTS"})
    extra = {"email": "ravi@example.com"} if drv.flavour == "cloud" else {}
    return drv.connector(PLAIN_TOKEN, **extra)


def test_jira_good_token_passes_every_check_and_writes_nothing(jira: JiraDriver) -> None:
    checks = jira.connector().diagnose()
    assert [c.name for c in checks] == ["token", "authentication", f"read access: {PROJECT}",
                                        f"write access: {PROJECT}", "rate limit", "quiet edits"]
    assert [c.ok for c in checks] == [True, True, True, True, None, True], checks
    assert "Mia Krystof" in checks[1].detail and "Operations" in checks[2].detail
    assert "Retry-After" in checks[4].detail  # no quota headers: said, not guessed
    api = "3" if jira.flavour == "cloud" else "2"
    assert {r.method for r in jira.server.log} == {"GET"}
    assert f"/rest/api/{api}/mypermissions" in {r.path for r in jira.server.log}


def test_jira_read_only_token_names_the_project_and_the_missing_permissions(jira: JiraDriver
                                                                            ) -> None:
    checks = by_name(ravi(jira).diagnose())
    write = checks[f"write access: {PROJECT}"]
    assert write.ok is False
    assert "'Edit Issues', 'Add Comments' and 'Edit Own Comments'" in write.detail
    assert f"project {PROJECT}" in write.detail and "Ravi Rao" in write.detail
    assert write.fix.startswith("Give the token's user 'Edit Issues'")
    assert f"in project {PROJECT} (Project settings → Permissions)" in write.fix
    assert checks[f"read access: {PROJECT}"].ok is True


def test_jira_one_missing_permission_is_named_alone(jira: JiraDriver) -> None:
    jira.world.projects[PROJECT].permissions -= {"ADD_COMMENTS"}
    write = by_name(jira.connector().diagnose())[f"write access: {PROJECT}"]
    assert write.ok is False and "lacks 'Add Comments' in project OPS" in write.detail
    assert "add its comment" in write.detail and "Edit Issues" not in write.detail


def test_jira_non_admin_edits_will_notify_watchers(jira: JiraDriver) -> None:
    checks = by_name(ravi(jira, read_only=False).diagnose())
    assert checks[f"write access: {PROJECT}"].ok is True
    quiet = checks["quiet edits"]
    assert quiet.ok is None and "will notify watchers" in quiet.detail  # a warning, not a failure
    assert "project admin of OPS" in quiet.fix
    assert all(r.method == "GET" for r in jira.server.log)  # found out without an edit


def test_jira_missing_variable_is_named_and_no_request_is_made(jira: JiraDriver) -> None:
    checks = jira.connector(None).diagnose()
    assert checks[0].ok is False and "$JIRA_TOKEN is not set" in checks[0].detail
    assert "$JIRA_TOKEN" in checks[0].fix
    assert all(c.ok is None and c.detail == "skipped: no token" for c in checks[1:])
    assert jira.server.log == []


def test_jira_bad_token_fails_authentication_and_skips_the_rest(jira: JiraDriver) -> None:
    checks = jira.connector("wrong").diagnose()
    auth = checks[1]
    assert auth.ok is False and "HTTP 401" in auth.detail and "$JIRA_TOKEN" in auth.fix
    assert "wrong" not in auth.detail + auth.fix
    rest = skipped_after(checks, "authentication")
    assert rest and all(c.ok is None and "authentication failed" in c.detail for c in rest)


def test_jira_missing_project_fails_read_and_skips_its_write_check(jira: JiraDriver) -> None:
    checks = by_name(jira.connector(projects=[PROJECT, "NOPE"]).diagnose())
    assert checks["read access: NOPE"].ok is False
    assert "NOPE not found" in checks["read access: NOPE"].detail
    assert "options.projects" in checks["read access: NOPE"].fix
    assert checks["write access: NOPE"].ok is None
    assert checks[f"write access: {PROJECT}"].ok is True


def test_jira_wrong_flavour_is_among_the_fixes_for_a_refused_sign_in(tmp_path: Path,
                                                                     monkeypatch) -> None:
    drv = JiraDriver(tmp_path, "datacenter")  # it wants a bearer token, not basic auth
    monkeypatch.setenv(drv.token_variable, "good")
    try:
        checks = drv.connector(flavour="cloud", email="mia@example.com").diagnose()
    finally:
        drv.server.stop()
    assert checks[1].ok is False and "HTTP 401" in checks[1].detail
    assert checks[1].fix.endswith("set options.flavour: datacenter.")


def test_jira_jql_scope_is_checked_in_the_global_context(jira: JiraDriver) -> None:
    checks = by_name(jira.connector(projects=[], jql=f"project = {PROJECT}").diagnose())
    assert checks["read access: JQL"].ok is None and "options.projects" in \
        checks["read access: JQL"].detail
    assert checks["write access: JQL"].ok is None and "some project" in \
        checks["write access: JQL"].detail


def test_jira_dc_rate_limit_headers_give_the_headroom(tmp_path: Path, monkeypatch) -> None:
    drv = JiraDriver(tmp_path, "datacenter")
    drv.api.rate_limit = RateLimit(capacity=40)  # an admin turned rate limiting on
    monkeypatch.setenv(drv.token_variable, "good")
    try:
        rate = by_name(drv.connector().diagnose())["rate limit"]
    finally:
        drv.server.stop()
    assert rate.ok is True and rate.detail == "36 of 40 requests left"


def test_jira_cloud_near_limit_fails_the_rate_check(tmp_path: Path, monkeypatch) -> None:
    drv = JiraDriver(tmp_path, "cloud")
    drv.api.rate_limit = RateLimit(capacity=4)  # doctor's fourth request leaves none
    monkeypatch.setenv(drv.token_variable, "good")
    try:
        rate = by_name(drv.connector().diagnose())["rate limit"]
    finally:
        drv.server.stop()
    assert rate.ok is False and "20%" in rate.detail and rate.fix


def test_jira_mypermissions_answers_as_the_api_does(jira: JiraDriver) -> None:
    api = "3" if jira.flavour == "cloud" else "2"
    url = f"{jira.server.base_url}/rest/api/{api}/mypermissions"
    if jira.flavour == "cloud":
        auth: Any = ("mia@example.com", "good")
        headers = {}
    else:
        auth, headers = None, {"Authorization": "Bearer good"}
    got = requests.get(url, params={"projectKey": PROJECT, "permissions": "EDIT_ISSUES"},
                       auth=auth, headers=headers, timeout=5)
    assert got.json() == {"permissions": {"EDIT_ISSUES": {
        "id": "12", "key": "EDIT_ISSUES", "name": "Edit Issues", "type": "PROJECT",
        "description": "Ability to edit issues.", "havePermission": True}}}
    bare = requests.get(url, params={"projectKey": PROJECT}, auth=auth, headers=headers,
                        timeout=5)
    if jira.flavour == "cloud":  # required on Cloud since 2019
        assert bare.status_code == 400 and bare.json()["errorMessages"]
    else:
        assert bare.status_code == 200 and "BROWSE_PROJECTS" in bare.json()["permissions"]
    missing = requests.get(url, params={"projectKey": "NOPE", "permissions": "EDIT_ISSUES"},
                           auth=auth, headers=headers, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["errorMessages"] == ["No project could be found with key 'NOPE'."]
    bad = requests.get(url, params={"permissions": "FLY"}, auth=auth, headers=headers, timeout=5)
    assert bad.status_code == 400


def test_jira_mypermissions_is_valid_against_the_cloud_description(tmp_path: Path) -> None:
    spec_file = Path(__file__).resolve().parents[2] / "shared/contracts/jira/swagger-v3.v3.json"
    if not spec_file.is_file():
        pytest.skip(f"the Jira OpenAPI description is not at {spec_file}")
    from test_jira_contract import example, validate

    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    drv = JiraDriver(tmp_path, "cloud")
    try:
        got = requests.get(f"{drv.server.base_url}/rest/api/3/mypermissions",
                           params={"projectKey": PROJECT, "permissions": ",".join([
                               "EDIT_ISSUES", "ADD_COMMENTS", "ADMINISTER_PROJECTS",
                               "ADMINISTER"])},
                           auth=("mia@example.com", "good"), timeout=5).json()
    finally:
        drv.server.stop()
    validate(spec, "Permissions", got)
    assert got["permissions"]["EDIT_ISSUES"] == example(
        spec, "/rest/api/3/mypermissions")["permissions"]["EDIT_ISSUES"]


def test_a_capped_user_is_refused_writes_by_the_jira_sandbox(jira: JiraDriver) -> None:
    """What doctor reports is what a sync meets: Ravi's label write fails, with Jira's
    puzzling 400 (a field "not on the appropriate screen") that doctor's check explains."""
    connector = ravi(jira)
    [task, *_] = connector.pull(None).tasks
    from tether.model import OpKind, WriteOp
    [result] = connector.apply([WriteOp("src", task.key, OpKind.ADD_LABEL, "tether:x", "t")])
    assert not result.ok and "cannot be set" in (result.error or "")


# -- GitHub --------------------------------------------------------------------------------------

@pytest.fixture
def github(tmp_path: Path, monkeypatch) -> Iterator[GitHubDriver]:
    drv = GitHubDriver(tmp_path)
    monkeypatch.setenv(drv.token_variable, "good")
    repo = drv.world.repo(REPO)
    assert repo is not None
    drv.world.add_token("reader", "reader-bot")
    drv.world.grant(repo, "reader-bot", "read")
    drv.world.add_token("triager", "triage-bot")
    drv.world.grant(repo, "triage-bot", "triage")
    drv.world.add_token("no-repo-scope", "gist-bot", scopes=("gist", "read:user"))
    drv.world.add_token("fine", "fine-bot", fine_grained=True)
    yield drv
    drv.server.stop()


def test_github_good_token_passes_every_check(github: GitHubDriver) -> None:
    checks = github.connector().diagnose()
    assert [c.name for c in checks] == ["token", "authentication", f"read access: {REPO}",
                                        f"write access: {REPO}", "rate limit"]
    assert all(c.ok is True for c in checks), checks
    assert "tether-bot (classic token; scopes: repo)" in checks[1].detail
    assert checks[4].detail.startswith("4,998 of 5,000 requests left, resets at ")
    assert {(r.method, r.path) for r in github.server.log} == {("GET", "/user"),
                                                               ("GET", f"/repos/{REPO}")}


def test_github_read_only_user_is_told_it_needs_the_write_role(github: GitHubDriver) -> None:
    write = by_name(github.connector("reader").diagnose())[f"write access: {REPO}"]
    assert write.ok is False
    assert write.detail == (f"reader-bot has the Read role on {REPO}: it may comment, but not "
                            "label issues")
    assert write.fix.startswith(f"Give reader-bot the Write role on {REPO}")


def test_github_triage_cannot_create_tethers_labels(github: GitHubDriver) -> None:
    write = by_name(github.connector("triager").diagnose())[f"write access: {REPO}"]
    assert write.ok is False and "Triage role" in write.detail
    assert "not create the labels Tether adds" in write.detail


def test_github_classic_token_without_repo_scope_is_named(github: GitHubDriver) -> None:
    checks = by_name(github.connector("no-repo-scope").diagnose())
    read = checks[f"read access: {REPO}"]
    assert read.ok is False and "HTTP 404" in read.detail
    assert read.fix.startswith("The token lacks the repo scope: create a fine-grained token "
                               f"with Issues: Read and write and Pull requests: Read and write "
                               f"on {REPO}")
    assert checks[f"write access: {REPO}"].ok is None


def test_github_fine_grained_token_permissions_cannot_be_read(github: GitHubDriver) -> None:
    checks = by_name(github.connector("fine").diagnose())
    assert "fine-grained token" in checks["authentication"].detail
    write = checks[f"write access: {REPO}"]
    assert write.ok is None and "Issues: Read and write" in write.detail


def test_github_missing_variable_is_named_and_no_request_is_made(github: GitHubDriver) -> None:
    checks = github.connector(None).diagnose()
    assert checks[0].ok is False and "$GITHUB_TOKEN" in checks[0].detail
    assert all(c.ok is None for c in checks[1:])
    assert github.server.log == []


def test_github_bad_token_fails_authentication_and_skips_the_rest(github: GitHubDriver
                                                                  ) -> None:
    checks = github.connector("nope").diagnose()
    assert checks[1].ok is False and "HTTP 401 Bad credentials" in checks[1].detail
    assert "$GITHUB_TOKEN" in checks[1].fix
    assert all(c.ok is None and "authentication failed" in c.detail for c in checks[2:])


def test_github_little_rate_limit_left_fails_with_the_reset_time(github: GitHubDriver) -> None:
    for _ in range(4700):  # other jobs sharing the token used most of this hour's requests
        github.api.limits.count("tether-bot", write=False)
    rate = by_name(github.connector().diagnose())["rate limit"]
    assert rate.ok is False and rate.detail.startswith("298 of 5,000 requests left")
    assert rate.fix.startswith("Wait until ") and "UTC" in rate.fix


def test_github_spent_rate_limit_is_reported_not_waited_for(github: GitHubDriver) -> None:
    for _ in range(5000):
        github.api.limits.count("tether-bot", write=False)
    checks = by_name(github.connector().diagnose())
    assert checks["authentication"].ok is None
    assert checks["rate limit"].ok is False and checks["rate limit"].detail.startswith("0 of")
    assert github.retry_clock.now() == github.world.clock.now()  # one clock; nothing slept


def test_github_sandbox_answers_user_and_repository_as_the_api_does(github: GitHubDriver
                                                                    ) -> None:
    def get(path: str, token: str) -> requests.Response:
        return requests.get(github.url + path, timeout=5, headers={
            "Authorization": f"token {token}", "User-Agent": "test"})

    repo = get(f"/repos/{REPO}", "reader")
    assert repo.json()["permissions"] == {"admin": False, "maintain": False, "push": False,
                                          "triage": False, "pull": True}
    assert get(f"/repos/{REPO}", "good").json()["permissions"]["push"] is True
    assert get("/user", "good").json()["login"] == "tether-bot"
    assert get(f"/repos/{REPO}", "no-repo-scope").status_code == 404  # private, as GitHub hides
    assert get("/user", "fine").headers.get("x-oauth-scopes") is None
    assert get("/user", "good").headers["x-oauth-scopes"] == "repo"
    contracts = Path(__file__).resolve().parents[2] / "shared/contracts/github"
    if contracts.is_dir():
        from test_github_contract import validate
        validate(repo.json(), "full-repository")
        validate(get(f"/repos/{REPO}", "good").json(), "full-repository")
        validate(get("/user", "good").json(), "private-user")


def test_github_sandbox_refuses_label_writes_below_the_role_they_need(github: GitHubDriver
                                                                     ) -> None:
    github.seed(1)
    [task] = github.connector("reader").pull(None).tasks
    from tether.model import OpKind, WriteOp
    from tether.pipeline.render import MARKER
    label, comment = github.connector("reader").apply([
        WriteOp("src", task.key, OpKind.ADD_LABEL, "tether:x", "t"),
        WriteOp("src", task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nhello", "t")])
    assert not label.ok and "Must have push access to create labels" in (label.error or "")
    assert comment.ok  # a reader may comment


# -- Asana ---------------------------------------------------------------------------------------

@pytest.fixture
def asana(tmp_path: Path, monkeypatch) -> Iterator[AsanaDriver]:
    drv = AsanaDriver(tmp_path)
    monkeypatch.setenv(drv.token_variable, "good")
    st, project = drv.state, drv.project["gid"]
    for token, name, level in (("viewer", "Vera Viewer", "viewer"),
                               ("commenter", "Cole Commenter", "commenter")):
        user = st.add_user(name)["gid"]
        st.add_token(token, user)
        st.share(project, user, level)
    yield drv
    drv.server.stop()


def test_asana_good_token_passes_every_check(asana: AsanaDriver) -> None:
    gid = asana.project["gid"]
    checks = asana.connector().diagnose()
    assert [c.name for c in checks] == ["token", "authentication", f"read access: {gid}",
                                        f"write access: {gid}", "rate limit"]
    assert [c.ok for c in checks] == [True, True, True, True, None], checks
    assert "editor of project Website" in checks[3].detail
    assert "sends no quota headers" in checks[4].detail
    assert {r.method for r in asana.server.log} == {"GET"}


def test_asana_viewer_token_names_the_project_and_the_access_it_needs(asana: AsanaDriver
                                                                      ) -> None:
    gid = asana.project["gid"]
    write = by_name(asana.connector("viewer").diagnose())[f"write access: {gid}"]
    assert write.ok is False
    assert write.detail == (f"Vera Viewer is a viewer of project Website ({gid}): it may "
                            "neither tag tasks nor comment")
    assert write.fix.startswith(f"Give Vera Viewer Editor access to project Website ({gid})")


def test_asana_commenter_may_comment_but_not_label(asana: AsanaDriver) -> None:
    gid = asana.project["gid"]
    write = by_name(asana.connector("commenter", label_mode="custom_field",
                                    label_field=asana.points["gid"]).diagnose())
    assert write[f"write access: {gid}"].ok is False
    assert "may comment but not set the labels field" in write[f"write access: {gid}"].detail


def test_asana_missing_variable_and_bad_token(asana: AsanaDriver) -> None:
    checks = asana.connector(None).diagnose()
    assert checks[0].ok is False and "$ASANA_TOKEN" in checks[0].detail
    assert asana.server.log == []
    checks = asana.connector("nope").diagnose()
    assert checks[1].ok is False and "HTTP 401" in checks[1].detail
    assert all(c.ok is None and "authentication failed" in c.detail for c in checks[2:])


def test_asana_unseen_and_missing_projects(asana: AsanaDriver) -> None:
    hidden = asana.state.add_project("Board")["gid"]
    asana.state.projects[hidden]["others"] = None  # private to its members
    checks = by_name(asana.connector(projects=[hidden, "1299999999999999"]).diagnose())
    assert checks[f"read access: {hidden}"].ok is False
    assert "Add Tether Bot to project" in checks[f"read access: {hidden}"].fix
    assert checks["read access: 1299999999999999"].ok is False
    assert "options.projects" in checks["read access: 1299999999999999"].fix


def test_asana_workspace_outside_the_users_is_named(asana: AsanaDriver) -> None:
    auth = by_name(asana.connector(workspace="1100000000000999").diagnose())["authentication"]
    assert auth.ok is False and "not in workspace 1100000000000999" in auth.detail
    assert asana.state.workspace["gid"] in auth.fix


def test_asana_sandbox_refuses_writes_below_the_access_level(asana: AsanaDriver) -> None:
    from tether.model import OpKind, WriteOp
    from tether.pipeline.render import MARKER
    [key] = asana.seed(1)
    viewer = asana.connector("viewer")
    viewer.pull(None)
    label, comment = viewer.apply([
        WriteOp("src", key, OpKind.ADD_LABEL, "tether:x", "t"),
        WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nhello", "t")])
    assert not label.ok and "HTTP 403" in (label.error or "")
    assert not comment.ok and "HTTP 403" in (comment.error or "")
    commenter = asana.connector("commenter")
    commenter.pull(None)
    [comment] = commenter.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nhi",
                                         "t")])
    assert comment.ok, comment.error
    story = asana.state.stories[asana.task(key)["stories"][-1]]
    assert asana.state.users[story["created_by"]]["name"] == "Cole Commenter"


def test_asana_doctor_requests_are_declared_and_answers_valid(asana: AsanaDriver) -> None:
    oas = Path(__file__).resolve().parents[2] / "shared/contracts/asana/asana_oas.yaml"
    if not oas.is_file():
        pytest.skip(f"Asana's OpenAPI file is not at {oas}")
    from urllib.parse import parse_qs

    from test_asana_contract import Spec
    from tether_asana.sandbox.views import API
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = Spec(yaml.load(oas.read_text(encoding="utf-8"), Loader=loader))
    asana.connector("viewer").diagnose()
    for entry in list(asana.server.log):  # the answers fetched below are logged too
        declared = spec.params(entry.method, entry.path)
        for name, values in parse_qs(entry.query).items():
            assert name in declared, (entry.path, name)
            if name == "opt_fields":
                offered = set(declared[name]["schema"]["items"]["enum"])
                assert {f for v in values for f in v.split(",")} <= offered
        answer = requests.get(f"{asana.server.base_url}{entry.path}?{entry.query}", timeout=5,
                              headers={"Authorization": "Bearer viewer"})
        spec.validate("GET", entry.path, answer.status_code, answer.json())
    memberships = requests.get(
        f"{asana.url}/projects/{asana.project['gid']}/project_memberships", timeout=5,
        headers={"Authorization": "Bearer good"}).json()["data"]
    spec.validate("GET", f"{API}/projects/1/project_memberships", 200, {"data": memberships})
    assert {m["member"]["name"]: m["access_level"] for m in memberships} == {
        "Tether Bot": "editor", "Vera Viewer": "viewer", "Cole Commenter": "commenter"}


# -- the whole workspace and the CLI -------------------------------------------------------------

class Sandboxes:
    """One sandbox per tracker, and a workspace whose tether.yaml points at all three."""

    def __init__(self, tmp_path: Path):
        self.jira = JiraDriver(tmp_path / "j", "cloud")
        self.github = GitHubDriver(tmp_path / "g")
        self.asana = AsanaDriver(tmp_path / "a")
        self.jira.seed(3)
        # Tokens that appear nowhere else, so the test can tell they are never printed.
        self.jira.world.add_token("jira-secret-7f3a", MIA)
        self.github.world.add_token("gh-secret-91c2", "tether-bot")
        self.asana.state.add_token("asana-secret-c0de", self.asana.state.me)
        self.folder = tmp_path / "ws"
        shutil.copytree(EXAMPLES / "files-only", self.folder)
        config = yaml.safe_load((self.folder / "tether.yaml").read_text(encoding="utf-8"))
        config["sources"] = [
            {"name": "jira", "type": "jira", "options": {
                "url": self.jira.server.base_url, "flavour": "cloud", "email": "mia@example.com",
                "projects": [PROJECT], "token_env": "DOCTOR_JIRA_TOKEN"}},
            {"name": "github", "type": "github", "options": {
                "url": self.github.url, "repos": [REPO], "token_env": "DOCTOR_GITHUB_TOKEN"}},
            {"name": "asana", "type": "asana", "options": {
                "url": self.asana.url, "projects": [self.asana.project["gid"]],
                "workspace": self.asana.state.workspace["gid"],
                "token_env": "DOCTOR_ASANA_TOKEN"}}]
        (self.folder / "tether.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def stop(self) -> None:
        for server in (self.jira.server, self.github.server, self.asana.server):
            server.stop()


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch) -> Iterator[Sandboxes]:
    boxes = Sandboxes(tmp_path)
    monkeypatch.setenv("DOCTOR_JIRA_TOKEN", "jira-secret-7f3a")
    monkeypatch.setenv("DOCTOR_GITHUB_TOKEN", "gh-secret-91c2")
    monkeypatch.setenv("DOCTOR_ASANA_TOKEN", "asana-secret-c0de")
    yield boxes
    boxes.stop()


def doctor(*args: str):
    return CliRunner().invoke(main, ["doctor", *args], catch_exceptions=False)


def no_secret(text: str) -> None:
    for secret in ("jira-secret-7f3a", "gh-secret-91c2", "asana-secret-c0de"):
        assert secret not in text


def test_cli_all_good_exits_0_with_a_checklist(sandboxes: Sandboxes) -> None:
    result = doctor("-c", str(sandboxes.folder))
    assert result.exit_code == 0, result.output
    out = result.output
    for heading in ("\njira\n", "\ngithub\n", "\nasana\n", "\nworkspace\n"):
        assert heading in out
    assert "✓ write access: OPS: Mia Krystof may edit issues" in out
    assert "✓ rules lint: " in out and "✓ state store: opens at sqlite:///" in out
    assert "– rate limit: Jira sends no quota headers" in out
    assert "All checks passed." in out and "✗" not in out
    no_secret(out)


def test_cli_read_only_jira_token_fails_precisely_with_exit_1(sandboxes: Sandboxes,
                                                              monkeypatch) -> None:
    sandboxes.jira.world.users[MIA].permissions = frozenset({"BROWSE_PROJECTS"})
    result = doctor("-c", str(sandboxes.folder))
    assert result.exit_code == 1
    out = result.output
    assert ("✗ write access: OPS: Mia Krystof lacks 'Edit Issues', 'Add Comments' and 'Edit "
            "Own Comments' in project OPS") in out
    assert ("      Fix: Give the token's user 'Edit Issues', 'Add Comments' and 'Edit Own "
            "Comments' in project OPS (Project settings → Permissions), or use another "
            "token.") in out
    assert out.rstrip().endswith("1 check failed: fix it and run `tether doctor` again.")
    no_secret(out)


def test_cli_json_document(sandboxes: Sandboxes, monkeypatch) -> None:
    monkeypatch.delenv("DOCTOR_GITHUB_TOKEN")
    result = doctor("-c", str(sandboxes.folder), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema", "sources", "rules", "state", "ok"}
    assert doc["schema"] == "tether.doctor/1" and doc["ok"] is False
    assert list(doc["sources"]) == ["jira", "github", "asana"]
    token = doc["sources"]["github"][0]
    assert token == {"name": "token", "ok": False, "detail": "$DOCTOR_GITHUB_TOKEN is not set, "
                     "so no request was made", "fix": token["fix"]}
    assert "$DOCTOR_GITHUB_TOKEN" in token["fix"]
    assert all(c["ok"] is True for c in doc["sources"]["asana"][:4])
    assert doc["rules"][0]["name"] == "rules lint" and doc["rules"][0]["ok"] is True
    assert sandboxes.github.server.log == []  # no token, no request
    no_secret(result.output)


def test_cli_rule_lint_errors_fail_and_name_the_rule(sandboxes: Sandboxes) -> None:
    rules = sandboxes.folder / "rules" / "mapping.yaml"
    rules.write_text(rules.read_text(encoding="utf-8") + """
  - id: impossible-estimate
    kpi: nps
    when:
      all:
        - estimate: {gt: 5}
        - estimate: {lt: 3}
""", encoding="utf-8")
    result = doctor("-c", str(sandboxes.folder), "--json")
    assert result.exit_code == 1
    [lint] = json.loads(result.stdout)["rules"]
    assert lint["ok"] is False and lint["detail"].startswith("1 error")
    assert "impossible-estimate" in lint["fix"] and "tether rules lint" in lint["fix"]


def test_cli_config_errors_are_reported_as_usual(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    shutil.copytree(EXAMPLES / "files-only", folder)
    config = folder / "tether.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("budget: 100", "budgit: 100"),
                      encoding="utf-8")
    result = CliRunner().invoke(main, ["doctor", "-c", str(folder)])
    assert result.exit_code == 2 and "budgit" in result.output


def test_connectors_without_checks_say_so_and_pass(files_only: Path) -> None:
    result = doctor("-c", str(files_only))
    assert result.exit_code == 0, result.output
    assert "– self-check: the files connector cannot check itself" in result.output
    ws = load_workspace(files_only, Plugins())
    [check] = ws.connectors["jira"].diagnose()
    assert check.ok is None and "tether plan" in check.detail


def test_sandbox_snapshots_keep_who_may_do_what(tmp_path: Path) -> None:
    """A demo sandbox restarted from its saved state answers doctor the same way."""
    from tether_asana.sandbox.state import AsanaState
    from tether_github.sandbox import snapshot as github_snapshot
    from tether_github.sandbox.world import World as GitHubWorld
    from tether_jira.sandbox import snapshot as jira_snapshot
    from tether_jira.sandbox.state import World as JiraWorld

    jira = JiraWorld("cloud")
    jira.add_user("r1", "ravi", "Ravi", "ravi@example.com", admin=False,
                  permissions=frozenset({"BROWSE_PROJECTS"}))
    jira_snapshot.save(jira, None, tmp_path / "jira.json")
    again, _ = jira_snapshot.load(json.loads((tmp_path / "jira.json").read_text()))
    assert again.users["r1"].permissions == {"BROWSE_PROJECTS"} and not again.users["r1"].admin

    hub = GitHubWorld()
    repo = hub.add_repo("acme/widgets")
    hub.grant(repo, "reader-bot", "read")
    hub.add_token("fine", "fine-bot", write=False)
    github_snapshot.save(hub, tmp_path / "github.json")
    restored = GitHubWorld()
    github_snapshot.load(json.loads((tmp_path / "github.json").read_text()), restored)
    assert restored.repos["acme/widgets"].role("reader-bot") == "read"
    assert restored.tokens["fine"].fine_grained and not restored.tokens["fine"].write

    state = AsanaState()
    project = state.add_project("Website")["gid"]
    viewer = state.add_user("Vera")["gid"]
    state.share(project, viewer, "viewer")
    copy = AsanaState.from_json(json.loads(json.dumps(state.to_json())))
    assert copy.access(project, viewer) == "viewer" and copy.access(project) == "editor"
