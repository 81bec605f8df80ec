"""The interactive API docs (/api/v1/docs) in a real Chromium under our strict CSP: every asset comes from our
own origin, nothing is blocked, and the operations render from the OpenAPI document."""

from __future__ import annotations

import pytest
from playwright.sync_api import Request, expect

from tests.e2e.conftest import browser, new_page, service  # noqa: F401  (fixtures, shared with the browser tests)
from tests.servers import Service

pytestmark = pytest.mark.e2e


def test_docs_render_under_the_csp_from_our_own_origin(service: Service, browser, output_dir):  # noqa: F811
    page, console = new_page(browser)
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    response = page.goto(service.url + "/api/v1/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Swagger UI fetched the document and drew the operations from it.
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/messages").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/token").first).to_be_visible()
    foreign = [url for url in requested if not url.startswith((service.url + "/", "data:"))]
    assert foreign == []
    assert any(url.endswith("/static/ninja/swagger-ui-bundle.js") for url in requested)
    assert any(url.endswith("/api/v1/openapi.json") for url in requested)
    assert console.errors == []  # a CSP violation would be reported here
    page.screenshot(path=str(output_dir / "api-docs.png"))
    page.context.close()
