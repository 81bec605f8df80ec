"""Scaled mode end to end: PostgreSQL + redis-server + two Daphne processes + a Celery worker and beat (+ the
federation listener), started as README "Scaling out" tells operators. People on different web processes see
each other live, because fan-out goes through Redis and the truth is in PostgreSQL."""

from __future__ import annotations

import json
import re
import signal
import uuid

from tests.scaled.site import Person, healthz, receive_until

DOMAIN = "imweb.localhost"


def shows(jid: str, show_pattern: str):
    """A predicate: the frame renders the contact row of `jid` with a presence matching `show_pattern`."""
    row = re.compile(rf'data-jid="{re.escape(jid)}" data-show="({show_pattern})"')
    return lambda frame: row.search(frame) is not None


def message_frame(body: str, **target: object) -> str:
    return json.dumps({"type": "message.send", "body": body, "client_id": str(uuid.uuid4()), **target})


def test_every_web_process_is_healthy_on_the_shared_database_and_redis(scaled_site):
    for url in scaled_site.web_urls:
        status, checks = healthz(url)
        assert (status, checks) == (200, {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}})


def test_people_on_two_web_processes_see_each_others_presence_and_messages_and_a_dead_process_is_swept(scaled_site):
    web1, web2 = scaled_site.web_urls
    alice = Person(web1, "alice").sign_up()
    bob = Person(web2, "bob").sign_up()
    alice_jid, bob_jid = f"alice@{DOMAIN}", f"bob@{DOMAIN}"

    # Contact request made on one process, accepted on the other: both rows are in PostgreSQL.
    assert alice.post("/contacts/add", {"jid": bob_jid}).status_code == 200
    assert bob.post("/contacts/accept", {"jid": alice_jid}).status_code == 200

    with alice.open_socket() as alice_ws:
        receive_until(alice_ws, shows(bob_jid, "unavailable|offline|unknown"), 15, "Bob offline on Alice's screen")
        with bob.open_socket() as bob_ws:
            # Bob's socket on web 2 comes online; Alice's socket on web 1 is told through Redis.
            receive_until(bob_ws, shows(alice_jid, "available"), 15, "Alice online on Bob's screen")
            receive_until(alice_ws, shows(bob_jid, "available"), 15, "Bob online on Alice's screen")

            # A message typed on web 1 wakes Bob's socket on web 2 through Redis; opening the conversation there
            # reads it from PostgreSQL; his answer goes back the other way.
            alice_ws.send(message_frame(to=bob_jid, body="hello from web 1"))
            listed = receive_until(bob_ws, lambda f: "hello from web 1" in f, 15, "Alice's message in Bob's list")
            conversation = int(re.search(r'data-conversation="(\d+)"', listed).group(1))
            bob_ws.send(json.dumps({"type": "conversation.open", "conversation": conversation, "after": 0}))
            shown = receive_until(bob_ws, lambda f: 'data-seq="1"' in f, 15, "the message itself on Bob's screen")
            assert "hello from web 1" in shown
            bob_ws.send(message_frame(conversation=conversation, body="hello back from web 2"))
            receive_until(alice_ws, lambda f: "hello back from web 2" in f, 15, "Bob's answer on Alice's screen")

            # A web process dies without a word (no disconnect, no close_session): Bob's heartbeats stop, and the
            # beat's sweep, run by the worker, marks him offline; Alice, on the surviving process, is told.
            web2_process = next(p for p in scaled_site.processes if p.name == "web2")
            web2_process.popen.send_signal(signal.SIGKILL)
            web2_process.popen.wait(10)
            receive_until(alice_ws, shows(bob_jid, "unavailable|offline"), 30, "Bob swept offline on Alice's screen")

        # While Bob is away, Alice writes on; Bob's tab reconnects to the surviving process with the same session
        # and catches up from the seq it had: exactly the messages it missed, in order, none twice.
        for n in range(3, 6):
            alice_ws.send(message_frame(conversation=conversation, body=f"while you were away {n}"))
        with Person.resume(bob, web1).open_socket() as bob_again:
            bob_again.send(json.dumps({"type": "conversation.open", "conversation": conversation, "after": 2}))
            pushed: list[int] = []  # seqs of the messages pushed to Bob's tab, in arrival order

            def up_to_5(frame: str) -> bool:
                pushed.extend(int(seq) for seq in re.findall(r'<article id="msg-\d+-(\d+)"', frame))
                return 5 in pushed

            receive_until(bob_again, up_to_5, 15, "the missed messages")
            assert pushed == [3, 4, 5]
    assert healthz(web1)[0] == 200
