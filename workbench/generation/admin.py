from django.contrib import admin

from workbench.generation.models import Generation, GenerationRun, QAPair


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "samples_done", "samples_expected", "created_at"]
    list_filter = ["status", "project"]
    readonly_fields = [f.name for f in GenerationRun._meta.fields]


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "chunk", "sample_index", "finish_reason", "completion_tokens"]
    list_filter = ["finish_reason"]
    readonly_fields = [f.name for f in Generation._meta.fields]


@admin.register(QAPair)
class QAPairAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "flags", "version"]
    list_filter = ["status", "project"]
    readonly_fields = ["version", "original_question", "original_answer", "generation", "chunk", "flags"]
