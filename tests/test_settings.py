"""Configuration from the environment: production passes `check --deploy`, bad values stop startup by name."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3Y-" + "x7Qp9vLm2Rt8Zs4Wn6Bc1Hd5Jf0Gk3Yq" * 2,
    "ALLOWED_HOSTS": "workbench.example.org",
}


def manage(*args: str, env: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in drop} | env
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_with_production_settings_reports_nothing():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_flags_debug_settings():
    # The same check does see problems, so the test above can fail.
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={"DEBUG": "1"}, drop=("SECRET_KEY",))
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr


def test_missing_secret_key_in_production_names_the_variable():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env=env, drop=("SECRET_KEY",))
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_missing_allowed_hosts_in_production_names_the_variable():
    env = {k: v for k, v in PRODUCTION.items() if k != "ALLOWED_HOSTS"}
    result = manage("check", env=env, drop=("ALLOWED_HOSTS",))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_malformed_database_url_names_the_variable():
    result = manage("check", env={"DATABASE_URL": "postgres//nohost"})
    assert result.returncode != 0
    assert "DATABASE_URL='postgres//nohost' is not a supported database URL" in result.stderr


def test_database_url_password_is_not_echoed():
    result = manage("check", env={"DATABASE_URL": "mysql://u:hunter2@db/x"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr and "hunter2" not in result.stderr


def test_bad_boolean_names_the_variable():
    result = manage("check", env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr
    assert result.stderr.startswith("Configuration error: ") and "Traceback" not in result.stderr


def test_bad_broker_url_names_the_variable():
    result = manage("check", env={"CELERY_BROKER_URL": "amqp://guest@localhost//"})
    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr


def test_time_limits_must_fit_inside_visibility_timeout():
    result = manage("check", env={"CELERY_TASK_TIME_LIMIT": "4000", "CELERY_VISIBILITY_TIMEOUT": "3600"})
    assert result.returncode != 0
    assert "CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT" in result.stderr


def test_production_responses_carry_csp_without_inline_script(client, settings):
    response = client.get("/accounts/login/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy
    assert directives["object-src"] == "'none'"


def test_generation_precision_and_compile_settings_are_checked_by_name():
    fp8 = manage("check", env={"GENERATION_FP8": "int4"})
    assert fp8.returncode != 0 and "GENERATION_FP8='int4': use off, prefill or all." in fp8.stderr
    compile_ = manage("check", env={"GENERATION_COMPILE": "sometimes"})
    assert compile_.returncode != 0 and "GENERATION_COMPILE='sometimes' is not a boolean" in compile_.stderr
    assert manage("check", env={"GENERATION_FP8": "prefill", "GENERATION_COMPILE": "off"}).returncode == 0


def test_unknown_generation_backend_stops_startup_by_name():
    from workers.engine import BACKENDS

    result = manage("check", env={"GENERATION_BACKEND": "foo"})
    assert result.returncode != 0
    assert "GENERATION_BACKEND='foo': use auto, slots, batched or continuous." in result.stderr
    assert result.stderr.startswith("Configuration error: ") and "Traceback" not in result.stderr
    for backend in BACKENDS:  # every backend the engine knows is accepted
        assert manage("check", env={"GENERATION_BACKEND": backend}).returncode == 0, backend


def test_every_page_names_an_icon_that_exists(client):
    """Pages name the workbench's icon, so browsers do not ask for a /favicon.ico that is not there (a 404 and a console
    error on every page)."""
    import re

    from django.contrib.staticfiles import finders

    for path in ("/accounts/login/", "/admin/login/"):  # the site's pages and the admin's
        page = client.get(path).content.decode()
        href = re.search(r'<link rel="icon" href="/static/([^"]+)"', page)
        assert href and finders.find(href.group(1)), path
    assert "Genstruct Workbench administration" in client.get("/admin/login/").content.decode()


def test_a_request_error_is_logged_once():
    """Django's console handler (on with DEBUG) and the root's both printed each django.request record."""
    import os
    import subprocess
    import sys

    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning('Forbidden (Permission denied): /x/')"
    )
    env = os.environ | {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "workbench.settings"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Forbidden (Permission denied): /x/") == 1
