"""Full-text search of messages (`chat.actions.search_messages`) and the search page.

Runs on SQLite (FTS5) in the main session and again on PostgreSQL (tests/scaled/on_postgres.py).
"""

from __future__ import annotations

import uuid

import lxml.html
import pytest
from django.db import connection

from accounts import actions as accounts
from chat import actions, search
from chat.errors import InvalidArgument
from chat.models import Message

pytestmark = pytest.mark.django_db

# (query, whether it finds "hello world, héllo again"): every word typed must appear; operators are words.
HOSTILE_QUERIES = [
    ('"', None),
    ('"unbalanced', False),
    ("'", None),
    ("hello OR", False),
    ("AND", False),
    ("NOT hello", False),
    ("hello -world", True),
    ("*", None),
    ("hel*", True),
    ("^hello", True),
    ("hello NEAR(world)", False),
    ("body:hello", False),
    ("(hello", True),
    ("hello)", True),
    ("{hello world}", True),
    ("hello & | ! <->", True),
    ("'hello':*", True),
    ("hello\\", True),
    ("%_%", None),
    ("x' OR '1'='1", False),
    ("hello; DROP TABLE chat_message; --", False),
    ("\u202ehello", True),
    ("ｈｅｌｌｏ", True),  # noqa: RUF001 - full-width letters: the same word once normalised
    ("héllo", True),
    ("hello\x00world", True),
    ("🙂 hello", True),
]


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    settings.IMWEB_MESSAGE_RATE_LIMITS = ()


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol")


def befriend(a, b) -> None:
    accounts.request_subscription(a, b.jid)
    accounts.accept_subscription(b, a.jid)


def send(user, to, body) -> Message:
    return actions.send_message(user, to=to, body=body, client_id=uuid.uuid4())


def found(user, query, **kwargs) -> list[tuple[int, int]]:
    return [(hit.conversation_id, hit.seq) for hit in actions.search_messages(user, query, **kwargs)]


def test_finds_words_anywhere_in_the_users_conversations_newest_first(alice, bob, carol):
    first = send(alice, bob.jid, "The quarterly report is ready")
    send(bob, alice.jid, "thanks, nothing else")
    other = send(carol, alice.jid, "did you read the REPORT?")

    assert found(alice, "report") == [(other.conversation_id, 1), (first.conversation_id, 1)]
    assert found(bob, "report") == [(first.conversation_id, 1)]
    assert found(carol, "quarterly") == []


def test_every_word_must_match_as_a_word_prefix_ignoring_case(alice, bob):
    message = send(alice, bob.jid, "Meet at the Café Rouge tomorrow")

    assert found(bob, "café rouge") == [(message.conversation_id, 1)]
    assert found(bob, "CAF tom") == [(message.conversation_id, 1)]
    assert found(bob, "café nowhere") == []
    assert found(bob, "afé") == []  # prefixes of words, not any substring


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's 'simple' configuration keeps accents")
def test_accents_are_ignored_on_sqlite(alice, bob):
    message = send(alice, bob.jid, "Meet at the Café Rouge tomorrow")

    assert found(bob, "cafe") == found(bob, "CAFÉ") == [(message.conversation_id, 1)]


def test_hit_carries_title_sender_time_and_a_safely_marked_snippet(alice, bob):
    message = send(alice, bob.jid, "<img src=x onerror=alert(1)> look at the sunset <b>now</b>")

    (hit,) = actions.search_messages(bob, "sunset")

    assert (hit.conversation_title, hit.is_room, hit.seq) == ("Alice", False, 1)
    assert (hit.sender_jid, hit.sender_name, hit.created_at) == (alice.jid, "Alice", message.created_at)
    tree = lxml.html.fragment_fromstring(f"<div>{hit.snippet}</div>")
    assert [element.tag for element in tree.iter()] == ["div", "mark"]
    assert tree.find("mark").text == "sunset"
    assert "<img src=x onerror=alert(1)>" in tree.text_content()


def test_rooms_are_searched_while_a_member_and_not_after_leaving(alice, bob, carol):
    befriend(alice, bob)
    befriend(alice, carol)
    room = actions.create_room(alice, "Planning", members=[bob.jid, carol.jid])
    send(alice, room.pk, "the launch date is friday")

    assert found(bob, "launch") == [(room.pk, 2)]
    assert actions.search_messages(bob, "launch")[0].conversation_title == "Planning"

    actions.leave(bob, room.pk)

    assert found(bob, "launch") == []
    assert found(carol, "launch") == [(room.pk, 2)]


