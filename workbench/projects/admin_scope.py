"""The Django admin under the app's rule: a user who is not a superuser sees, in every model admin, only the rows of
the projects they administer (being staff with a model's view permission is not enough), and the project filters list
only those projects. Staff who administer a project see its rows without being granted the models' view permissions,
and change its settings (ProjectAdmin)."""

from __future__ import annotations

from django.contrib import admin

from workbench.projects.access import projects_administered_by


def administers_any(request) -> bool:
    user = request.user
    return user.is_active and user.is_staff and projects_administered_by(user).exists()


class ProjectScopedAdmin(admin.ModelAdmin):
    # The lookup from the model to its project ("" for Project itself).
    project_lookup = "project"

    # A staff member who administers a project sees its rows here without being granted Django's model permissions
    # (the rows are those of their projects only); changing anything still needs the permission, except where a
    # model admin says otherwise (the project's own settings).
    def has_module_permission(self, request):
        return super().has_module_permission(request) or administers_any(request)

    def has_view_permission(self, request, obj=None):
        if super().has_view_permission(request, obj):
            return True
        return administers_any(request) and (obj is None or self.get_queryset(request).filter(pk=obj.pk).exists())

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
