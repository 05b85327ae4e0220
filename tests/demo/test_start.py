"""The README's start path on embedded defaults (SQLite, filesystem broker): serve, log in, set up, stop."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.browser import chromium_page
from tests.conftest import ROOT

LOGIN = "/accounts/login/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}}
    env["WORKBENCH_DATA_DIR"] = str(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output = []
    password = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and password is None:
        line = proc.stdout.readline()
        if not line:
            pytest.fail("serve exited before printing the admin password:\n" + "".join(output))
        output.append(line)
        if match := re.search(r"admin account: admin / (\S+)", line):
            password = match.group(1)
    base = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + LOGIN, timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    # Drain the rest of the output so the children never block on a full pipe.
    import threading

    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    yield {"base": base, "password": password, "proc": proc, "env": env, "output": output}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def log_in(page, base, username, password):
    page.goto(base + LOGIN)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def log_out(page):
    page.click("text=Log out")
    page.wait_for_url("**" + LOGIN)


def add_user(page, base, username, password):
    page.goto(base + "/admin/auth/user/add/")
    page.fill("#id_username", username)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")


@pytest.mark.worker
def test_start_command_serves_the_workbench_end_to_end(served):
    base, password = served["base"], served["password"]

    # The worker started by `serve` answers through the embedded filesystem broker.
    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workbench", "inspect", "ping", "--timeout", "5"],
        cwd=ROOT, env=served["env"], capture_output=True, text=True, timeout=60,
    )
    assert "pong" in ping.stdout, ping.stdout + ping.stderr

    with chromium_page() as page:
        log_in(page, base, "admin", password)
        page.wait_for_selector("#project-list")
        assert "Demo: Korean sample documents" in page.inner_text("#project-list")

        add_user(page, base, "member", "member-pass-3141")
        add_user(page, base, "stranger", "stranger-pass-2718")

        page.goto(base + "/admin/projects/project/add/")
        page.locator("#id_name").press_sequentially("Browser project")
        assert page.input_value("#id_slug") == "browser-project"  # prepopulated by the admin's script
        page.click("#memberships-0 .select2-selection")
        page.fill(".select2-search__field", "member")
        page.click(".select2-results__option:has-text('member')")
        page.select_option("#id_memberships-0-role", "reviewer")
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist .success")
        log_out(page)

        log_in(page, base, "member", "member-pass-3141")
        page.wait_for_selector("#project-list")
        assert "Browser project" in page.inner_text("#project-list")
        page.click("text=Browser project")
        assert "your role: Reviewer" in page.inner_text("main")
        log_out(page)

        log_in(page, base, "stranger", "stranger-pass-2718")
        page.wait_for_selector("main")
        assert "Browser project" not in page.inner_text("main")
        response = page.goto(base + "/p/browser-project/")
        assert response.status == 404
        assert page.csp_violations == []

    # Ctrl-C stops everything `serve` started.
    proc = served["proc"]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(base + LOGIN, timeout=2)
