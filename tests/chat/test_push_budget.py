"""The push path's budget: what one 1:1 message costs the server from the send frame until every open tab of
both people shows it, counted as SQL statements and template renders in the process. It must not grow with
the number of tabs (the message is rendered and published once, and each socket forwards it as it is), and it
stays small. A regression here is what took delivery from thousands of messages a second to tens."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import pytest
from django.db.backends import utils as db_utils

from accounts import actions as accounts
from chat import actions, fragments
from tests.chat.test_chat_socket import frames_until, send_frame
from tests.chat.test_socket import open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

MAX_STATEMENTS = 12
MAX_RENDERS = 3


class Budget:
    """SQL statements (any thread of this process) and chat template renders while `counting` is on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counting = False
        self.statements: list[str] = []
        self.renders: list[str] = []
        self._lock = threading.Lock()
        execute, executemany = db_utils.CursorWrapper._execute, db_utils.CursorWrapper._executemany
        render = fragments.render_to_string

        def counted_execute(cursor, sql, params, *args):
            self._note(self.statements, sql)
            return execute(cursor, sql, params, *args)

        def counted_executemany(cursor, sql, param_list, *args):
            self._note(self.statements, sql)
            return executemany(cursor, sql, param_list, *args)

        def counted_render(name, *args, **kwargs):
            self._note(self.renders, name)
            return render(name, *args, **kwargs)

        monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counted_execute)
        monkeypatch.setattr(db_utils.CursorWrapper, "_executemany", counted_executemany)
        monkeypatch.setattr(fragments, "render_to_string", counted_render)

    def _note(self, into: list[str], what: str) -> None:
        if self.counting:
            with self._lock:
                into.append(what)


@pytest.fixture
def pair(alice, bob) -> int:
    accounts.request_subscription(alice, bob.jid)
    accounts.accept_subscription(bob, alice.jid)
    return actions.send_message(alice, to=bob.jid, body="first", client_id=uuid.uuid4()).conversation_id


def one_message_with_tabs(alice, bob, pair: int, budget: Budget, tabs: int) -> tuple[int, int]:
    """Open `tabs` tabs each for Alice and Bob on their conversation, send one message from Alice's first tab,
    and count from the frame until every tab shows it."""
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}
    after = actions.messages_before(alice, pair, None, 1)[-1].seq

    async def scenario() -> None:
        # Alice comes online, then Bob: each of their first tabs gets the other's presence (one push each).
        # Their other tabs change no presence, so nothing else is on its way when counting starts.
        first = {who: await open_socket(cookies[who]) for who in ("alice", "bob")}
        for socket in first.values():
            await frames_until(socket, 'id="roster"')
        sockets = [first["alice"], first["bob"]]
        sockets += [await open_socket(cookies[who]) for who in ("alice", "bob") for _ in range(tabs - 1)]
        for socket in sockets:  # each tab opens the conversation, and its (empty) catch-up is done
            await socket.send_to(
                text_data=json.dumps({"type": "conversation.open", "conversation": pair, "after": after})
            )
            await socket.send_to(text_data=json.dumps({"type": "sync"}))
            await frames_until(socket, 'id="roster"')
        budget.counting = True
        await sockets[0].send_to(text_data=send_frame(pair, "counted", str(uuid.uuid4())))
        for socket in sockets:
            await frames_until(socket, f'id="msg-{pair}-{after + 1}"')
        budget.counting = False
        for socket in sockets:
            await socket.disconnect()

    budget.statements.clear()
    budget.renders.clear()
    asyncio.run(scenario())
    return len(budget.statements), len(budget.renders)


def test_one_message_costs_the_same_few_statements_and_renders_however_many_tabs_are_open(
    alice, bob, pair, monkeypatch
):
    budget = Budget(monkeypatch)
    costs = {tabs: one_message_with_tabs(alice, bob, pair, budget, tabs) for tabs in (1, 3, 10)}

    statements, renders = costs[1]
    assert costs[3] == costs[1] and costs[10] == costs[1], costs
    assert statements <= MAX_STATEMENTS, budget.statements
    assert renders <= MAX_RENDERS, budget.renders
