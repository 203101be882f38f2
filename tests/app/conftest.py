"""Fixtures of the browser tests (tests/app/test_pages.py, test_store_pages.py): one
headless Chromium per module, and `tab` to open pages of the module's own `server` (a
`liveshop serve --demo` process each module defines)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.pages_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveshopServer,
    PageLog,
    open_page,
    require_browser,
)

Opener = Callable[..., "tuple[Page, PageLog]"]

# Missing Playwright is reported by require_browser(): a skip, or a failure in CI.
with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser: Browser, server: LiveshopServer) -> Iterator[Opener]:
    """Open a page of the running server (path, name); every tab is closed after the test."""
    pages: list[Page] = []

    def opener(path: str, name: str, *, width: int = 375) -> tuple[Page, PageLog]:
        page, log = open_page(browser, server.base_url + path, name, width=width)
        pages.append(page)
        return page, log

    yield opener
    for page in pages:
        page.context.close()
