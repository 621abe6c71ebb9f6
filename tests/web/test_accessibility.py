"""Every page at 1280x800 and on a 390 px wide screen: labelled controls, visible focus, no
sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.web import PROJECT, Site, log_in

PAGES = {"projects": "/", "label": f"/projects/{PROJECT}/label",
         "review": f"/projects/{PROJECT}/review",
         "dashboard": f"/projects/{PROJECT}/dashboard",
         "settings": f"/projects/{PROJECT}/settings", "new": "/projects/new"}

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.offsetParent !== null && e.type !== 'hidden')
  .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length)
                 || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", list(PAGES))
def test_pages_are_labelled_focusable_and_fit(page: Any, site: Site, name: str,
                                              width: int) -> None:
    log_in(page, site, site.admin)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(site.url + PAGES[name])
    page.wait_for_load_state("networkidle")
    assert page.evaluate(UNLABELLED) == []
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width + 1, f"{name} scrolls sideways at {width} px ({overflow} px wide)"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), f"no visible focus on {name}"
