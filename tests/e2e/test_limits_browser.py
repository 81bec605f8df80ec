"""What a person sees when a limit holds them back: messages written faster than the per-person limit stay
queued on screen and go by themselves, once each and in order, when the server says they may; nothing the
person wrote is lost or doubled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import new_page, sign_up
from tests.e2e.test_chat_browser import befriend, message, row, say
from tests.servers import Service

pytestmark = pytest.mark.e2e

BURST = 7


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # Three messages per four seconds: a burst of seven is refused (twice) before it all goes through.
    service = Service(Path(tmp_path_factory.mktemp("svc")), env={"IMWEB_MESSAGE_RATE_LIMITS": "3/4"}).start()
    yield service
    assert service.stop() == 0, service.log()


def test_messages_over_the_limit_wait_on_screen_and_go_by_themselves_once_each(service, browser):
    ada, ada_console = new_page(browser)
    bo, _ = new_page(browser)
    sign_up(ada, service, "ada")
    sign_up(bo, service, "bo")
    befriend(ada, "ada", bo, "bo")
    ada.locator('#roster li[data-jid="bo@imweb.localhost"]').get_by_role("link", name="Message bo").click()
    say(ada, "hello 0")
    expect(message(ada, "hello 0")).to_be_visible()
    row(bo, "ada").locator("a").click()

    for n in range(1, BURST + 1):
        say(ada, f"burst {n}")
    # Some are held back, and say so, instead of vanishing or landing in the composer.
    expect(ada.locator(".message--pending .message__status", has_text="sending too fast").first).to_be_visible()
    expect(ada.locator("#composer-body")).to_have_value("")
    # All of them arrive, once each, in the order they were written, on both sides.
    for page in (ada, bo):
        expect(message(page, f"burst {BURST}")).to_be_visible(timeout=30_000)
        bodies = page.locator(".convo__messages .message[data-seq] .message__body").all_inner_texts()
        assert [b for b in bodies if b.startswith("burst")] == [f"burst {n}" for n in range(1, BURST + 1)]
    expect(ada.locator(".message--pending")).to_have_count(0)
    assert ada_console.errors == []
