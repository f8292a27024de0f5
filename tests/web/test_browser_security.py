"""In the browser: hostile text stays text and runs nothing, the policy blocks what is not ours,
the pages work by keyboard alone, and the pages the story does not visit pass axe-core too."""

from __future__ import annotations

import pytest

from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase

from .browser import axe_violations, dump, log_in, shot
from .pages_helpers import add_users
from .test_pages_security import FULL

HOSTILE_TITLE = 'Orders <script>window.__xss = "title"</script> fail'
HOSTILE_NOTE = ('"><img src=x onerror="window.__xss=\'note\'"> and <svg onload="window.__xss=\'svg\'"> '
                "see [the log](javascript:window.__xss='link') javascript:window.__xss='plain'")
HOSTILE_FILE = '"onerror=window.__xss=1 <img src=x>.log'
HOSTILE_CAUSE = ("<script>window.__xss='bug'</script> [click](javascript:window.__xss='md') "
                 '<img src=x onerror="window.__xss=\'bugimg\'">')


@pytest.fixture
def hostile_case(web_hub):
    users = add_users(web_hub, ("erin", "engineer", None), ("carl", "customer", "acme"), ("mia", "manager", None))
    case = web_hub.cases.create(users["erin"], NewCase(HOSTILE_TITLE, "orders", "4.2", "acme", CaseSeverity.S1, FULL))
    web_hub.cases.add_note(users["erin"], case.key, HOSTILE_NOTE, "public")
    web_hub.evidence.upload(users["erin"], case.key, HOSTILE_FILE, __import__("io").BytesIO(b"just a log line\n"))
    web_hub.bugs.create(users["erin"], case.key, root_cause=HOSTILE_CAUSE)
    return case


def _assert_inert(page):
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.locator("main [onerror], main [onload]").count() == 0
    assert page.locator("main a[href^='javascript:']").count() == 0


def test_hostile_text_renders_as_text_and_runs_nothing(browser, site, hostile_case):
    key = hostile_case.key
    for who in ("erin", "carl", "mia"):
        ctx = browser.new_context()
        page = ctx.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        log_in(page, site, who)
        _assert_inert(page)
        assert "<script>" in page.locator("main").inner_text() or who == "mia"   # the queue shows the title
        page.goto(f"{site}/cases/{key}")
        page.wait_for_timeout(300)
        _assert_inert(page)
        text = page.locator("main").inner_text()
        assert HOSTILE_TITLE in text                                   # shown, literally
        assert "onerror=" in text and "javascript:window.__xss='link'" in text
        assert "upload.bin" not in text and ".log" in text              # the file name, made safe
        if who == "erin":
            preview = page.locator(".preview").first.inner_text()
            assert "<script>" in preview and "javascript:" in preview  # Markdown preview: text, no link
            assert page.locator(".preview a").count() == 0
        assert dialogs == []
        ctx.close()
    # the dashboard lists overdue titles too
    ctx = browser.new_context()
    page = ctx.new_page()
    log_in(page, site, "mia")
    page.goto(site + "/dashboard")
    _assert_inert(page)
    ctx.close()


def test_the_policy_refuses_scripts_that_are_not_ours(browser, site, hostile_case):
    """A script injected into the page (as an XSS would be) is blocked by the CSP; ours run."""
    ctx = browser.new_context()
    page = ctx.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, site, "erin")
    assert page.evaluate("() => document.documentElement.classList.contains('hx')")   # app.js and htmx ran
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__xss = "inline"';
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__xss") is None
    assert any("script-src" in v for v in violations)
    ctx.close()


