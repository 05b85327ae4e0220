from django.contrib import admin

from workbench.documents.models import Chunk, SourceDocument


@admin.register(SourceDocument)
class SourceDocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "origin_filename", "created_at"]
    list_filter = ["project"]
    search_fields = ["title", "external_id", "origin_filename"]
    readonly_fields = ["content_hash", "origin_sha256", "origin_size", "created_at"]


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "index", "start", "end", "size", "is_current"]
    list_filter = ["is_current", "document__project"]
    readonly_fields = [f.name for f in Chunk._meta.fields]
