"""The case page opens with the probable root cause over the case's evidence (no browser)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backline.cases.evidence import JobRunner
from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.web.app import create_app

from .pages_helpers import add_users, login

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "case-001" / "bundle.zip"
FULL = {"symptoms": "Orders fail to reserve stock", "business_impact": "Orders lost for 300 users",
        "environment": "4.2.1 on RHEL 9", "steps_to_reproduce": "Place an order", "already_tried": "Restart",
        "expected": "Reserved", "actual": "HTTP 500", "evidence": ["bundle.zip"]}


@pytest.fixture
def site(hub):
    users = add_users(hub, ("erin", "engineer", None), ("carl", "customer", "acme"))
    case = hub.cases.create(users["erin"], NewCase("Orders fail", "orders", "4.2.1", "acme", CaseSeverity.S2, FULL))
    with open(EXAMPLE, "rb") as f:
        hub.evidence.upload(users["carl"], case.key, "bundle.zip", f)
    JobRunner(hub.cases, hub.store).run_pending()
    with TestClient(create_app(hub)) as client:
        yield client, case


def test_the_case_page_shows_the_probable_root_cause_and_its_chain(site):
    client, case = site
    login(client, "erin")
    page = client.get(f"/cases/{case.key}").text
    section = page[page.index('id="diagnosis"'):page.index('id="known-issues"')]
    text = html.unescape(re.sub(r"<[^>]+>", " ", section))
    assert "Nothing listening on 127.0.0.1:15432" in text and "Probable root cause · confidence 0." in text
    assert "connection-refused errors naming 127.0.0.1:15432" in text and "Confirm:" in text
    # the cause and each link point at findings on the same page, and at drill-down views that open
    anchors = set(re.findall(r'href="#(finding-\d+)"', section))
    assert anchors and all(f'id="{a}"' in page for a in anchors)
    refs = [html.unescape(u) for u in re.findall(r'href="(/cases/[^"]+/ref\?[^"]+)"', section)]
    assert refs
    for url in refs[:5]:
        assert client.get(url).status_code == 200, url
    # the links one relation makes in a row carry its rationale once (the example: three of them)
    chain = section[section.index('class="chain"'):section.index("</ol>")]
    why = "A program that cannot connect to a dependency fails the work that needs it"
    assert chain.count("→") >= 4 and chain.count(why) == 1


def test_customers_do_not_see_it(site):
    client, case = site
    login(client, "carl")
    page = client.get(f"/cases/{case.key}").text
    assert 'id="diagnosis"' not in page and "Nothing listening" not in page


def test_a_weak_lone_cause_is_not_presented_as_the_answer(hub):
    """Below 0.5 the page says there is no confident root cause, and the bug draft says so too."""
    users = add_users(hub, ("erin", "engineer", None))
    case = hub.cases.create(users["erin"], NewCase("App warns", "orders", "4.2.1", "acme", CaseSeverity.S3, FULL))
    log = (b"2026-11-23 10:00:00 INFO start\n"
           b"2026-11-23 10:00:01 ERROR could not open /etc/app/extra.conf: No such file or directory\n"
           b"2026-11-23 10:00:02 INFO ready\n")
    import io
    hub.evidence.upload(users["erin"], case.key, "app.log", io.BytesIO(log))
    JobRunner(hub.cases, hub.store).run_pending()
    from backline.cases.bugs import proposed_root_cause
    from backline.cases.diagnosis import DiagnosisService
    top = DiagnosisService(hub.cases).current(users["erin"], case.key)["probable_causes"][0]
    assert top["confidence"] < 0.5
    with TestClient(create_app(hub)) as client:
        login(client, "erin")
        page = client.get(f"/cases/{case.key}").text
    section = page[page.index('id="diagnosis"'):page.index('id="known-issues"')]
    text = html.unescape(re.sub(r"<[^>]+>", " ", section))
    assert "No confident root cause" in text and "Possible root cause · confidence 0." in text
    assert proposed_root_cause(hub.cases, users["erin"], case.key).startswith("No confident root cause")
