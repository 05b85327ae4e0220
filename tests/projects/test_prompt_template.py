from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from workbench.projects.presets import PRESETS, SIMPLE_QA_PROMPT
from workbench.projects.prompts import render_prompt, validate_prompt_template


@pytest.mark.parametrize("template", [p.prompt_template for p in PRESETS.values()] + ["{title}\n{text}", "{{x}} {text}"])
def test_valid_templates(template):
    validate_prompt_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("no placeholder", "must contain {text}"),
        ("{title} only", "must contain {text}"),
        ("{text} {source}", "{source} is not allowed"),
        ("{text.__class__}", "{text.__class__} is not allowed"),
        ("{text[0]}", "{text[0]} is not allowed"),
        ("{text!r}", "{text!r} is not allowed"),
        ("{text:>10}", "{text:>10} is not allowed"),
        ("{} {text}", "{} is not allowed"),
        ("{text} }", "unbalanced brace"),
        ("{text", "unbalanced brace"),
    ],
)
def test_invalid_templates_say_why(template, message):
    with pytest.raises(ValidationError) as info:
        validate_prompt_template(template)
    assert message in info.value.messages[0]


def test_render_inserts_text_verbatim_even_with_braces():
    hostile = "{title} {0.__class__} {{ }} <script>"
    assert render_prompt("[{title}] {text}", text=hostile, title="제목") == f"[제목] {hostile}"


def test_simple_qa_prompt_is_the_model_card_prompt():
    rendered = render_prompt(SIMPLE_QA_PROMPT, text="본문")
    assert rendered.startswith(
        "주어진 텍스트 컨텐츠를 참고하여 질문과 정확하고 상세한 답변을 만드세요, 대답은 아래 형태로 작성하세요\n"
    )
    assert rendered.endswith("**답변 형식**\n[[Q]] 지시문\n[[A]] 답변\n---\n본문")
