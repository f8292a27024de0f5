"""The known-issue pages and the case page's "Known issues" section in a real browser:
accessibility (axe-core), the form with the keyboard, evidence from a customer shown as text (SQLite)."""

from __future__ import annotations

import io

import pytest

from backline.cases.evidence import JobRunner
from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase

from .browser import axe_violations, dump, log_in, shot
from .pages_helpers import add_users
from .test_ref_browser import engine  # noqa: F401 - the browser tests run on SQLite only

FULL = {"symptoms": "Partner sync fails", "business_impact": "No exports for 2 days",
        "environment": "4.2.1 on RHEL 9", "steps_to_reproduce": "Run the sync", "already_tried": "Restart",
        "expected": "Export", "actual": "TLS error", "evidence": ["sync.log"]}


@pytest.mark.slow
def test_known_issue_pages_in_the_browser(browser, axe, site, web_hub, corpus):
    users = add_users(web_hub, ("erin", "engineer", None))
    case = web_hub.cases.create(users["erin"], NewCase("Sync fails", "sync", "4.2.1", "acme", CaseSeverity.S2, FULL))
    web_hub.evidence.upload(users["erin"], case.key, "partner.pcap",
                            io.BytesIO((corpus / "net/zeek_tls13draft16_ff52_unknown_ca.pcap").read_bytes()))
    JobRunner(web_hub.cases, web_hub.store, knowledge=web_hub.knowledge).run_pending()
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, site, "erin")

    # the form, by keyboard: title, then the matchers (YAML) with a hostile title
    page.goto(f"{site}/kb/new")
    page.focus("#kb-title")
    page.keyboard.type('<img src=x onerror="window.__pwned=1"> Partner CA rotated')
    page.fill("#kb-workaround", "Add the 2026 CA to the sync job's trust store.")
    page.fill("#kb-matchers", "- finding: NET.TLS.ALERT\n  where: {description: unknown_ca}\n")
    found = axe_violations(page, axe)
    assert found == [], f"accessibility problems on the form:\n{dump(found)}"
    shot(page, "20-kb-form")
    page.focus("#kb-tags")
    page.keyboard.press("Enter")                              # submits the form
    page.wait_for_url("**/kb/KB-1001")
    assert page.evaluate("() => window.__pwned") is None
    assert "<img src=x" in page.locator("h1").inner_text()    # shown as text
    page.locator("button", has_text="Publish").click()
    page.wait_for_url("**/kb/KB-1001")
    assert "published" in page.locator(".case-head").inner_text()
    for path, name in (("/kb/KB-1001", "21-kb-show"), ("/kb?pack=true", "22-kb-list")):
        page.goto(site + path)
        found = axe_violations(page, axe)
        assert found == [], f"accessibility problems on {path}:\n{dump(found)}"
        shot(page, name)

    # the case page: the pack's KB-3 is there now; KB-1001 comes with the next analysis of the case
    page.goto(f"{site}/cases/{case.key}")
    section = page.locator("#known-issues")
    assert "KB-3" in section.inner_text() and "Workaround:" in section.inner_text()
    found = axe_violations(page, axe)
    assert found == [], f"accessibility problems on the case page:\n{dump(found)}"
    shot(page, "23-case-known-issues")
    section.locator("a", has_text="packet:8").first.click()   # the evidence of the match opens
    page.wait_for_url("**/ref?**l=packet%3A8")
    assert "partner.pcap" in page.locator("main").inner_text()
    assert errors == []
