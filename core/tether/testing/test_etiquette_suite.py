"""Write-back etiquette, every tracker: lost responses never duplicate a comment, a deleted
comment is reported rather than rewritten, quoted text cannot inject markup, and mentions
reach exactly the person named."""

from __future__ import annotations

from tether.model import KPI, Finding, Mapping, OpKind, WriteOp
from tether.pipeline.render import MARKER, Renderer, mention
from tether.sandbox import LoggedRequest
from tether.testing import Driver, writes

PREFIX = "tether"
INJECTIONS = (
    "@channel @here",
    "[click me](https://evil.example/x)",
    "<img src=x onerror=alert(1)> <a href='https://evil.example'>a</a>",
    '{"type":"mention","attrs":{"id":"5b10ac8d82e05b22cc7d4ef5","text":"@admin"}}',
    "[~admin] [~accountid:5b10ac8d82e05b22cc7d4ef5] !https://evil.example/i.png!",
    "https://evil.example/bare",
)


def _comment(text: str) -> str:
    return f"{MARKER}\nTether flagged this item: {text}"


def test_a_lost_response_to_a_comment_post_never_duplicates_it(driver: Driver) -> None:
    key = driver.seed(3)[0]
    lost: list[int] = []

    def drop_first_comment_answer(r: LoggedRequest) -> bool:
        if driver.is_comment_post(r) and not lost:
            lost.append(r.number)
            return True
        return False

    driver.server.after_handling = drop_first_comment_answer
    first = driver.connector()
    tasks = first.pull(None).tasks
    first.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, _comment("one"), "test")])
    driver.server.after_handling = None
    assert lost, "the sandbox never saw a comment POST"

    # A fresh process after the crash: it must find the comment that landed.
    second = driver.connector()
    task = next(t for t in tasks if t.key == key)
    shown = second.recover([task], PREFIX)[key]
    assert shown.comment_id is not None, "recover() missed the comment whose answer was lost"
    [result] = second.apply([WriteOp("src", key, OpKind.UPDATE_COMMENT, _comment("two"),
                                     "test", shown.comment_id)])
    assert result.ok, result.error
    bodies = driver.comments(key)
    assert len(bodies) == 1 and "two" in bodies[0], bodies


def test_a_create_when_tethers_comment_exists_edits_it(driver: Driver) -> None:
    key = driver.seed(3)[0]
    driver.connector().apply([WriteOp("src", key, OpKind.CREATE_COMMENT, _comment("one"), "t")])
    fresh = driver.connector()  # knows nothing of the first write
    fresh.pull(None)
    [result] = fresh.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, _comment("two"), "t")])
    assert result.ok, result.error
    bodies = driver.comments(key)
    assert len(bodies) == 1 and "two" in bodies[0], bodies


def test_editing_a_comment_a_person_deleted_reports_it_gone(driver: Driver) -> None:
    key = driver.seed(3)[0]
    connector = driver.connector()
    connector.pull(None)
    [made] = connector.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, _comment("one"), "t")])
    assert made.comment_id is not None
    driver.person_deletes_comment(key, made.comment_id)
    before = writes(driver)
    [result] = connector.apply([WriteOp("src", key, OpKind.UPDATE_COMMENT, _comment("two"), "t",
                                        made.comment_id)])
    assert result.gone and result.ok, result
    assert driver.comments(key) == []
    assert writes(driver) - before <= 1  # the refused edit at most, never a new comment


def test_quoted_tracker_text_cannot_inject_mentions_links_or_markup(driver: Driver) -> None:
    key = driver.seed(3)[0]
    connector = driver.connector()
    connector.pull(None)
    hostile = " ".join(INJECTIONS)
    finding = Finding("untethered", "warning", f"src:{key}", f"Item '{hostile}' serves no KPI.",
                      "untethered", advice=f"Ask {hostile} to link it.")
    kpi = KPI(id="nps", name=hostile)
    body = Renderer().comment([finding], [Mapping(f"src:{key}", "nps", "r", 1.0, "")], {"nps": kpi})
    [result] = connector.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, body, "t")])
    assert result.ok, result.error
    assert driver.mentioned(key) == []
    [stored] = driver.stored_comments(key)
    text = str(stored)
    for bad in ("<img", "<a ", '"type": "mention"', "'type': 'mention'",
                '"type": "inlineCard"', "'type': 'inlineCard'", "'link'", '"link"'):
        assert bad not in text, (bad, text[:400])
    # The words themselves still reach the reader.
    assert "channel" in driver.comments(key)[0] and "click me" in driver.comments(key)[0]


def test_a_mention_token_notifies_exactly_that_person(driver: Driver) -> None:
    key = driver.seed(3)[0]
    connector = driver.connector()
    connector.pull(None)
    handle = driver.mention_handle()
    token = mention(handle)
    assert token is not None
    body = _comment(f"decision needed from {token}, owner of `nps`.")
    [result] = connector.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, body, "t")])
    assert result.ok, result.error
    assert driver.mentioned(key) == [handle]
