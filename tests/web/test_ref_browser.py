"""The pages behind evidence references in a real browser: accessibility (axe-core), keyboard use,
escaping (SQLite)."""

from __future__ import annotations

import io

import pytest

from backline.cases.evidence import JobRunner
from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase
from backline.testing import EXAMPLE_INTAKE, corpus_dir

from .browser import ROOT, axe_violations, dump, log_in, shot
from .pages_helpers import add_users

BUNDLE = ROOT / "examples" / "case-001" / "bundle.zip"
FULL = EXAMPLE_INTAKE


@pytest.fixture(params=["sqlite"])
def engine(request, tmp_path, sqlite_template):        # the browser part runs on SQLite only
    import shutil

    from backline.storage.db import make_engine
    path = tmp_path / "backline.db"
    shutil.copy(sqlite_template, path)
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()


@pytest.mark.slow
def test_reference_pages_in_the_browser(browser, axe, site, web_hub):
    users = add_users(web_hub, ("erin", "engineer", None))
    case = web_hub.cases.create(users["erin"], NewCase("Orders fail", "orders", "4.2.1", "acme",
                                                       CaseSeverity.S2, FULL))
    with open(BUNDLE, "rb") as f:
        item = web_hub.evidence.upload(users["erin"], case.key, "bundle.zip", f)
    with open(corpus_dir() / "logs/evtx/system.evtx", "rb") as f:
        evtx = web_hub.evidence.upload(users["erin"], case.key, "system.evtx", f)
    hostile = web_hub.evidence.upload(users["erin"], case.key, "x.log", io.BytesIO(
        b'2026-11-23 10:00:01 ERROR <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>\n'))
    JobRunner(web_hub.cases, web_hub.store).run_pending()
    ctx = browser.new_context()
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, site, "erin")
    base = f"{site}/cases/{case.key}/ref?e={item.id}&a="
    pages = {"packet": ("bundle.zip%21%2Fcapture%2Forders-lo.pcap", "packet%3A73"),
             "frame": ("bundle.zip%21%2Fcrash.tar.gz%21%2Fcrash%2Fcore.stockcalc", "thread%3A0%2Fframe%3A0"),
             "lines": ("bundle.zip%21%2Fcrash.tar.gz%21%2Fcrash%2Forders-crash.txt", "line%3A1"),
             "log": ("bundle.zip%21%2Flogs%2Forders-service.log", "line%3A9")}
    record = next(r for f in web_hub.evidence.findings(users["erin"], case.key) if f["evidence_id"] == evtx.id
                  for r in f["refs"] if r["locator"].startswith("record:"))
    extra = {"record": f"{site}/cases/{case.key}/ref?e={evtx.id}&a=system.evtx&l={record['locator']}",
             "raw": f"{base}{pages['frame'][0]}&l=offset%3A0x1f0"}
    for kind, url in [*((k, f"{base}{a}&l={loc}") for k, (a, loc) in pages.items()), *extra.items()]:
        page.goto(url)
        if kind in pages:
            assert page.locator("tr#target").is_visible(), kind
        else:
            assert page.locator("#rec-h, #raw-h").count() == 1, kind
        found = axe_violations(page, axe)
        assert found == [], f"accessibility problems on the {kind} view:\n{dump(found)}"
        shot(page, f"10-ref-{kind}")

    # keyboard only: from the search box, type, tick a level, apply - and land on the line again
    page.goto(f"{base}{pages['log'][0]}&l={pages['log'][1]}")
    page.focus("#log-q")
    page.keyboard.type("attempt")
    page.keyboard.press("Tab")                                # the first level checkbox
    while page.evaluate("() => document.activeElement.value") != "ERROR":
        page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_url("**level=ERROR**")
    assert [r.inner_text().split()[0] for r in page.locator("table.log tbody tr").all()] == ["8", "9", "10"]
    assert page.evaluate("() => document.activeElement.id") == "target"
    # the packet list links to the other packets of the connection
    page.goto(f"{base}{pages['packet'][0]}&l=packet%3A73")
    page.locator("table.packets a").first.click()
    page.wait_for_url("**packet%3A7*")
    assert page.locator("tr#target").is_visible()

    # what a customer's file says is text, never markup
    page.goto(f"{site}/cases/{case.key}/ref?e={hostile.id}&a=x.log&l=line%3A1")
    assert page.locator("tr#target").is_visible()
    assert "<script>window.__pwned=2</script>" in page.locator("tr#target").inner_text()
    assert page.evaluate("() => window.__pwned === undefined")
    assert errors == [], errors
    ctx.close()
