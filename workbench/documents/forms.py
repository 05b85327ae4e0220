from __future__ import annotations

from django import forms

from workbench.documents.importers import SUPPORTED


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(SUPPORTED)}))
        # An empty file is that file's failure in the import's report, not a reason to refuse the other files.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            # No file at all (also a part Django could not read, such as a file name that is not UTF-8): "required".
            return [single(d, initial) for d in data or [None]]
        return [single(data, initial)]


class DocumentUploadForm(forms.Form):
    files = MultipleFileField(help_text="Several files at once: " + ", ".join(SUPPORTED))
    text_field = forms.CharField(initial="text", max_length=100, help_text="JSON/CSV field that holds the text.")
    title_field = forms.CharField(initial="title", max_length=100)
    id_field = forms.CharField(initial="id", max_length=100)


# The project's chunk size columns (PositiveIntegerField): a preview tries only sizes a project could be saved with.
CHUNK_SIZE_MAX = 2**31 - 1


class ChunkPreviewForm(forms.Form):
    target = forms.IntegerField(min_value=50, max_value=CHUNK_SIZE_MAX, required=False)
    maximum = forms.IntegerField(min_value=50, max_value=CHUNK_SIZE_MAX, required=False)
    overlap = forms.IntegerField(min_value=0, max_value=CHUNK_SIZE_MAX, required=False)
