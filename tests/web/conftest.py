"""The playground in headless Chromium against the real service on loopback, with the scripted model.

Every test's page collects console errors and uncaught exceptions; a test fails if any appear, except the
"Failed to load resource" lines of HTTP statuses the test provokes on purpose (``page_errors.allow(400)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import LiveServer, LoopThread, make_settings, require_docker, serve
from tests.fakes.model_server import ScriptedModel
from tests.web.browser import LAPTOP, chromium_missing, in_ci, launch

KEY = "sk-web"
# deadlines, not timings: the shared CPU can be slow (a sandbox start, pandas and matplotlib imports)
expect.set_options(timeout=60_000)
RESOURCE = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if (missing := chromium_missing()) is not None:
        if in_ci():
            pytest.fail(f"CI=true and no browser: {missing}", pytrace=False)
        pytest.skip(missing)
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="session")
def web_server(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The service with an API key and the scripted model (no sandbox)."""
    settings = make_settings(tmp_path_factory.mktemp("web"), model_url=scripted.url, api_keys=KEY)
    yield from serve(loop_thread, settings)


@pytest.fixture(scope="session")
def web_ci_server(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The service with an API key and the real Docker sandbox behind code_interpreter."""
    require_docker()
    settings = make_settings(
        tmp_path_factory.mktemp("web-ci"),
        model_url=scripted.url,
        api_keys=KEY,
        sandbox_enabled=True,
        sandbox_pool=1,
        code_timeout=10.0,
    )
    yield from serve(loop_thread, settings)


class PageErrors:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: set[int] = set()

    def allow(self, *statuses: int) -> None:
        self.allowed.update(statuses)

    def console(self, message: Any) -> None:
        if message.type != "error":
            return
        m = RESOURCE.search(message.text)
        if m and int(m.group(1)) in self.allowed:
            return
        self.errors.append(f"console: {message.text}")

    def unexpected(self) -> list[str]:
        return list(self.errors)


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    pg.on("console", page_errors.console)
    pg.on("pageerror", lambda err: page_errors.errors.append(f"uncaught: {err}"))
    requested: list[str] = []
    pg.on("request", lambda req: requested.append(req.url))
    yield pg
    context.close()
    assert page_errors.unexpected() == [], "the page logged errors"
    elsewhere = [u for u in requested if not u.startswith(("http://127.0.0.1:", "blob:http://127.0.0.1:"))]
    assert elsewhere == [], "the page asked for something that is not on the service"
