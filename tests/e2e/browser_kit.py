"""What the console's browser tests share: Chromium, a signed-in page, screenshots."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import ADMIN_PASSWORD, require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: set to a folder (e.g. docs/screenshots) to keep the screenshots of the main pages
SHOTS = os.environ.get("IB_SCREENSHOTS", "")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; skips locally (fails in CI) without it."""
    have_chromium = shutil.which("chromium") is not None or Path(CHROMIUM).exists()
    require(have_chromium, "Chromium", "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright", "make .venv/.installed-stamp (never 'playwright install')")
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Any, url: str, **context: Any) -> tuple[Any, Any, list[str]]:
    """Open a context, sign in as the admin through the login form.

    Returns (context, page, script errors seen on the page); ``context`` options
    override the default 1366×900 English viewport.
    """
    ctx = browser.new_context(
        **{"viewport": {"width": 1366, "height": 900}, "locale": "en-US", **context}
    )
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(url + "/login")
    pg.fill("#username", "admin")
    pg.fill("#password", ADMIN_PASSWORD)
    pg.click("#login-submit")
    pg.wait_for_url(url + "/")
    return ctx, pg, errors


@contextlib.contextmanager
def signed_in_page(browser: Any, url: str, **context: Any) -> Iterator[Any]:
    """A signed-in page, closed afterwards; fails if any page script raised."""
    ctx, pg, errors = sign_in(browser, url, **context)
    yield pg
    ctx.close()
    assert not errors, errors


def shot(pg: Any, name: str, *, full_page: bool = False) -> None:
    """Save a screenshot named ``name`` when ``IB_SCREENSHOTS`` is set."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)
