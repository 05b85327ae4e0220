"""JSON API for documents: import files into a project."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.documents.importers import FieldMap
from workbench.documents.services import documents_import
from workbench.projects.access import get_project_for_admin


class ImportRequestSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    text_field = serializers.CharField(default="text", max_length=100)
    title_field = serializers.CharField(default="title", max_length=100)
    id_field = serializers.CharField(default="id", max_length=100)


class FileReportSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["imported", "unchanged", "failed"])
    documents_created = serializers.IntegerField()
    documents_existing = serializers.IntegerField()
    chunks_created = serializers.IntegerField()
    error = serializers.CharField()
    locator = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    documents_created = serializers.IntegerField()
    files = FileReportSerializer(many=True)


class DocumentImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: ImportReportSerializer, 400: ImportReportSerializer},
        summary="Import documents (project admins). Each file is imported whole or not at all.",
    )
    def post(self, request, slug: str):
        project = get_project_for_admin(request, slug)
        data = ImportRequestSerializer(data={**request.data.dict(), "files": request.FILES.getlist("files")})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        report = documents_import(
            project=project,
            files=((f.name, f.read()) for f in values["files"]),
            fields=FieldMap(text=values["text_field"], title=values["title_field"], id=values["id_field"]),
        )
        return Response(report.as_dict(), status=200 if report.ok else 400)
