"""JSON API for documents: import files into a project (large uploads in the background), and follow such an import."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.documents.importers import FieldMap
from workbench.documents.models import ImportJob
from workbench.documents.services import documents_import, import_job_create
from workbench.documents.views import import_job_payload
from workbench.jobs import JobStatus
from workbench.projects.access import get_project_for_admin


class ImportRequestSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),  # an empty file fails alone, in the report
        allow_empty=False,
        error_messages={
            "empty": (
                "No file was sent: upload one or more files as multipart form data in the 'files' field, "
                "their names in UTF-8 (a part whose header is not UTF-8 is not read)."
            )
        },
    )
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


class ImportJobSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.ChoiceField(choices=JobStatus.values)
    files_done = serializers.IntegerField()
    files_total = serializers.IntegerField()
    report = ImportReportSerializer(allow_null=True)
    error = serializers.CharField()
    status_url = serializers.CharField()


def _job_payload(job: ImportJob, project) -> dict:
    return import_job_payload(job, project, status_view="api-import")


class DocumentImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: ImportReportSerializer, 400: ImportReportSerializer, 202: ImportJobSerializer},
        summary="Import documents (project admins). Each file is imported whole or not at all. An upload over "
        "DOCUMENTS_INLINE_MAX_BYTES is imported in the background: 202 and the job to follow at status_url.",
    )
    def post(self, request, slug: str):
        project = get_project_for_admin(request, slug)
        # A request with no body has a plain dict for its data, a form a QueryDict: the last value of each field either way.
        fields = {key: request.data[key] for key in request.data if key != "files"}
        data = ImportRequestSerializer(data={**fields, "files": request.FILES.getlist("files")})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        fields = FieldMap(text=values["text_field"], title=values["title_field"], id=values["id_field"])
        if sum(f.size for f in values["files"]) > settings.DOCUMENTS_INLINE_MAX_BYTES:
            job = import_job_create(project=project, uploads=values["files"], fields=fields, created_by=request.user)
            return Response(_job_payload(job, project), status=202)
        report = documents_import(project=project, files=((f.name, f.read()) for f in values["files"]), fields=fields)
        return Response(report.as_dict(), status=200 if report.ok else 400)


class ImportJobView(APIView):
    @extend_schema(responses={200: ImportJobSerializer}, summary="Progress and report of a background import.")
    def get(self, request, slug: str, job_id: int):
        project = get_project_for_admin(request, slug)
        job = ImportJob.objects.filter(project=project, pk=job_id).first()
        if job is None:
            raise NotFound("No such import job.")
        return Response(_job_payload(job, project))
