"""The Django admin under the app's rule: a user who is not a superuser sees, in every model admin, only the rows of
the projects they administer (being staff with a model's view permission is not enough), and the project filters list
only those projects."""

from __future__ import annotations

from django.contrib import admin

from workbench.projects.access import projects_administered_by


class ProjectScopedAdmin(admin.ModelAdmin):
    # The lookup from the model to its project ("" for Project itself).
    project_lookup = "project"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        projects = projects_administered_by(request.user)
        return queryset.filter(**{f"{self.project_lookup}__in" if self.project_lookup else "pk__in": projects})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A row may be put only in a project the user administers (a posted id of another project is refused).
        if db_field.name == "project" and not request.user.is_superuser:
            kwargs["queryset"] = projects_administered_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # A project filter lists only the projects of the rows shown, not every project's name.
        return [
            (name, admin.RelatedOnlyFieldListFilter) if isinstance(name, str) and name.split("__")[-1] == "project" else name
            for name in super().get_list_filter(request)
        ]
