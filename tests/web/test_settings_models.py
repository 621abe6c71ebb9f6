"""The settings page with a team's own model: a model named by import path stays selected, the
served model's URL is a text field, its secret is shown masked and survives a save."""

from __future__ import annotations

from typing import Any

from tests.support.api import unique
from tests.support.web import Site, log_in, save_settings

PLUGIN = "sklearn.naive_bayes:GaussianNB"
SECRET = "Bearer served-model-secret-0042"


def test_the_settings_page_keeps_a_plugin_model_and_the_served_models_secret(
        page: Any, site: Site) -> None:
    made = site.api("POST", "/projects", json={
        "name": unique("plugged"), "labels": ["a", "b"],
        "settings": {"model": PLUGIN}})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/settings")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.eval_on_selector("#model", "e => e.value") == PLUGIN
    page.get_by_label("Overlap (annotators per item)").fill("2")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_selector("#toast:has-text('Settings saved')")
    settings = site.get(f"/projects/{pid}")["settings"]
    assert (settings["model"], settings["overlap"], settings["model_url"]) == (PLUGIN, 2, None)

    page.get_by_label("Model", exact=True).select_option("http")
    page.get_by_label("Model URL (model http)").fill("http://models.internal:9000/ab")
    page.get_by_label("Model Authorization header").fill(SECRET)
    page.get_by_role("button", name="Save settings").click()
    for _ in range(100):  # the toast may still be up from the last save: poll the project
        if site.get(f"/projects/{pid}")["settings"]["model"] == "http":
            break
        page.wait_for_timeout(50)
    settings = site.get(f"/projects/{pid}")["settings"]
    assert settings["model_url"] == "http://models.internal:9000/ab"
    assert settings["model_auth_header"] == "****0042"
    page.wait_for_function("document.getElementById('model_auth_header').value === '****0042'")
    assert SECRET not in page.content()

    page.get_by_label("Overlap (annotators per item)").fill("3")  # the masked value goes back
    save_settings(page, site, pid, "overlap", 3)
    # still the secret: the mask stored in its place would show as "****" (under 12 characters)
    assert site.get(f"/projects/{pid}")["settings"]["model_auth_header"] == "****0042"
    events = site.get(f"/projects/{pid}/audit")
    assert SECRET not in str(events)
    assert events[0]["after"]["settings"]["model_auth_header"] == "****0042"