def test_removed_member_no_longer_finds_the_rooms_messages(alice, bob, carol):
    befriend(alice, bob)
    befriend(alice, carol)
    room = actions.create_room(alice, "Secrets", members=[bob.jid, carol.jid])
    send(carol, room.pk, "password hint is banana")
    actions.remove_member(alice, room.pk, bob.jid)

    assert found(bob, "banana") == []


def test_deleted_messages_are_not_found_and_edits_are(alice, bob):
    kept = send(alice, bob.jid, "apples and pears")
    gone = send(alice, bob.jid, "apples and plums")
    actions.delete_message(alice, gone.conversation_id, gone.seq)
    actions.edit_message(alice, kept.conversation_id, kept.seq, "oranges and pears")

    assert found(bob, "plums") == []
    assert found(bob, "apples") == []
    assert found(bob, "oranges") == [(kept.conversation_id, kept.seq)]


def test_pages_go_back_in_time_without_gaps_or_repeats(alice, bob):
    messages = [send(alice if i % 2 else bob, bob.jid if i % 2 else alice.jid, f"ping number {i}") for i in range(7)]
    send(alice, bob.jid, "unrelated")

    pages, before = [], None
    for _ in range(10):  # bounded: 7 hits in pages of 3 take 3 pages
        page = actions.search_messages(bob, "ping", limit=3, before=before)
        if not page:
            break
        pages.append([hit.seq for hit in page])
        before = page[-1].id

    assert pages == [[7, 6, 5], [4, 3, 2], [1]]
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5, 6, 7]
    assert actions.search_messages(bob, "ping", limit=3, before=str(before)) == []


@pytest.mark.parametrize(("query", "finds"), HOSTILE_QUERIES)
def test_hostile_query_strings_never_fail(alice, bob, query, finds):
    message = send(alice, bob.jid, "hello world, héllo again")

    if finds is None:  # nothing searchable in it
        with pytest.raises(InvalidArgument, match="at least one word"):
            actions.search_messages(bob, query)
    else:
        assert found(bob, query) == ([(message.conversation_id, 1)] if finds else [])


def test_operators_typed_by_users_are_words_not_syntax(alice, bob):
    message = send(alice, bob.jid, "cats NOT dogs")
    send(alice, bob.jid, "only dogs here")

    assert found(bob, "cats NOT dogs") == [(message.conversation_id, 1)]
    assert found(bob, '"cats') == [(message.conversation_id, 1)]
    assert found(bob, "ｃａｔｓ") == [(message.conversation_id, 1)]  # noqa: RUF001 - full-width


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "Type something to search for."),
        ("   ", "Type something to search for."),
        ("x" * 201, "A search can be at most 200 characters long (this one has 201)."),
        ("!!! ???", "Search for at least one word: letters or digits."),
        (" ".join(["w"] * 17), "A search can have at most 16 words (this one has 17)."),
        (None, "A search must be text."),
    ],
)
def test_empty_too_long_or_wordless_queries_get_a_precise_error(alice, query, error):
    with pytest.raises(InvalidArgument) as raised:
        actions.search_messages(alice, query)
    assert str(raised.value) == error


@pytest.mark.parametrize(("before", "limit"), [("abc", 10), (-1, 10), (None, 0), (None, "5"), (None, True)])
def test_bad_paging_arguments_get_a_precise_error(alice, before, limit):
    with pytest.raises(InvalidArgument):
        actions.search_messages(alice, "hello", before=before, limit=limit)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 triggers exist only on SQLite")
def test_index_triggers_come_back_after_a_table_rebuild_drops_them(alice, bob):
    send(alice, bob.jid, "before the rebuild")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER chat_message_fts_insert")
    send(alice, bob.jid, "written while the trigger was missing")

    assert found(bob, "missing") == []
    assert search.ensure_index(connection) is True
    assert search.ensure_index(connection) is False
    assert [seq for _, seq in found(bob, "missing")] == [2]
    send(alice, bob.jid, "and after the repair")
    assert [seq for _, seq in found(bob, "repair")] == [3]


# --- The search page --------------------------------------------------------------------------------------


def by_class(tree, name: str) -> list:
    return tree.xpath(f".//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")


def test_search_page_lists_hits_linking_to_the_message_in_context(client, alice, bob):
    message = send(alice, bob.jid, "the <b>secret</b> recipe is here")
    client.force_login(bob)

    response = client.get("/search", {"q": "recipe"})

    assert response.status_code == 200
    page = lxml.html.fromstring(response.content)
    (hit,) = by_class(page, "msgsearch-hit")
    assert hit.xpath(".//a")[0].get("href") == f"/c/{message.conversation_id}/around/1"
    assert by_class(hit, "msgsearch-hit__where")[0].text_content() == "Alice"
    assert [m.text for m in hit.xpath(".//mark")] == ["recipe"]
    assert "<b>secret</b>" in by_class(hit, "msgsearch-hit__snippet")[0].text_content()
    assert page.get_element_by_id("topbar-search").get("value") == "recipe"


