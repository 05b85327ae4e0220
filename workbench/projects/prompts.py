"""Prompt templates: validation and safe substitution of `{text}` and `{title}` (never str.format on user input)."""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError

ALLOWED_FIELDS = ("text", "title")


def _parse(template: str) -> list[tuple[str, str | None]]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValidationError(
            "The prompt template has an unbalanced brace (%(error)s); write {{ or }} for a literal brace.",
            code="unbalanced",
            params={"error": exc},
        ) from None
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is not None:
            if field not in ALLOWED_FIELDS or spec or conversion:
                shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                raise ValidationError(
                    "The prompt template may use only {text} and {title}; %(field)s is not allowed.",
                    code="field",
                    params={"field": shown},
                )
        parts.append((literal, field))
    return parts


def validate_prompt_template(template: str) -> None:
    parts = _parse(template)
    if not any(field == "text" for _, field in parts):
        raise ValidationError("The prompt template must contain {text}, where the chunk goes.", code="missing_text")


def render_prompt(template: str, *, text: str, title: str = "") -> str:
    """Fill a validated template. Values are inserted as they are: braces inside a document stay literal text."""
    values = {"text": text, "title": title}
    return "".join(literal + (values[field] if field is not None else "") for literal, field in _parse(template))
