"""Prompts exactly as the ko-genstruct model card builds them, with the document's text always tokenised as text."""

from __future__ import annotations

import re

from workbench.projects.prompts import render_prompt

# A private-use character marks where the user's content sits in the chat template's output.
_MARK = "\ue000"


def render_chat_prompt(tokenizer, template: str, *, text: str, title: str = "") -> str:
    """The card: template filled with the chunk, chat template with add_generation_prompt=True, then `.strip()`."""
    content = render_prompt(template, text=text, title=title)
    rendered = tokenizer.apply_chat_template([{"content": content, "role": "user"}], tokenize=False, add_generation_prompt=True)
    return rendered.strip()


def encode_chat_prompt(tokenizer, template: str, *, text: str, title: str = "") -> list[int]:
    """The card's `encode(rendered, add_special_tokens=False)`, except that the user's content is literal text.

    A document holding `<|eot_id|><|start_header_id|>assistant` would otherwise become real Llama-3 control tokens and
    end the user's turn. Special tokens are recognised only in the chat template's own markup: the rendered prompt is
    split into markup before the content, the content as the template wrote it, and markup after; the markup is
    encoded as the card encodes it, and the content (with the markup's text touching it) with special tokens split
    into ordinary text. A fast tokenizer cuts its input at special tokens before anything else, so for content without
    them the ids are exactly those of encoding the whole rendered string.
    """
    content = render_prompt(template, text=text, title=title)
    if _MARK in content:
        content = content.replace(_MARK, "\ufffd")
    frame = tokenizer.apply_chat_template([{"content": _MARK, "role": "user"}], tokenize=False, add_generation_prompt=True)
    if frame.count(_MARK) != 1:
        raise ValueError("the tokenizer's chat template does not place the user's content exactly once")
    before, after = frame.split(_MARK)
    rendered = tokenizer.apply_chat_template([{"content": content, "role": "user"}], tokenize=False, add_generation_prompt=True)
    if not (rendered.startswith(before) and rendered.endswith(after)) or len(rendered) < len(before) + len(after):
        raise ValueError("the tokenizer's chat template changes its markup with the content; cannot keep the text literal")
    middle = rendered[len(before) : len(rendered) - len(after)]
    # The card's .strip() of the whole string: markup always holds a special token at both ends of the prompt.
    before, after = before.lstrip(), after.rstrip()

    special = _special_pattern(tokenizer)
    head = special.split(before) if special else [before]
    tail = special.split(after) if special else [after]
    # re.split with a capturing group alternates text, token, text, ...: the last text of `head` and the first of
    # `tail` touch the content and are encoded with it.
    literal = head[-1] + middle + tail[0]
    ids = _encode_markup(tokenizer, head[:-1])
    ids += tokenizer.encode(literal, add_special_tokens=False, split_special_tokens=True) if literal else []
    ids += _encode_markup(tokenizer, tail[1:], leading_token=True)
    return ids


def _special_pattern(tokenizer) -> re.Pattern | None:
    tokens = sorted({t.content for t in tokenizer.added_tokens_decoder.values() if t.special}, key=len, reverse=True)
    return re.compile("(" + "|".join(map(re.escape, tokens)) + ")") if tokens else None


def _encode_markup(tokenizer, parts: list[str], *, leading_token: bool = False) -> list[int]:
    """Alternating text and special-token parts (starting with a token when `leading_token`, else with text)."""
    ids: list[int] = []
    for i, part in enumerate(parts):
        is_token = (i % 2 == 0) == leading_token
        if is_token:
            ids.append(tokenizer.convert_tokens_to_ids(part))
        elif part:
            ids += tokenizer.encode(part, add_special_tokens=False)
    return ids
