"""Fixtures of the dashboard tests: an in-process stack for the session rules, and a real
gateway on a port with a real (Debian) Chromium for the browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.dashboard.live import LiveGateway, live_gateway
from tests.gateway.conftest import Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
# Headless, no sandbox (CI runs as root), no GPU, and no calls home: the page must work offline.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUIRE_BROWSER = os.environ.get("FINMATCH_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def stack(engine: Engine) -> Iterator[Stack]:
    with running_stack(engine) as running:
        yield running


def _no_browser(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"FINMATCH_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"browser tests skipped: {reason} (apt-get install chromium fonts-noto-cjk)")


def _has_cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(
        ["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True, check=False
    )
    return bool(listed.stdout.strip())


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        _no_browser(f"{CHROMIUM} is missing")
    if not _has_cjk_font():
        _no_browser("no CJK font is installed (Chinese would be drawn as boxes)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def live(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """The gateway on a loopback port with the demo data (only started when a browser exists)."""
    with live_gateway(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no storage) and a page that fails on script errors."""
    context = chromium.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    errors: list[str] = []
    new_page = context.new_page()
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    new_page.set_default_timeout(30_000)
    try:
        yield new_page
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


ALONE = (
    "browser tests run in a pytest session of their own (make test runs them after the rest): "
    "Playwright's sync API leaves its event loop set on the thread for the whole session, and "
    "every later asyncio.run() on that worker would fail"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser = [item for item in items if item.nodeid.startswith("tests/dashboard/test_browser.py")]
    if browser and len(browser) < len(items):
        for item in browser:
            item.add_marker(pytest.mark.skip(reason=ALONE))