def test_keyboard_alone(browser, site, hostile_case):
    """Log in, skip to the content, reach the note form and add a note without a mouse."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(site + "/login")
    assert page.evaluate("() => document.activeElement.id") == "username"     # focused on arrival
    page.keyboard.type("erin")
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery")
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases*")
    page.goto(f"{site}/cases/{hostile_case.key}")
    page.keyboard.press("Tab")                       # the skip link comes first
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Enter")                     # skip to content
    assert page.evaluate("() => document.activeElement.id") == "main"
    for _ in range(300):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "note-body":
            break
    else:
        pytest.fail("the note field cannot be reached by keyboard")
    page.keyboard.type("Typed without a mouse")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Add note":
            break
    page.keyboard.press("Enter")
    # the note form posts through htmx (no navigation): wait for the note itself, not for a load
    page.locator("#notes").get_by_text("Typed without a mouse").wait_for(timeout=30_000)
    assert "Typed without a mouse" in page.locator("#notes").inner_text()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")               # the keyboard focus is visible
    ctx.close()


def _history(hub) -> None:
    """Forty cases over the last ten weeks (a hub with a hand-moved clock on the same database),
    so the dashboard and the queue have something to show."""
    import random
    from datetime import datetime, timedelta, timezone

    from backline.cases.hub import Hub
    from backline.storage.testdb import ManualClock

    now = datetime.now(timezone.utc)
    clock = ManualClock(now - timedelta(days=70))
    past = Hub.build(hub.engine, clock=clock, blob_root=hub.store.root)
    erin = past.users.get("erin")
    add_users(hub, ("ola", "engineer", None), ("raj", "engineer", None))
    rng = random.Random(5)
    for i in range(40):
        clock.set(now - timedelta(days=70) + timedelta(hours=i * 40 + rng.randint(0, 30)))
        case = past.cases.create(erin, NewCase(f"{rng.choice(['Orders', 'Gateway', 'Billing'])} problem {i}",
                                               rng.choice(["orders", "search", "billing"]), "4.2",
                                               rng.choice(["acme", "globex", "initech"]),
                                               rng.choice(list(CaseSeverity)), FULL))
        past.cases.assign(erin, case.key, rng.choice(["erin", "ola", "raj"]))
        clock.advance(minutes=rng.randint(20, 600))
        if clock.now < now:
            past.cases.add_note(erin, case.key, "Looking into it", "public")
            past.cases.set_status(erin, case.key, "investigating")
        clock.advance(hours=rng.randint(2, 200))
        if clock.now < now - timedelta(days=5) and rng.random() < 0.7:
            past.cases.set_status(erin, case.key, "resolved")


def test_other_pages_pass_axe(browser, axe, site, hostile_case, web_hub):
    _history(web_hub)
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(site + "/login")
    assert axe_violations(page, axe) == [], "login"
    shot(page, "00-login")
    log_in(page, site, "erin")
    web_pages = {"not found": "/cases/ESC-999999", "note history": None}
    page.goto(site + web_pages["not found"])
    assert axe_violations(page, axe) == [], "404"
    page.goto(f"{site}/cases/{hostile_case.key}")
    page.click("#bugs button:has-text('Preview')")                   # the preview page without htmx
    page.wait_for_load_state()
    assert axe_violations(page, axe) == [], "bug preview"
    page.goto(f"{site}/cases/new?product=gateway")
    assert "network capture" in page.locator("#intake-fields").inner_text()
    found = axe_violations(page, axe)
    assert found == [], dump(found)
    erin = web_hub.users.get("erin")
    note = web_hub.cases.add_note(erin, hostile_case.key, "first words", "internal")
    web_hub.cases.edit_note(erin, note.id, "second words")
    page.goto(f"{site}/notes/{note.id}/history")
    assert "first words" in page.locator("main").inner_text()
    assert axe_violations(page, axe) == [], "note history"
    page.goto(f"{site}/notes/{note.id}/edit")
    assert page.locator("main textarea").input_value() == "second words"
    assert axe_violations(page, axe) == [], "note edit"
    log_in(page, site, "mia")
    shot(page, "08-queue")
    page.goto(site + "/dashboard")
    assert axe_violations(page, axe) == [], "busy dashboard"
    shot(page, "07-dashboard")
    ctx.close()


def test_case_page_prints_as_a_status_report(browser, site, hostile_case, tmp_path):
    ctx = browser.new_context()
    page = ctx.new_page()
    log_in(page, site, "erin")
    page.goto(f"{site}/cases/{hostile_case.key}")
    page.emulate_media(media="print")
    assert not page.locator("header.top nav").is_visible()          # no navigation, forms or buttons
    assert not page.locator("#note-body").is_visible()
    assert not page.locator("button").first.is_visible()
    for section in ("#case-h", "#sla-h", "#notes-h", ".note-public .body"):
        assert page.locator(section).first.is_visible(), section     # the report's content stays
    pdf = tmp_path / "case.pdf"
    page.pdf(path=str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    ctx.close()
