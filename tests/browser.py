"""Headless Debian Chromium driven by Playwright (no browser download: the system binary is used)."""
from __future__ import annotations

import contextlib
import shutil

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@contextlib.contextmanager
def chromium_page():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("Debian's chromium is needed for browser tests (bin/test installs it).")
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
