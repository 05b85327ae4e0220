"""The docs' relative links lead somewhere: every file they name exists and every #anchor is a heading there
(GitHub's anchors: lowercase, punctuation dropped, spaces to hyphens, -1, -2 for repeats). Figures live in one place,
docs/PERFORMANCE.md, and the README and the guide link into it, so a renamed section must not leave them pointing
nowhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)", re.M)


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"\s*(```|~~~)", line):
            fence = not fence
        match = None if fence else re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            s = slug(match.group(2))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def broken_links(files: list[Path]) -> tuple[int, list[str]]:
    checked, broken = 0, []
    for f in files:
        text = re.sub(r"```.*?```", "", f.read_text(encoding="utf-8"), flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        for match in LINK.finditer(text):
            target = match.group(1) or match.group(2)
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            if not dest.exists():
                broken.append(f"{f.name}: {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{f.name}: {target}: no such heading")
    return checked, broken


def test_readme_and_docs_links_resolve():
    checked, broken = broken_links([ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    assert checked > 50 and not broken, "\n".join(broken)


def test_a_missing_file_or_heading_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Generation (`benchmarks/generation.py`)\n## Same\n## Same\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[a](other.md#generation-benchmarksgenerationpy) [b](other.md#same-1) [c](other.md#gone) [d](missing.md) "
        "[e](https://example.com/x) `[f](not-a-link.md)`\n",
        encoding="utf-8",
    )
    checked, broken = broken_links([page])
    assert checked == 4 and broken == ["page.md: other.md#gone: no such heading", "page.md: missing.md: no such file"]
