"""The API's own documentation renders offline (issue 16, point 4): Swagger UI and ReDoc came from a CDN and drew a
blank page without internet; their assets now come from the fastapi-offline package."""

from __future__ import annotations


def block_outside(page, server):
    """Abort every request that leaves the server, as a machine without internet would."""
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server.url)
               else route.abort())


def test_swagger_ui_renders_the_api_with_outside_requests_blocked(page, server):
    block_outside(page, server)
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "faceshot" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("[data-path='/api/v1/identify']")  # the operations are drawn from /openapi.json
    assert page.problems == []


def test_redoc_renders_the_api_with_outside_requests_blocked(page, server):
    block_outside(page, server)
    page.goto("/redoc")
    page.wait_for_selector("h1:has-text('faceshot')")
    assert page.get_by_text("/api/v1/identify").count() >= 1
    # ReDoc's script itself asks for its maker's logo (the "API docs by Redocly" footer); blocked, nothing else is
    # missing, so that one request is all that differs from a page that never leaves the server
    logo = [p for p in page.problems if "cdn.redoc.ly/redoc/logo-mini.svg" in p]
    assert [p for p in page.problems if p not in logo and "Failed to load resource" not in p] == []
    assert len([p for p in page.problems if "Failed to load resource" in p]) <= len(logo)  # the logo's, no other
