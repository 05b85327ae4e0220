from __future__ import annotations

from django import forms

from workbench.generation.models import PairStatus
from workbench.quality.filters import FLAG_NAMES
from workbench.review.services import PRESET_REASONS, REASON_MAX_CHARS

# Ids in query strings and forms are refused above the id column's range (bigint): SQLite cannot even bind a larger
# integer (OverflowError, a 500) where PostgreSQL would quietly find nothing.
ID_MAX = 2**63 - 1


def add_errors(form: forms.Form, exc) -> None:
    """A service's ValidationError shown on the form: on its field where the form has one, else above it."""
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[(d, d) for d in ("approve", "edit", "reject", "skip")])
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1)  # QAPair.version's column
    question = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 3}))
    answer = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8}))
    reason_preset = forms.ChoiceField(required=False, choices=[("", "— reason —")] + [(r, r) for r in PRESET_REASONS])
    reason = forms.CharField(required=False, max_length=REASON_MAX_CHARS)
    confirm = forms.BooleanField(required=False)

    def full_reason(self) -> str:
        parts = [self.cleaned_data.get("reason_preset") or "", (self.cleaned_data.get("reason") or "").strip()]
        return ": ".join(p for p in parts if p)


def query_id(value: str | None) -> int | None:
    """An id from a query string or a plain form field, or None when it is not one (not a number, out of range)."""
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if 1 <= number <= ID_MAX else None


class PairFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any status")] + list(PairStatus.choices))
    flag = forms.ChoiceField(required=False, choices=[("", "any flag")] + [(f, f) for f in FLAG_NAMES])
    min_score = forms.FloatField(required=False, min_value=0, max_value=1)
    max_score = forms.FloatField(required=False, min_value=0, max_value=1)
    document = forms.CharField(required=False, max_length=200, label="Document title")
    reviewer = forms.CharField(required=False, max_length=150, label="Reviewer")
    run = forms.IntegerField(required=False, min_value=1, max_value=ID_MAX)
    q = forms.CharField(required=False, max_length=200, label="Search")

    def clean(self):
        data = super().clean()
        low, high = data.get("min_score"), data.get("max_score")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError(f"The lowest score ({low:g}) is above the highest ({high:g}).")
        return data


class BulkRejectForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_CHARS)


class BulkConfirmForm(forms.Form):
    """The set the admin saw on the confirmation page, sent back with the confirmation."""

    count = forms.IntegerField(min_value=0, max_value=ID_MAX)
    digest = forms.CharField(min_length=64, max_length=64)


class AuditStartForm(forms.Form):
    sample_size = forms.IntegerField(min_value=1, max_value=5000, initial=100, label="Pairs to sample")
    reviewer = forms.ModelChoiceField(queryset=None, required=False, empty_label="every reviewer", label="Approved by")

    def __init__(self, *args, project=None, **kwargs):
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        self.fields["reviewer"].queryset = get_user_model().objects.filter(memberships__project=project).order_by("username")


class AuditVerdictForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("agree", "agree"), ("disagree", "disagree")])
    note = forms.CharField(required=False, max_length=REASON_MAX_CHARS)
    reject_pair = forms.BooleanField(required=False)
