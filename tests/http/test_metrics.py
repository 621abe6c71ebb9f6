"""/metrics: Prometheus's text format for admins, request latency by route template, the
projects' gauges read from the database."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import Api, assert_error


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {f.name: [(s.labels, s.value) for s in f.samples]
            for f in text_string_to_metric_families(text)}


def test_metrics_report_latency_by_route_and_what_each_project_does(api: Api) -> None:
    admin = api.person("root", admin=True)
    pid = api.project(admin, n_items=5)
    annotator = api.member(pid, "annotator")
    tasks = api.get(f"/projects/{pid}/tasks/next?n=2", annotator).json()
    api.post(f"/projects/{pid}/annotations", annotator,
             json={"item_id": tasks[0]["item"]["id"], "labels": ["pos"]})
    answer = api.client.get("/metrics", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    found = _families(answer.text)
    routes = {labels["route"] for labels, _ in
              found["activelabel_http_request_duration_seconds"] if "route" in labels}
    assert "/api/v1/projects/{project_id}/tasks/next" in routes  # templates, never ids
    assert not any(str(pid) in r.split("/") for r in routes)
    mine = {name: value for name, samples in found.items() for labels, value in samples
            if labels.get("project_id") == str(pid)}
    assert mine["activelabel_leases_active"] == 1  # one labeled, one still held
    assert mine["activelabel_pool_unlabeled_items"] == 4
    assert mine["activelabel_labels_per_minute"] == 0.1  # one label in ten minutes


def test_metrics_are_for_admins(api: Api) -> None:
    assert_error(api.client.get("/metrics"), 401, "unauthorized")
    assert_error(api.client.get("/metrics", headers=api.person("plain").headers), 403,
                 "forbidden")


def test_metrics_report_rounds_their_duration_the_model_accuracy_and_failed_jobs(
        api: Api) -> None:
    from activelabel.store import claim_job_by_id, enqueue_job, fail_job
    from tests.support.projects import label_rows, new_project, request_and_run_round, text_rows

    rows = text_rows(40)
    for row in rows[30:]:
        row["split"] = "holdout"
    seeded = new_project(api.storage, labels=["a", "b"], rows=rows)
    labeled = list(range(10)) + list(range(30, 40))
    label_rows(api.storage, seeded, labeled, ["a", "b"] * 10)
    request_and_run_round(api.storage, seeded.project_id)
    with api.storage.sessions() as session, session.begin():
        job_id = enqueue_job(session, "round", {}, project_id=seeded.project_id).id
    with api.storage.sessions() as session, session.begin():
        assert claim_job_by_id(session, job_id, "metrics-test")
        fail_job(session, job_id, "metrics-test", "planted failure")
    found = _families(api.client.get("/metrics", headers=api.person("root", admin=True).headers
                                     ).text)
    pid = str(seeded.project_id)

    def mine(name: str) -> dict[str, float]:
        return {labels.get("status", ""): value for labels, value in found[name]
                if labels.get("project_id") == pid}

    assert mine("activelabel_rounds")["done"] == 1
    assert 0 < mine("activelabel_last_round_seconds")[""] < 600
    assert 0 <= mine("activelabel_model_holdout_accuracy")[""] <= 1
    # the task's score, named: a classifier's is its accuracy
    assert {labels["measure"]: value for labels, value in found["activelabel_model_holdout_score"]
            if labels["project_id"] == pid} == {"accuracy": mine(
                "activelabel_model_holdout_accuracy")[""]}
    assert mine("activelabel_jobs_failed")[""] == 1
