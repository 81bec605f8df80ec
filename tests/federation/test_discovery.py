"""The server answers for itself: a ping (XEP-0199) and service discovery of the domain (XEP-0030), with the
operators' abuse addresses (XEP-0157) when they published some; anything else it is asked gets a clear
`service-unavailable`, and a person is never answered for."""

from __future__ import annotations

import pytest
from django.test import override_settings

from federation.discovery import DATA_FORMS_NS, DISCO_INFO_NS, DISCO_ITEMS_NS
from tests.federation.test_handlers import REMOTE, ROMEO, errors, receive, sent

pytestmark = pytest.mark.django_db

DOMAIN = "imweb.localhost"


def iq(payload: str, *, to: str = DOMAIN, id_: str = "q1", type_: str = "get") -> str:
    return f"<iq from='{ROMEO}/laptop' to='{to}' id='{id_}' type='{type_}'>{payload}</iq>"


def results() -> list:
    return [element for element in sent() if element.get("type") == "result"]


def test_a_ping_to_the_server_is_answered_with_an_empty_result():
    receive(iq("<ping xmlns='urn:xmpp:ping'/>", id_="ping-7"))
    (result,) = results()
    assert (result.get("from"), result.get("to"), result.get("id")) == (DOMAIN, f"{ROMEO}/laptop", "ping-7")
    assert len(result) == 0


def test_disco_info_says_what_the_server_is_and_speaks_and_no_abuse_address_unless_published():
    receive(iq(f"<query xmlns='{DISCO_INFO_NS}'/>"))
    (result,) = results()
    (query,) = result
    identity = query.find(f"{{{DISCO_INFO_NS}}}identity")
    assert (identity.get("category"), identity.get("type")) == ("server", "im")
    features = {f.get("var") for f in query.findall(f"{{{DISCO_INFO_NS}}}feature")}
    assert {"urn:xmpp:ping", DISCO_INFO_NS, "urn:xmpp:receipts", "jabber:x:oob"} <= features
    assert query.find(f"{{{DATA_FORMS_NS}}}x") is None


@override_settings(IMWEB_ABUSE_ADDRESSES="mailto:abuse@imweb.localhost, xmpp:abuse@imweb.localhost")
def test_the_operators_abuse_addresses_are_published_in_the_server_info_form():
    receive(iq(f"<query xmlns='{DISCO_INFO_NS}'/>"))
    (result,) = results()
    form = result[0].find(f"{{{DATA_FORMS_NS}}}x")
    fields = {f.get("var"): [v.text for v in f] for f in form.findall(f"{{{DATA_FORMS_NS}}}field")}
    assert fields == {
        "FORM_TYPE": ["http://jabber.org/network/serverinfo"],
        "abuse-addresses": ["mailto:abuse@imweb.localhost", "xmpp:abuse@imweb.localhost"],
    }


def test_disco_items_of_the_server_is_an_empty_list():
    receive(iq(f"<query xmlns='{DISCO_ITEMS_NS}'/>"))
    (result,) = results()
    assert [child.tag for child in result] == [f"{{{DISCO_ITEMS_NS}}}query"] and len(result[0]) == 0


@pytest.mark.parametrize(
    "payload",
    [
        "<query xmlns='jabber:iq:version'/>",  # not offered
        f"<query xmlns='{DISCO_INFO_NS}' node='x'/>",  # no nodes here
        "<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>",  # two payloads
        "",  # none
    ],
)
def test_anything_else_asked_of_the_server_is_refused_as_unavailable(payload):
    receive(iq(payload, id_="x1"))
    assert results() == []
    assert errors() == [(f"{ROMEO}/laptop", "x1", "service-unavailable")]


def test_a_person_is_never_answered_for_and_results_are_never_answered(alice):
    receive(iq("<ping xmlns='urn:xmpp:ping'/>", to="alice@imweb.localhost", id_="p2"))
    assert results() == [] and errors() == [(f"{ROMEO}/laptop", "p2", "service-unavailable")]
    receive(iq("", type_="result", id_="r1"))
    assert len(sent()) == 1


def test_a_denied_server_gets_no_answer():
    from federation import policy

    policy.set_policy(REMOTE, "deny")
    receive(iq("<ping xmlns='urn:xmpp:ping'/>"))
    assert sent() == []
