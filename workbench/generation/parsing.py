"""Parsing raw ko-genstruct outputs (`[[Q]] question [[A]] answer`) into a question and an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tolerated: full-width brackets, spaces inside the markers, lower case, a bracket too many ("[[A]]]"), stray special
# tokens.
_Q = re.compile(r"[\[［]\s*[\[［]\s*[Qq]\s*[\]］]\s*[\]］][\]］]*")
_A = re.compile(r"[\[［]\s*[\[［]\s*[Aa]\s*[\]］]\s*[\]］][\]］]*")
_SPECIAL = re.compile(r"<\|[A-Za-z0-9_]+\|>|</?s>")


@dataclass(frozen=True)
class ParsedOutput:
    question: str | None
    answer: str | None
    problem: str = ""  # why the output is malformed; empty when it parsed

    @property
    def ok(self) -> bool:
        return not self.problem


def parse_output(raw: str) -> ParsedOutput:
    text = _SPECIAL.sub("", raw).strip()
    q = _Q.search(text)
    if q is None:
        return ParsedOutput(None, None, "no [[Q]] marker")
    preamble = text[: q.start()].strip()
    rest = text[q.end() :]
    a = _A.search(rest)
    if a is None:
        return ParsedOutput(rest.strip() or None, None, "no [[A]] marker")
    question = rest[: a.start()].strip()
    answer = rest[a.end() :]
    second = _Q.search(answer)
    if second is not None:  # a second pair: keep the first
        answer = answer[: second.start()]
    answer = answer.strip()
    if _A.search(answer):
        return ParsedOutput(question or None, answer or None, "more than one [[A]] marker")
    if not question:
        return ParsedOutput(None, answer or None, "empty question")
    if not answer:
        return ParsedOutput(question, None, "empty answer")
    if preamble:
        return ParsedOutput(question, answer, "text before [[Q]]")
    return ParsedOutput(question, answer)