def test_htmx_search_answers_with_the_results_fragment_and_pages(client, alice, bob):
    for i in range(22):
        send(alice, bob.jid, f"note {i}")
    client.force_login(bob)

    first = client.get("/search", {"q": "note"}, headers={"HX-Request": "true"})
    fragment = lxml.html.fragment_fromstring(first.content.decode(), create_parent="div")
    assert by_class(fragment, "msgsearch-results") and not fragment.xpath(".//form")
    assert len(by_class(fragment, "msgsearch-hit")) == 20
    more = by_class(fragment, "msgsearch-more")[0].xpath(".//button")[0].get("hx-get")

    second = client.get(more, headers={"HX-Request": "true"})
    rest = lxml.html.fragment_fromstring(second.content.decode(), create_parent="div")
    assert not by_class(rest, "msgsearch-results")  # the next items only, appended in place of the button
    assert [by_class(li, "msgsearch-hit__snippet")[0].text_content() for li in by_class(rest, "msgsearch-hit")] == [
        "note 1",
        "note 0",
    ]
    assert not by_class(rest, "msgsearch-more")


@pytest.mark.parametrize(
    ("query", "shown"),
    [("!!!", "Search for at least one word: letters or digits."), ("x" * 300, "at most 200 characters")],
)
def test_search_page_shows_query_errors(client, alice, query, shown):
    client.force_login(alice)

    response = client.get("/search", {"q": query})

    assert response.status_code == 200
    assert shown in by_class(lxml.html.fromstring(response.content), "msgsearch-results__error")[0].text


def test_search_page_needs_a_signed_in_user(client):
    response = client.get("/search", {"q": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_own_messages_are_shown_as_yours(client, alice, bob):
    send(alice, bob.jid, "my own recipe")
    client.force_login(alice)

    page = lxml.html.fromstring(client.get("/search", {"q": "recipe"}).content)

    assert [e.text_content() for e in by_class(page, "msgsearch-hit__who")] == ["You"]
    assert [e.text_content() for e in by_class(page, "msgsearch-hit__where")] == ["Bob"]


def test_search_in_one_conversation_finds_only_its_messages_and_pages_within_it(client, alice, bob, carol):
    for i in range(21):
        send(alice, bob.jid, f"plan {i}")
    elsewhere = send(carol, bob.jid, "plan from carol")
    here = Message.objects.filter(sender=alice).first().conversation_id
    client.force_login(bob)

    everywhere = lxml.html.fromstring(client.get("/search", {"q": "plan"}).content)
    assert by_class(everywhere, "msgsearch-hit__where")[0].text_content() == "Carol"

    fragment = client.get("/search", {"q": "plan", "in": here}, headers={"HX-Request": "true"}).content.decode()
    first = lxml.html.fragment_fromstring(fragment, create_parent="div")
    hits = by_class(first, "msgsearch-hit")
    assert len(hits) == 20
    assert {by_class(hit, "msgsearch-hit__where")[0].text_content() for hit in hits} == {"Alice"}
    assert hits[0].xpath(".//a")[0].get("data-jump") == f"msg-{here}-21"
    more = by_class(first, "msgsearch-more")[0].xpath(".//button")[0].get("hx-get")
    assert f"in={here}" in more
    rest = lxml.html.fragment_fromstring(client.get(more, headers={"HX-Request": "true"}).content.decode(), "div")
    assert [by_class(li, "msgsearch-hit__snippet")[0].text_content() for li in by_class(rest, "msgsearch-hit")] == [
        "plan 0"
    ]
    assert elsewhere.conversation_id != here

    # Without JavaScript the conversation's Search button is a link to the page, which offers both scopes.
    page = lxml.html.fromstring(client.get("/search", {"q": "plan", "in": here}).content)
    assert [(r.get("value"), r.get("checked") is not None) for r in page.xpath("//input[@name='in']")] == [
        (str(here), True),
        ("", False),
    ]
    assert {by_class(hit, "msgsearch-hit__where")[0].text_content() for hit in by_class(page, "msgsearch-hit")} == {
        "Alice"
    }


def test_search_in_a_conversation_one_is_not_in_finds_nothing(client, alice, bob, carol):
    theirs = send(alice, carol.jid, "private plan")
    client.force_login(bob)

    page = lxml.html.fromstring(client.get("/search", {"q": "plan", "in": theirs.conversation_id}).content)

    assert not by_class(page, "msgsearch-hit")
    assert by_class(page, "msgsearch-results__error")[0].text_content().strip() == "There is no such conversation."
