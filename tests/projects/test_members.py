"""Members and accounts without the Django admin: the Members page, invitations, password change and reset."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from tests.browser import chromium_page, log_in
from tests.conftest import PASSWORD
from tests.factories import make_pairs, make_project, make_user
from workbench.generation.models import QAPair
from workbench.projects.models import Membership, Role
from workbench.review.services import ReviewInput, pair_claim, pair_review


def members_url(project):
    return f"/p/{project.slug}/members/"


def test_home_page_counts_every_member(client, project, reviewer):
    make_user("third")
    Membership.objects.create(project=project, user=get_user_model().objects.get(username="third"))
    client.login(username="reviewer", password=PASSWORD)
    page = client.get("/").content.decode()
    assert re.search(r"Korean news</a></td>\s*<td>[^<]*</td>\s*<td>3</td>", page), page


def test_reviewers_see_members_but_cannot_change_them(client, project, reviewer, owner):
    client.login(username="reviewer", password=PASSWORD)
    response = client.get(members_url(project))
    assert response.status_code == 200 and 'data-member="owner"' in response.content.decode()
    assert "Add a member" not in response.content.decode()
    mine = project.memberships.get(user=reviewer)
    assert client.post(members_url(project), {"action": "role", "member": mine.pk, "role": "admin"}).status_code == 403
    assert client.post(members_url(project), {"action": "add", "identifier": "owner", "role": "admin"}).status_code == 403
    mine.refresh_from_db()
    assert mine.role == Role.REVIEWER


def test_the_last_admin_cannot_leave_or_be_demoted(client, project, owner):
    client.login(username="owner", password=PASSWORD)
    admin = project.memberships.get(user=owner)
    for data in ({"action": "role", "member": admin.pk, "role": "reviewer"}, {"action": "remove", "member": admin.pk}):
        response = client.post(members_url(project), data, follow=True)
        assert "A project needs at least one admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    # With another admin, the owner may leave; the page says so in the second person.
    second = make_user("second-admin")
    project.memberships.create(user=second, role=Role.ADMIN)
    left = client.post(members_url(project), {"action": "remove", "member": admin.pk}, follow=True).content.decode()
    assert f"You left {project.name}; your decisions stay in its history." in left
    assert not project.memberships.filter(user=owner).exists()
    project.memberships.create(user=owner, role=Role.ADMIN)
    admin = project.memberships.get(user=owner)
    # Bad input is a message, never a 500.
    for data in (
        {"action": "role", "member": "x"},
        {"action": "nope"},
        {"action": "role", "member": admin.pk, "role": "boss"},
        {"action": "add", "identifier": "not a user", "role": "reviewer"},
        {"action": "add", "identifier": "a" * 140 + "@example.org", "role": "reviewer"},
    ):
        assert client.post(members_url(project), data).status_code == 400


def test_removing_a_member_returns_their_pairs_and_keeps_their_decisions(client, project, owner, reviewer):
    first, _ = make_pairs(project, 2)
    claimed = pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=claimed.version))
    held = pair_claim(project=project, reviewer=reviewer)
    client.login(username="owner", password=PASSWORD)
    page = client.get(members_url(project)).content.decode()
    assert re.search(r'data-member="reviewer">.*?class="count-total">1<', page, re.S)
    membership = project.memberships.get(user=reviewer)
    client.post(members_url(project), {"action": "remove", "member": membership.pk})
    assert not project.memberships.filter(user=reviewer).exists()
    assert QAPair.objects.get(pk=held.pk).claimed_by is None
    assert reviewer.review_decisions.count() == 1
    client.logout()
    client.login(username="reviewer", password=PASSWORD)
    assert client.get(f"/p/{project.slug}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_admin_manages_members_and_a_new_member_sets_a_password_in_the_browser(live_server, owner):
    project = make_project(slug="law-qa", name="법률 QA", admins=[owner])
    make_user("kim", email="kim@example.org")
    base = live_server.url
    with chromium_page() as page:
        log_in(page, base, "owner")
        page.goto(base + f"/p/{project.slug}/")
        page.click("#project-nav >> text=Members")
        # An existing account by e-mail (any case), as a reviewer.
        page.fill("#id_identifier", "KIM@example.org")
        page.click("#add-member button[type=submit]")
        page.wait_for_selector("tr[data-member=kim]")
        assert "kim added as reviewer" in page.inner_text(".messages")
        # Someone new by e-mail: an account is made and an invitation mailed.
        page.fill("#id_identifier", "lee@example.org")
        page.select_option("#id_role", "admin")
        page.click("#add-member button[type=submit]")
        page.wait_for_selector("tr[data-member='lee@example.org']")
        assert "invitation" in page.inner_text(".messages")
        assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lee@example.org"]
        link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
        # Promote kim, then remove kim.
        page.select_option("tr[data-member=kim] select[name=role]", "admin")
        page.click("tr[data-member=kim] .role-form button")
        page.wait_for_selector(".messages >> text=kim is now admin")
        page.click("tr[data-member=kim] .remove-form button")
        page.wait_for_selector(".messages >> text=kim removed")
        assert not project.memberships.filter(user__username="kim").exists()
        assert project.memberships.get(user__username="lee@example.org").role == Role.ADMIN
        page.click("button:has-text('Log out')")

        # The invited member follows the mailed link and sets a password, then logs in.
        page.goto(link.replace("http://testserver", base))
        page.fill("#id_new_password1", "새비밀번호-correct-horse-42")
        page.fill("#id_new_password2", "새비밀번호-correct-horse-42")
        page.click("button[type=submit]")
        page.wait_for_selector("#reset-complete")
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "lee@example.org")
        page.fill("#id_password", "새비밀번호-correct-horse-42")
        page.click("button[type=submit]")
        page.wait_for_selector("#project-list")
        assert "법률 QA" in page.inner_text("#project-list")

        # They change their own password from the top bar.
        page.click("a.who")
        page.fill("#id_old_password", "새비밀번호-correct-horse-42")
        page.fill("#id_new_password1", "another-Passw0rd-for-lee")
        page.fill("#id_new_password2", "another-Passw0rd-for-lee")
        page.click("main button[type=submit]")
        page.wait_for_selector("#password-changed")
    assert get_user_model().objects.get(username="lee@example.org").check_password("another-Passw0rd-for-lee")


def test_forgot_password_mails_a_link_that_works_once(client, reviewer):
    reviewer.email = "reviewer@example.org"
    reviewer.save()
    response = client.post("/accounts/reset/", {"email": "reviewer@example.org"}, follow=True)
    assert "Check your e-mail" in response.content.decode() and len(mail.outbox) == 1
    link = re.search(r"https?://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    data = {"new_password1": "reset-Passw0rd-99", "new_password2": "reset-Passw0rd-99"}
    assert client.post(form_url, data, follow=True).status_code == 200
    reviewer.refresh_from_db()
    assert reviewer.check_password("reset-Passw0rd-99")
    assert "This link was used already" in client.get(link, follow=True).content.decode()


def test_decisions_undone_are_not_counted_and_bulk_ones_are_said(client, project, owner, reviewer):
    """The Members page and the dashboard count the decisions that stand: one undone by its reviewer, or by undoing its
    bulk action, is left out; a bulk rejection that stands is counted and said to be one."""
    from workbench.review.bulk import bulk_action_undo, bulk_reject_selection, pairs_bulk_reject_confirmed
    from workbench.review.selectors import reviewer_throughput
    from workbench.review.services import review_undo

    pairs = make_pairs(project, 6)
    for _ in range(2):
        claimed = pair_claim(project=project, reviewer=reviewer)
        pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=claimed.version))
    review_undo(project=project, reviewer=reviewer)  # the second approval, undone
    QAPair.objects.filter(claimed_by=reviewer).update(claimed_by=None, lease_expires_at=None)

    def bulk(ids):
        chosen = QAPair.objects.filter(pk__in=ids)
        selection = bulk_reject_selection(project=project, pairs=chosen)
        return pairs_bulk_reject_confirmed(
            project=project,
            admin=owner,
            pairs=chosen,
            reason="일괄 거절",
            filters={},
            confirmed=(selection.count, selection.digest),
        )

    undone = bulk([p.pk for p in pairs[2:5]])
    bulk_action_undo(project=project, action_id=undone.pk, admin=owner)
    bulk([pairs[5].pk])
    client.login(username="owner", password=PASSWORD)
    page = client.get(members_url(project)).content.decode()
    assert re.search(r'data-member="reviewer">.*?class="count-total">1<', page, re.S)
    assert re.search(r'data-member="owner">.*?class="count-total">1<.*?class="count-rejected">1 <span', page, re.S)
    assert "(1 in bulk)" in page
    assert reviewer_throughput(project=project) == [{"reviewer": "reviewer", "decisions": 1}]
