"""Projects set up in the Django admin from a real browser send the model card's prompt, byte for byte."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tests.browser import chromium_page
from tests.conftest import PASSWORD
from tests.workers.test_prompts import CHUNK, EXPECTED_SIMPLE_QA
from workbench.projects.models import Project
from workbench.projects.presets import PRESETS
from workers.prompts import render_chat_prompt


def admin_log_in(page, base, user):
    page.goto(base + "/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


@pytest.mark.django_db(transaction=True)
def test_projects_made_and_saved_in_the_admin_render_the_cards_prompt(live_server, owner, tiny_model):
    """Chromium submits textareas with CRLF line ends; the stored template keeps the card's "\\n"."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model["base"])
    with chromium_page() as page:
        admin_log_in(page, live_server.url, owner)
        # A new project with the preset's template left in its textarea (not re-applied on the server).
        page.goto(live_server.url + "/admin/projects/project/add/")
        page.fill("#id_name", "법률 QA")
        page.fill("#id_slug", "law-qa")
        page.select_option("#id_adapter_preset", "simple-qa")
        page.uncheck("#id_apply_preset")
        page.fill("#id_prompt_template", PRESETS["simple-qa"].prompt_template)
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist .success")
        project = Project.objects.get(name="법률 QA")
        assert "\r" not in project.prompt_template
        assert project.prompt_template == PRESETS["simple-qa"].prompt_template
        assert render_chat_prompt(tokenizer, project.prompt_template, text=CHUNK) == EXPECTED_SIMPLE_QA

        # Saving it again unchanged (what an admin does after touching any other field) keeps it too.
        page.fill("#id_description", "첫 줄\n둘째 줄")
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist .success")
        project.refresh_from_db()
        assert project.prompt_template == PRESETS["simple-qa"].prompt_template
        assert project.description == "첫 줄\n둘째 줄"
