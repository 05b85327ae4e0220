"""Upload handlers: Django's two, with the file name a browser sent decoded.

Browsers write a multipart file name with `"`, CR and LF percent-encoded (`%22`, `%0D`, `%0A`; the HTML standard's
form-data encoding) and leave every other character as it is, so `보고서 "최종".txt` arrives as `보고서 %22최종%22.txt`.
Django keeps the name as sent; these handlers give the document its name back (a line break becomes a space). A name
that really holds "%22" cannot be told apart from an encoded quote; it is read as the quote, as a browser meant it.
"""

from __future__ import annotations

from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler

_BROWSER_ESCAPES = {"%22": '"', "%0D": " ", "%0A": " ", "%0d": " ", "%0a": " "}


def browser_file_name(name: str | None) -> str | None:
    if not name or "%" not in name:
        return name
    for escaped, character in _BROWSER_ESCAPES.items():
        name = name.replace(escaped, character)
    return name


class MemoryUploadHandler(MemoryFileUploadHandler):
    def new_file(self, field_name, file_name, *args, **kwargs):
        return super().new_file(field_name, browser_file_name(file_name), *args, **kwargs)


class TemporaryUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, field_name, file_name, *args, **kwargs):
        return super().new_file(field_name, browser_file_name(file_name), *args, **kwargs)
