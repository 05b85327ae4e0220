"""Login throttling (django-axes): repeated failed logins for one username from one address lock that pair out."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' lockout check on every login made over HTTP (the login page, the admin's, the API's session login).

    Authentication without a request comes from code on the server (a management command, a test client's
    `login`), not from a client that could guess passwords; axes would refuse it outright, so it passes through to
    the next backend here.
    """

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or with LOGIN_PROXY_COUNT=n trusted proxies in front, the address the
    outermost of them saw (the n-th entry from the right of X-Forwarded-For). Entries further left are the client's
    own claims and are never trusted, so a client cannot pick a new address per attempt."""
    proxies = settings.LOGIN_PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, also for invited accounts: they have no usable password until they follow their link,
    and Django's form would silently send them nothing."""

    def get_users(self, email):
        User = get_user_model()
        email_field = User.get_email_field_name()
        users = User._default_manager.filter(**{f"{email_field}__iexact": email, "is_active": True})
        return (u for u in users if _email_is(getattr(u, email_field), email))


def _email_is(stored: str | None, given: str) -> bool:
    return bool(stored) and auth_forms._unicode_ci_compare(stored, given)
