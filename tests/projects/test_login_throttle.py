"""Login throttling: repeated failed logins lock the username from that address out, with a page that says so."""

from __future__ import annotations

from django.core.management import call_command
from django.test import override_settings

from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"


def attempt(client, username, password, addr="203.0.113.7", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=addr, **extra)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_failed_logins_lock_the_username_from_that_address(client, reviewer):
    for _ in range(3):
        response = attempt(client, "reviewer", "wrong")
    assert response.status_code == 429
    # Locked: even the right password is refused now, with a page that says why and for how long.
    response = attempt(client, "reviewer", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode() and "_auth_user_id" not in client.session
    assert "Try again in 15 minutes" in response.content.decode()  # LOGIN_LOCKOUT_MINUTES, in words
    # The admin's login is the same door.
    assert (
        client.post("/admin/login/", {"username": "reviewer", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7").status_code == 429
    )
    # Another address is not locked out by someone else's guesses.
    response = attempt(client, "reviewer", PASSWORD, addr="198.51.100.2")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(reviewer.pk)
    # An administrator unlocks the account.
    client.logout()
    call_command("axes_reset_username", "reviewer")
    assert attempt(client, "reviewer", PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_success_resets_the_count(client, reviewer):
    for _ in range(2):
        attempt(client, "reviewer", "wrong")
    assert attempt(client, "reviewer", PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert attempt(client, "reviewer", "wrong").status_code == 200
    assert attempt(client, "reviewer", PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2, LOGIN_PROXY_COUNT=1)
def test_a_forged_forwarded_for_does_not_escape_the_lock(client, reviewer):
    """Behind one proxy the client's address is the proxy's last entry; what the client prepends is ignored."""
    for i in range(2):
        attempt(client, "reviewer", "wrong", addr="10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.9")
    response = attempt(client, "reviewer", PASSWORD, addr="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.9")
    assert response.status_code == 429
