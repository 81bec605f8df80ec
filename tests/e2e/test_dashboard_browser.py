"""An operator watches the dashboard while two people chat in their own browsers: the message counter and the
chart move without a reload, under the strict CSP."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD, new_page
from tests.e2e.test_chat_browser import chatting, message, say
from tests.servers import BASE_DIR, Service, wait_for

pytestmark = pytest.mark.e2e


def create_operator(service: Service, username: str) -> None:
    """A staff superuser made the way an operator makes one: `manage.py createsuperuser` against the service's
    database (its state folder)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "IMWEB_VAR_DIR"}
    }
    env |= {
        "IMWEB_VAR_DIR": str(service.var_dir),
        **service.extra_env,
        "DJANGO_SUPERUSER_USERNAME": username,
        "DJANGO_SUPERUSER_EMAIL": f"{username}@example.org",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def sign_in(page: Page, service: Service, username: str) -> None:
    page.goto(service.url + "/accounts/login/")
    page.fill("#id_login", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("link", name="Dashboard")).to_be_visible()


def chart_total(page: Page, chart: str, series: str) -> float:
    values = page.locator(f'[data-chart="{chart}"] [data-series="{series}"]').get_attribute("data-values") or ""
    return sum(float(v) for v in values.split(",") if v)


def test_an_operator_sees_the_counter_and_the_chart_move_while_people_chat(service, browser, output_dir):
    create_operator(service, "olga")
    dashboard, console = new_page(browser, width=1440, height=1100)
    sign_in(dashboard, service, "olga")
    dashboard.get_by_role("link", name="Dashboard").click()
    expect(dashboard.get_by_role("heading", name="The service now")).to_be_visible()
    sent_here = dashboard.locator('[data-figure="messages"] [data-part="local"]')
    expect(sent_here).to_have_text("0")
    assert chart_total(dashboard, "messages", "local") == 0
    expect(dashboard.locator('[data-figure="database"] .figure__value')).to_have_text("reachable")
    expect(dashboard.locator('[data-figure="valkey"] .figure__value')).to_have_text("reachable")
    # Under `make run`'s supervisor, every process is listed as up.
    expect(dashboard.locator('tr[data-process="worker"] .badge')).to_have_text("up")
    dashboard.evaluate("window.__stillTheSamePage = true")

    dana, _, eli = chatting(service, browser, "dana", "eli", "Hi Eli, lunch?")
    say(eli, "Yes, at noon")
    expect(message(dana, "Yes, at noon")).to_be_visible()

    # Within a few seconds and without a reload: the counter of the last minute and the chart's current minute.
    expect(sent_here).to_have_text("2", timeout=20_000)
    wait_for(lambda: chart_total(dashboard, "messages", "local") == 2, 20, "the messages chart to show both messages")
    expect(dashboard.locator('[data-figure="people-online"] .figure__value')).not_to_have_text("0")
    assert dashboard.evaluate("window.__stillTheSamePage") is True
    expect(dashboard.locator('[data-chart="messages"] .chart__summary')).to_have_text(
        "In all: sent here 2, from federation 0, to federation 0"
    )

    # Another range is one click away, and stays live.
    dashboard.get_by_role("link", name="Last 24 hours, per hour").click()
    expect(dashboard.get_by_role("heading", name="Trends: last 24 hours, per hour")).to_be_visible()
    wait_for(lambda: chart_total(dashboard, "messages", "local") == 2, 20, "the day chart to show both messages")
    assert dashboard.evaluate("window.__stillTheSamePage") is True
    dashboard.get_by_role("link", name="Last hour, per minute").click()
    expect(dashboard.get_by_role("heading", name="Trends: last hour, per minute")).to_be_visible()
    wait_for(lambda: chart_total(dashboard, "messages", "local") == 2, 20, "the hour chart again")

    assert console.errors == []  # no CSP violation, no script error
    # (The README shows this screenshot: copy it to docs/screenshots/ when the page changes.)
    dashboard.screenshot(path=str(output_dir / "dashboard.png"), full_page=True)
