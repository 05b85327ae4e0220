"""Headless Debian Chromium driven by Playwright (no browser download: the system binary is used)."""

from __future__ import annotations

import contextlib
import os
import shutil

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page():

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("Debian's chromium is needed for browser tests (bin/test installs it).")
    # Playwright's sync API keeps an event loop on the test thread; the ORM calls a test makes beside it are
    # synchronous. Allowed for the browser session only, so no subprocess inherits it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with _playwright_page(executable) as page:
            yield page
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@contextlib.contextmanager
def _playwright_page(executable: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.csp_violations = []
            page.on(
                "console",
                lambda msg: page.csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None,
            )
            yield page
        finally:
            browser.close()


def log_in(page, base: str, user, password: str | None = None) -> None:
    """Log in (a user or a username) through the login page and wait for the project list, where every login lands."""
    from tests.conftest import PASSWORD

    page.goto(base + "/accounts/login/")
    page.fill("#id_username", getattr(user, "username", user))
    page.fill("#id_password", password or PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#project-list, .empty")
