"""Anyone not a member gets 404 for every URL of a project: the test walks the URL configuration, so a new URL is
covered without editing it."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.generation.models import GenerationRun
from workbench.review.audit import audit_create
from workbench.review.services import ReviewInput, pair_claim, pair_review


def patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def concrete(route: str, values: dict) -> str | None:
    url = "/" + route.lstrip("^").rstrip("$")
    for name in re.findall(r"<(?:\w+:)?(\w+)>", url):
        if name not in values:
            return None
        url = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), url)
    return url


def project_urls(project, ids):
    values = {"slug": project.slug, **ids}
    urls = []
    for route in patterns():
        if (
            "<slug" in route
            or "<pk>" in route
            or "<int:pk>" in route
            or "run_id" in route
            or "pair_id" in route
            or "item_id" in route
        ):
            url = concrete(route, values)
            if url:
                urls.append(url)
    return urls


def test_outsider_gets_404_on_every_project_url(client, project, outsider):
    (pair, approved) = make_pairs(project, 2, with_generation=True)
    reviewer = project.memberships.get(role="reviewer").user
    claimed = pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=claimed.version))
    item = audit_create(project=project, admin=project.memberships.get(role="admin").user, sample_size=1).items.get()
    run = GenerationRun.objects.get(project=project)
    ids = {"pk": pair.pk, "run_id": run.pk, "pair_id": pair.pk, "item_id": item.pk}
    urls = project_urls(project, ids)
    assert len(urls) >= 20  # the walk really found the project's pages, fragments and API
    client.login(username=outsider.username, password=PASSWORD)
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in (404, 405), f"{method.upper()} {url} -> {response.status_code}"
    # ...and the same URLs are there for a member (the walk is not testing dead URLs).
    client.logout()
    client.login(username=project.memberships.get(role="admin").user.username, password=PASSWORD)
    reachable = [u for u in urls if client.get(u).status_code in (200, 302, 405)]
    assert len(reachable) >= len(urls) * 0.6


def test_an_outsider_cannot_tell_a_run_that_exists_from_one_that_does_not(project, owner, outsider):
    from tests.review.test_api import token_client
    from workbench.generation.models import GenerationRun

    run = GenerationRun.objects.create(project=project, parameters={"samples_per_chunk": 1})
    api = token_client(outsider)
    for path in (f"/api/runs/{run.pk}", f"/api/runs/{run.pk + 1000}"):
        response = api.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), path
        response = api.post(path + "/cancel")
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), path
