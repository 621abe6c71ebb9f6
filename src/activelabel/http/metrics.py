"""``GET /metrics`` in Prometheus's text format (admins; a scraper sends an admin's API token).

Request latency is a histogram by method, route (the path template, never the ids in it) and
status, kept by each API process; when ``serve`` runs several, ``PROMETHEUS_MULTIPROC_DIR``
(set by ``serve``) lets any of them report all. What the projects are doing (queue, leases,
labels per minute, rounds and their duration, holdout accuracy, waiting and failed jobs) is
read from the database at each scrape (:mod:`activelabel.labeling.operations`), so every
process reports the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..labeling.operations import project_gauges
from ..store import Forbidden, Storage
from .auth import Reader

__all__ = ["REQUEST_SECONDS", "observe_request", "router"]

router = APIRouter(tags=["operations"])

REQUEST_SECONDS = Histogram(
    "activelabel_http_request_duration_seconds",
    "Time from a request reaching the application to the start of its answer.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)


class _ProjectsCollector(Collector):
    """The projects' gauges, read from the database when scraped."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def collect(self) -> Iterator[Metric]:
        with self.storage.read_sessions() as session:
            found = project_gauges(session)
        labels = ["project_id", "project"]
        gauges = {
            "queued": GaugeMetricFamily("activelabel_queue_ranked_items",
                                        "Unlabeled items a round put in the queue.", labels=labels),
            "unlabeled": GaugeMetricFamily("activelabel_pool_unlabeled_items",
                                           "Pool items nobody has labeled.", labels=labels),
            "leased": GaugeMetricFamily("activelabel_leases_active",
                                        "Tasks handed out and not yet labeled.", labels=labels),
            "pace": GaugeMetricFamily("activelabel_labels_per_minute",
                                      "Labels per minute over the last ten minutes.",
                                      labels=labels),
            "seconds": GaugeMetricFamily("activelabel_last_round_seconds",
                                         "How long the last finished round took.",
                                         labels=labels),
            "accuracy": GaugeMetricFamily("activelabel_model_holdout_accuracy",
                                          "Holdout accuracy of the last finished round.",
                                          labels=labels),
            "score": GaugeMetricFamily(
                "activelabel_model_holdout_score", "Holdout score of the last finished round "
                "in the task's measure (accuracy; label_f1 multi-label; entity_f1 spans).",
                labels=[*labels, "measure"]),
            "waiting": GaugeMetricFamily("activelabel_jobs_waiting",
                                         "Jobs queued or running.", labels=labels),
            "failed": GaugeMetricFamily("activelabel_jobs_failed",
                                        "Jobs that failed.", labels=labels),
        }
        rounds = GaugeMetricFamily("activelabel_rounds", "Rounds by status.",
                                   labels=[*labels, "status"])
        drift_psi = GaugeMetricFamily(
            "activelabel_drift_psi", "Population stability index of the newest items against "
            "the training data (view: confidence or embedding).", labels=[*labels, "view"])
        drift = {
            "shifted": GaugeMetricFamily("activelabel_drift_shifted",
                                         "1 when the newest drift report found a shift.",
                                         labels=labels),
            "stale": GaugeMetricFamily("activelabel_model_stale",
                                       "1 when the active model is stale.", labels=labels),
            "behind": GaugeMetricFamily("activelabel_model_labels_behind",
                                        "Labels that arrived since the active model was "
                                        "trained.", labels=labels),
        }
        for g in found:
            key = [str(g.project_id), g.name]
            gauges["queued"].add_metric(key, g.queued)
            gauges["unlabeled"].add_metric(key, g.unlabeled)
            gauges["leased"].add_metric(key, g.leased)
            gauges["pace"].add_metric(key, g.labels_per_minute)
            gauges["waiting"].add_metric(key, g.jobs_waiting)
            gauges["failed"].add_metric(key, g.jobs_failed)
            if g.last_round_seconds is not None:
                gauges["seconds"].add_metric(key, g.last_round_seconds)
            if g.holdout_accuracy is not None:
                gauges["accuracy"].add_metric(key, g.holdout_accuracy)
            if g.holdout_score is not None:
                gauges["score"].add_metric([*key, g.holdout_measure], g.holdout_score)
            for status, n in sorted(g.rounds.items()):
                rounds.add_metric([*key, status], n)
            for view, value in sorted(g.drift_psi.items()):
                drift_psi.add_metric([*key, view], value)
            if g.drift_shifted is not None:
                drift["shifted"].add_metric(key, float(g.drift_shifted))
            if g.model_stale is not None:
                drift["stale"].add_metric(key, float(g.model_stale))
            if g.model_labels_behind is not None:
                drift["behind"].add_metric(key, g.model_labels_behind)
        yield from gauges.values()
        yield rounds
        yield drift_psi
        yield from drift.values()


def _registry(storage: Storage) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # every API process's request histogram
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(_ProjectsCollector(storage))
    return registry


@router.get("/metrics", response_class=Response, responses={200: {
    "description": "Prometheus text format.", "content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(caller: Reader) -> Response:
    """The server's metrics for Prometheus: request latency by route, and per project the
    queue, leases, labels per minute, rounds, the last round's duration and accuracy, waiting
    and failed jobs. Admins only (give the scraper an admin's API token)."""
    if not caller.is_admin:
        raise Forbidden(f"metrics are for admins; {caller.user.username} is not one: scrape "
                        "with an admin's API token")
    return Response(generate_latest(_registry(caller.storage)), media_type=CONTENT_TYPE_LATEST)
