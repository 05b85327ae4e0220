"""JSON API of the review queue (token authentication): claim, review, stats."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from workbench.documents.models import Chunk
from workbench.generation.models import QAPair
from workbench.projects.access import get_membership
from workbench.quality.filters import FLAG_NAMES
from workbench.review.selectors import project_stats
from workbench.review.services import REASON_MAX_CHARS, ReviewConflict, ReviewInput, pair_claim, pair_review


class PairSerializer(serializers.ModelSerializer):
    chunk_text = serializers.CharField(source="chunk.text", read_only=True)

    class Meta:
        model = QAPair
        fields = ["id", "version", "question", "answer", "flags", "status", "chunk_text", "lease_expires_at"]


_when = serializers.DateTimeField()


def pair_payload(pair: QAPair) -> dict:
    """PairSerializer's output, built directly: the two hot endpoints answer without re-reading the pair (the claim and
    the review statements return the row and its chunk's text)."""
    chunk_text = getattr(pair, "chunk_text", None)
    if chunk_text is None:
        chunk_text = Chunk.objects.values_list("text", flat=True).get(pk=pair.chunk_id)
    return {
        "id": pair.pk,
        "version": pair.version,
        "question": pair.question,
        "answer": pair.answer,
        "flags": pair.flags,
        "status": pair.status,
        "chunk_text": chunk_text,
        "lease_expires_at": _when.to_representation(pair.lease_expires_at) if pair.lease_expires_at else None,
    }


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "edit", "reject"])
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)  # QAPair.version's column
    question = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    answer = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=REASON_MAX_CHARS)
    confirm = serializers.BooleanField(
        required=False, default=False, help_text="Approve a pair with a reject-level flag anyway (refused with 400 without it)."
    )


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    pair = PairSerializer()


class StatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_flag = serializers.DictField(child=serializers.IntegerField())


class BoundedJSONParser(JSONParser):
    """JSON bodies nested past the interpreter's recursion limit are bad input (400), not a server error."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class ClaimView(APIView):
    @extend_schema(
        request=None,
        responses={200: PairSerializer, 204: OpenApiResponse(description="Nothing left to claim.")},
        summary="Claim the next pair of the project's queue (leased to the caller).",
    )
    def post(self, request, slug: str):
        membership = get_membership(request, slug)
        flag = request.query_params.get("flag") or None
        if flag is not None and flag not in FLAG_NAMES:
            return Response({"flag": [f"Unknown flag; use one of {', '.join(FLAG_NAMES)}."]}, status=400)
        pair = pair_claim(project=membership.project, reviewer=request.user, flag=flag)
        if pair is None:
            return Response(status=204)
        return Response(pair_payload(pair))


class ReviewView(APIView):
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request=ReviewSerializer,
        responses={200: PairSerializer, 409: ConflictSerializer},
        summary="Approve, edit or reject a claimed pair at the version the caller saw.",
    )
    def post(self, request, pair_id: int):
        if not QAPair.objects.filter(pk=pair_id, project__memberships__user=request.user).exists():
            raise Http404
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            updated = pair_review(
                pair_id=pair_id,
                reviewer=request.user,
                data=ReviewInput(
                    decision=values["decision"],
                    version=values["version"],
                    question=values.get("question"),
                    answer=values.get("answer"),
                    reason=values.get("reason", ""),
                    confirm=values["confirm"],
                ),
            )
        except ReviewConflict as exc:
            current = QAPair.objects.select_related("chunk").get(pk=pair_id)
            return Response({"detail": str(exc), "pair": PairSerializer(current).data}, status=409)
        except DjangoValidationError as exc:
            return Response(exc.message_dict, status=400)
        return Response(pair_payload(updated))


class StatsView(APIView):
    @extend_schema(responses={200: StatsSerializer}, summary="Counts of the project's pairs by status and by flag.")
    def get(self, request, slug: str):
        return Response(project_stats(project=get_membership(request, slug).project))
