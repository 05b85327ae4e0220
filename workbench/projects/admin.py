"""Django admin for project setup: presets, members with roles, thresholds."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.text import normalize_newlines

from workbench.projects.access import projects_administered_by
from workbench.projects.admin_scope import ProjectScopedAdmin, administers_any
from workbench.projects.models import Membership, Project, Role
from workbench.projects.presets import preset_defaults
from workbench.projects.services import ProjectAlreadyExists, project_create, project_lock, slug_for

SETTINGS_FIELDS = (
    "base_model",
    "base_model_revision",
    "adapter",
    "adapter_revision",
    "prompt_template",
    "temperature",
    "top_p",
    "top_k",
    "max_new_tokens",
    "samples_per_chunk",
    "chunk_unit",
    "chunk_target_size",
    "chunk_max_size",
    "chunk_overlap",
    "tokenizer",
    "filter_thresholds",
    "embedding_model",
    "queue_order",
    "lease_seconds",
)


class ProjectAdminForm(forms.ModelForm):
    apply_preset = forms.BooleanField(
        required=False,
        label="Apply the preset's defaults",
        help_text="Overwrite the adapter, prompt template and sampling fields with the chosen preset's values.",
    )

    class Meta:
        model = Project
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["apply_preset"].initial = True
            # Made on the server from the name when left empty: the admin's own slug script drops Hangul.
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Leave empty to make one from the name (Korean is romanised: 법률 QA → beoblyul-qa)."

    def clean_slug(self):
        slug = self.cleaned_data.get("slug")
        if not slug and self.instance.pk is None:
            slug = slug_for(self.data.get("name", ""))
        return slug

    def clean_prompt_template(self):
        # Textareas come back with "\r\n"; validate and store the template with the "\n" the model card uses.
        return normalize_newlines(self.cleaned_data["prompt_template"])

    def clean_filter_thresholds(self):
        # An emptied box means no overrides (the field is not nullable).
        value = self.cleaned_data.get("filter_thresholds")
        return {} if value in (None, "") else value

    def clean_description(self):
        return normalize_newlines(self.cleaned_data["description"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("apply_preset") and cleaned.get("adapter_preset"):
            for field, value in preset_defaults(cleaned["adapter_preset"]).items():
                cleaned[field] = value
                self.errors.pop(field, None)
        return cleaned


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if self.instance.pk is None or any(self.errors):
            return  # a new project: the one who adds it administers it unless the rows name an admin
        # The project's row lock until the admin's transaction commits: another admin's change of the members (here or
        # on the Members page) lands before this check or after this save, never between. The roles after the save:
        # the members as stored now, as the rows change or remove them (a row left as it was shown is not saved, so
        # the stored role stands even where another admin changed it since the page was loaded), and the new rows.
        project_lock(self.instance.pk)
        roles = dict(self.instance.memberships.values_list("pk", "role"))
        added = []
        for row in self.forms:
            if not row.cleaned_data:
                continue
            stored = row.instance.pk
            if row.cleaned_data.get("DELETE"):
                roles.pop(stored, None)
            elif stored is not None:
                if row.has_changed():
                    roles[stored] = row.cleaned_data.get("role")
            else:
                added.append(row.cleaned_data.get("role"))
        if Role.ADMIN not in [*roles.values(), *added]:
            raise forms.ValidationError("A project needs at least one admin: make someone else admin first.")


def _may_search_users(request) -> bool:
    return request.user.has_perm("auth.view_user")  # superusers too


def _administers(request, project) -> bool:
    return project is not None and projects_administered_by(request.user).filter(pk=project.pk).exists()


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 1
    autocomplete_fields = ["user"]

    # A project's admins manage its members here as on its Members page, without Django's model permissions.
    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or _administers(request, obj)

    def has_add_permission(self, request, obj=None):
        # Adding needs the user search, which Django allows only with the users' view permission: without it, a
        # project admin adds members on the project's Members page.
        return super().has_add_permission(request, obj) or _administers(request, obj) and _may_search_users(request)

    def get_readonly_fields(self, request, obj=None):
        if _may_search_users(request) or super().has_change_permission(request, obj):
            return super().get_readonly_fields(request, obj)
        return ["user"]  # a project admin by membership alone changes roles and removes members here

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or _administers(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) or _administers(request, obj)

    def get_queryset(self, request):
        # Django empties an inline's rows when its permission check *without* a project fails, which it does for a
        # project's admin by membership; the inline is shown only after the checks with the project above, and its
        # formset holds that project's rows only.
        return admin.options.BaseModelAdmin.get_queryset(self, request)


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    project_lookup = ""
    form = ProjectAdminForm
    inlines = [MembershipInline]
    list_display = ["name", "slug", "adapter_preset", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at", "created_by"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "created_at", "created_by"]}),
        (
            "Generation",
            {
                "fields": [
                    "adapter_preset",
                    "apply_preset",
                    "base_model",
                    "base_model_revision",
                    "adapter",
                    "adapter_revision",
                    "prompt_template",
                    "temperature",
                    "top_k",
                    "top_p",
                    "max_new_tokens",
                    "samples_per_chunk",
                ]
            },
        ),
        ("Chunking", {"fields": ["chunk_unit", "chunk_target_size", "chunk_max_size", "chunk_overlap", "tokenizer"]}),
        ("Quality filters and review", {"fields": ["filter_thresholds", "embedding_model", "queue_order", "lease_seconds"]}),
    ]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # New projects go through the same service as `manage.py create_project`; the inline members follow.
        try:
            created = project_create(
                slug=obj.slug,
                name=obj.name,
                description=obj.description,
                adapter_preset=obj.adapter_preset,
                created_by=request.user,
                **{field: getattr(obj, field) for field in SETTINGS_FIELDS},
            )
        except ProjectAlreadyExists as exc:  # a race with another admin; the form already checked uniqueness
            messages.error(request, str(exc))
            raise
        obj.pk, obj.created_at, obj.created_by = created.pk, created.created_at, created.created_by
        obj._state.adding = False

    # Which model and files the workers load, and which tokenizer the web host reads, stay with those granted the
    # permission to change projects (operators): a project admin by membership alone changes the rest.
    MODEL_SOURCES = [
        "adapter_preset",
        "base_model",
        "base_model_revision",
        "adapter",
        "adapter_revision",
        "tokenizer",
        "embedding_model",
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not super().has_change_permission(request, obj):
            fields += self.MODEL_SOURCES
        return fields

    def has_change_permission(self, request, obj=None):
        # A project's admins change its settings (the app has no settings page of its own).
        if super().has_change_permission(request, obj):
            return True
        return _administers(request, obj) if obj is not None else administers_any(request)

    # Deleting a project goes through the service (what was made from its documents first; refused during a live run).
    def get_deleted_objects(self, objs, request):
        from workbench.documents.models import ImportJob, SourceDocument  # apps above this one
        from workbench.documents.services import deletion_counts, deletion_summary, live_run_message, too_large_message
        from workbench.exports.models import Export
        from workbench.generation.models import GenerationRun

        deleted, counts = deletion_summary(documents=SourceDocument.objects.filter(project__in=[o.pk for o in objs]))
        ids = [o.pk for o in objs]
        more = {
            "generation runs": GenerationRun.objects.filter(project__in=ids).count(),
            "exports (their files too)": Export.objects.filter(project__in=ids).count(),
            "background imports (their stored uploads too)": ImportJob.objects.filter(project__in=ids).count(),
            "memberships": Membership.objects.filter(project__in=ids).count(),
        }
        deleted = [f"{len(objs)} project{'s' if len(objs) != 1 else ''}: {', '.join(o.name for o in objs)}", *deleted]
        deleted += [f"{n:,} {name}" for name, n in more.items() if n]
        refused = [live_run_message(project=o) for o in objs]
        refused += [
            too_large_message(project=o, counts=deletion_counts(documents=o.documents.all()), documents=False) for o in objs
        ]
        return deleted, counts, set(), [m for m in refused if m]

    def delete_model(self, request, obj):
        from workbench.documents.services import DeletionRefused, project_delete

        try:
            project_delete(project=obj)
        except DeletionRefused as exc:  # a run started since the confirmation page
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for project in queryset:
            self.delete_model(request, project)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        # A member removed here gives back the pairs they hold, as on the Members page.
        removed = [m.user_id for m in formset.deleted_objects if isinstance(m, Membership)]
        if removed:
            from workbench.generation.models import PairStatus, QAPair  # an app above this one

            QAPair.objects.filter(project=form.instance, claimed_by__in=removed, status=PairStatus.PENDING).update(
                claimed_by=None, lease_expires_at=None
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        project = form.instance
        if change or request.user.is_superuser and project.memberships.filter(role=Role.ADMIN).exists():
            return
        # The one who adds a project administers it when no admin is named (a project always has one), and staff who
        # are not superusers always do: the admin shows them only the projects they administer. The inline rows are
        # saved first, so naming oneself a reviewer there is overruled, with a message.
        membership, _ = Membership.objects.get_or_create(project=project, user=request.user, defaults={"role": Role.ADMIN})
        if membership.role != Role.ADMIN:
            membership.role = Role.ADMIN
            membership.save(update_fields=["role"])
            messages.warning(request, "You administer the projects you add: your membership is admin, not reviewer.")


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    """Members are added here; roles are changed and members removed in the project's own form or on its Members page,
    which keep an admin in every project and give back a removed member's pairs."""

    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    autocomplete_fields = ["user", "project"]

    def get_readonly_fields(self, request, obj=None):
        return ["project", "user", "role", "created_at"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False
