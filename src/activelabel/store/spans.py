"""What a span project (task ``spans``) stores: items whose text can be tokenized, and
labels that are spans of it. The rules live in :mod:`activelabel.spans`; this module applies
them to a project's label set and settings and turns their errors into ``InvalidInput``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spans import SpanError, check_spans, item_tokens
from .errors import InvalidInput
from .models import Project
from .settings import settings_of

__all__ = ["InvalidSpans", "check_item_spans", "check_span_item"]


class InvalidSpans(InvalidInput):
    """Spans that do not fit their item (outside the text, across token boundaries,
    overlapping, of an unknown type): a well-formed request whose content is refused (422)."""


def check_span_item(data: Mapping[str, Any]) -> None:
    """Raise ValueError unless the payload has a text (``text``) whose ``tokens``, when given,
    are found in it in order: what every span of the item is later checked against."""
    try:
        item_tokens(data)
    except SpanError as exc:
        raise ValueError(str(exc)) from None


def check_item_spans(project: Project, data: Mapping[str, Any], labels: Any) -> list[Any]:
    """The spans of an annotation (or a gold answer) of ``data``, checked and sorted: inside
    the text, on token boundaries, of a known entity type, overlapping only when the project's
    ``span_overlap`` allows it. An empty list means "no entity"."""
    try:
        text, offsets = item_tokens(data)
        return check_spans(labels, text, offsets, [str(x) for x in project.labels],
                           allow_overlap=settings_of(project.settings).span_overlap)
    except SpanError as exc:
        raise InvalidSpans(str(exc)) from None
