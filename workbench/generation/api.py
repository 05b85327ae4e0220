"""JSON API for generation runs."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.generation.models import GenerationRun, RunStatus
from workbench.generation.selectors import run_progress
from workbench.generation.services import generation_run_cancel, generation_run_start
from workbench.projects.access import get_membership, get_project_for_admin


class BatchNoteSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()


class WorkerThroughputSerializer(serializers.Serializer):
    worker = serializers.CharField()
    gpu = serializers.CharField()
    pairs = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    seconds = serializers.FloatField()
    tokens_per_second = serializers.IntegerField(allow_null=True)
    pairs_per_hour = serializers.IntegerField(allow_null=True)


# Every field `run_progress` answers with (tests/generation/test_api_schema.py keeps the two the same).
RunSerializer = inline_serializer(
    "RunProgress",
    {
        "id": serializers.IntegerField(),
        "status": serializers.ChoiceField(choices=RunStatus.choices),
        "samples_done": serializers.IntegerField(),
        "samples_expected": serializers.IntegerField(),
        "percent": serializers.FloatField(),
        "batches_total": serializers.IntegerField(),
        "batches_done": serializers.IntegerField(),
        "batches_failed": serializers.IntegerField(),
        "pairs_per_minute": serializers.FloatField(allow_null=True),
        "eta_seconds": serializers.IntegerField(allow_null=True),
        "error": serializers.CharField(),
        "preflight_status": serializers.CharField(help_text="pending, passed, failed, inconclusive, or empty"),
        "notice": serializers.CharField(help_text="Why a queued run waits (no GPU worker answered its model check)."),
        "failed_batches": BatchNoteSerializer(many=True),
        "workers": WorkerThroughputSerializer(many=True, help_text="Per worker and GPU: tokens/s and pairs/hour."),
        "retrying_batches": BatchNoteSerializer(many=True),
        "created_at": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "finished_at": serializers.DateTimeField(allow_null=True),
    },
)


def _run_for_member(request, run_id: int, *, admin: bool = False) -> GenerationRun:
    """The run, for a member of its project. A run that does not exist and one of a project the caller is not in get
    the same 404, so run ids tell an outsider nothing."""
    run = GenerationRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None:
        raise NotFound()
    (get_project_for_admin if admin else get_membership)(request, run.project.slug)
    return run


class RunCreateView(APIView):
    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Optional, 1 to 200 printable ASCII characters (spaces included): the same key again (a retried request) "
                "gets the run the first request started, with status 200, instead of a second run.",
            )
        ],
        responses={200: RunSerializer, 201: RunSerializer, 503: RunSerializer},
        summary="Start a generation run (project admins). 503 when the task broker did not take its batches: the run "
        "exists, failed to dispatch, and is sent again by the dispatch sweep once the broker answers.",
    )
    def post(self, request, slug: str):
        project = get_project_for_admin(request, slug)
        # Spaces around a header value are not part of it (HTTP's optional whitespace; gunicorn drops them too).
        key = request.headers.get("Idempotency-Key", "").strip(" \t")
        try:
            run, created = generation_run_start(project=project, created_by=request.user, request_key=key)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"detail": exc.messages}) from None
        if run.status == RunStatus.DISPATCH_FAILED:
            return Response(run_progress(run=run), status=503)
        return Response(run_progress(run=run), status=201 if created else 200)


class RunDetailView(APIView):
    @extend_schema(responses={200: RunSerializer}, summary="A run's progress.")
    def get(self, request, run_id: int):
        return Response(run_progress(run=_run_for_member(request, run_id)))


class RunCancelView(APIView):
    @extend_schema(request=None, responses={200: RunSerializer}, summary="Cancel a run (project admins).")
    def post(self, request, run_id: int):
        run = _run_for_member(request, run_id, admin=True)
        try:
            run = generation_run_cancel(run=run)
        except DjangoValidationError as exc:
            return Response({"detail": exc.messages}, status=409)
        return Response(run_progress(run=run))
