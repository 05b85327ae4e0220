"""Prompts exactly as the ko-genstruct model card builds them."""
from __future__ import annotations

import hashlib

from workbench.projects.prompts import render_prompt


def render_chat_prompt(tokenizer, template: str, *, text: str, title: str = "") -> str:
    """The card: template filled with the chunk, chat template with add_generation_prompt=True, then `.strip()`."""
    content = render_prompt(template, text=text, title=title)
    rendered = tokenizer.apply_chat_template(
        [{"content": content, "role": "user"}], tokenize=False, add_generation_prompt=True
    )
    return rendered.strip()


def encode_prompt(tokenizer, rendered: str) -> list[int]:
    """`add_special_tokens=False`: the chat template already wrote <|begin_of_text|>; a second BOS would change outputs."""
    return tokenizer.encode(rendered, add_special_tokens=False)


def template_hash(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]
