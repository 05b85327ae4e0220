"""The rendered prompt is exactly the model card's."""
from __future__ import annotations

from transformers import AutoTokenizer

from workbench.projects.presets import PRESETS
from workers.prompts import encode_prompt, render_chat_prompt

CHUNK = "7일(현지시간) 치러진 프랑스 조기 총선 결선에서 좌파연합 신민중전선(NFP)이 예상을 깨고 1당 자리를 차지했다. {title} {0}"

EXPECTED_SIMPLE_QA = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    "주어진 텍스트 컨텐츠를 참고하여 질문과 정확하고 상세한 답변을 만드세요, 대답은 아래 형태로 작성하세요\n"
    "**답변 형식**\n"
    "[[Q]] 지시문\n"
    "[[A]] 답변\n"
    "---\n"
    "7일(현지시간) 치러진 프랑스 조기 총선 결선에서 좌파연합 신민중전선(NFP)이 예상을 깨고 1당 자리를 차지했다. {title} {0}"
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
)


def test_simple_qa_prompt_is_pinned_to_the_model_card(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model["base"])
    rendered = render_chat_prompt(tokenizer, PRESETS["simple-qa"].prompt_template, text=CHUNK)
    assert rendered == EXPECTED_SIMPLE_QA  # .strip() removed the template's trailing "\n\n"


def test_encoding_adds_no_second_bos(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model["base"])
    ids = encode_prompt(tokenizer, render_chat_prompt(tokenizer, PRESETS["simple-qa"].prompt_template, text="본문"))
    assert ids[0] == 128000 and ids.count(128000) == 1
    assert ids[-1] == 128007  # <|end_header_id|>: generation starts right after it, as in the card
    assert tokenizer.convert_tokens_to_ids("<|eot_id|>") == 128009


def test_document_text_is_never_template_code(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model["base"])
    hostile = "{% for x in range(3) %}{{ x }}{% endfor %} {text} {{title}}"
    rendered = render_chat_prompt(tokenizer, "{title}: {text}", text=hostile, title="{0.__class__}")
    assert "{0.__class__}: {% for x in range(3) %}{{ x }}{% endfor %} {text} {{title}}" in rendered
